package feed

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/test/servers"
)

func TestAgeMetricNamesTheFeedRedacted(t *testing.T) {
	fs := newFeedServer(t, googleBody(t))
	var clock atomic.Int64
	start := ts(t, "2025-03-25T12:00:00Z")
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	h := NewHub(HubOptions{Now: now, Limits: fs.allowOnly()})
	t.Cleanup(h.Close)
	c := &calendar.Config{URL: fs.url(t), Timezone: time.UTC}
	w := h.Watch(c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if s, err := w.First(ctx); err != nil || s.Value == nil {
		t.Fatalf("first fetch: %v %+v", err, s)
	}
	clock.Store(start.Add(150 * time.Second).UnixNano())
	id := h.Status()[0].ID
	reg := prometheus.NewRegistry()
	if err := reg.Register(h.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			line := mf.GetName()
			for _, lp := range m.GetLabel() {
				line += " " + lp.GetName() + "=" + lp.GetValue()
			}
			got = append(got, line+" "+strconv.FormatFloat(m.GetGauge().GetValue(), 'f', -1, 64))
		}
	}
	labels := " feed=" + fs.srv.URL + "/xxxxx/xxxxx/xxxxx/xxxxx/basic.ics feed_id=" + id
	want := []string{"montage_scaler_calendar_age_seconds" + labels + " 150", "montage_scaler_calendar_has_copy" + labels + " 1",
		"montage_scaler_calendar_warnings" + labels + " 0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("metrics = %q, want %q", got, want)
	}
	if len(id) != 8 {
		t.Errorf("feed_id %q, want 8 hex digits", id)
	}

	// The opinion from the shared copy at a moment inside the session window.
	o, err := calendar.NewOpinion(&calendar.Config{URL: c.URL, Timezone: time.UTC, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}).Of(w.Latest().Value,
		ts(t, "2025-03-25T17:55:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Desired == nil || *o.Desired != 6 || !o.Active {
		t.Errorf("opinion = %v active %v, want 6 active", o.Desired, o.Active)
	}
}

func TestRetryAfterBacksOffUntilTheFirstCopyThenWaitsARefresh(t *testing.T) {
	withRefresh := func(d time.Duration) *calendar.Feed {
		return &calendar.Feed{Calendar: &ical.Calendar{RefreshInterval: d}}
	}
	tests := []struct {
		name     string
		prev     *calendar.Feed
		failures int
		want     time.Duration
	}{
		{"no copy yet: the first retry after a second", nil, 1, time.Second},
		{"no copy yet: doubling", nil, 2, 2 * time.Second},
		{"no copy yet: doubling again", nil, 3, 4 * time.Second},
		{"no copy yet: 32s after the sixth failure", nil, 6, 32 * time.Second},
		{"no copy yet: capped at a minute", nil, 7, time.Minute},
		{"no copy yet: capped for good", nil, 1000, time.Minute},
		{"with a copy: the default refresh", withRefresh(0), 1, DefaultRefresh},
		{"with a copy: the feed's own refresh", withRefresh(2 * time.Minute), 3, 2 * time.Minute},
		{"with a copy: never sooner than a minute", withRefresh(10 * time.Second), 1, MinRefresh},
		{"with a copy: never later than the default refresh", withRefresh(time.Hour), 1, DefaultRefresh},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.prev, tc.failures); got != tc.want {
				t.Fatalf("retryAfter = %s, want %s", got, tc.want)
			}
		})
	}
}

// A feed that fails when it is first watched is retried within seconds, not
// at the next refresh; meanwhile has_copy is 0 and the log says there is
// no copy (never "keeping the last good copy").
func TestAFeedFailingAtStartIsRetriedSoonWithALoudWarning(t *testing.T) {
	fs := newFeedServer(t, googleBody(t))
	fs.mode.Store("500")
	var logs servers.LogBuffer
	h := NewHub(HubOptions{Limits: fs.allowOnly(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	t.Cleanup(h.Close)
	w := h.Watch(&calendar.Config{URL: fs.url(t), Timezone: time.UTC})
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if s, err := w.First(ctx); err != nil || s.Err == nil || s.Value != nil {
		t.Fatalf("first fetch: %v %+v", err, s)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	if v := gauge(t, reg, "montage_scaler_calendar_has_copy"); v != 0 {
		t.Errorf("has_copy = %v before the first copy, want 0", v)
	}
	fs.mode.Store("ok")
	for w.Latest().Value == nil {
		select {
		case <-w.Changed():
		case <-ctx.Done():
			t.Fatalf("no copy 60s after the feed was fixed (%d requests)", fs.hits.Load())
		}
	}
	if v := gauge(t, reg, "montage_scaler_calendar_has_copy"); v != 1 {
		t.Errorf("has_copy = %v after the first copy, want 1", v)
	}
	// The poller publishes the copy, then logs its recovery.
	for !strings.Contains(logs.String(), `"msg":"read recovered"`) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"read failing; no good reading yet"`) || !strings.Contains(out, `"failures":1,"retryIn":1000000000`) ||
		!strings.Contains(out, `"msg":"read recovered"`) || strings.Contains(out, "keeping the last good") || strings.Contains(out, secretToken) {
		t.Errorf("logs:\n%s", out)
	}
}

// The fault probe's case: the feed's only event lost its DTSTART. The
// event is skipped, and that is never silent: the calendar's opinion in
// Explain carries the warning, the log says it once per copy, and
// montage_scaler_calendar_warnings counts it.
func TestAnEventTheScalerCannotUseIsWarnedEverywhere(t *testing.T) {
	const body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:upload@t\r\nDTSTAMP:20250301T000000Z\r\n" +
		"DTEND:20250325T190000Z\r\nSUMMARY:Upload session replicas=6\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	fs := newFeedServer(t, []byte(body))
	var logs servers.LogBuffer
	h := NewHub(HubOptions{Limits: fs.allowOnly(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	t.Cleanup(h.Close)
	c := &calendar.Config{URL: fs.url(t), Timezone: time.UTC, DefaultReplicas: 4}
	w := h.Watch(c)
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := w.First(ctx)
	if err != nil || s.Value == nil {
		t.Fatalf("first fetch: %v %+v", err, s)
	}
	const want = `event "Upload session replicas=6" (UID "upload@t"): no DTSTART; skipped`
	o, err := calendar.NewOpinion(c).Of(s.Value, ts(t, "2025-03-25T18:00:00Z"))
	if err != nil || o.Desired != nil || strings.Join(o.Warnings, "|") != want {
		t.Fatalf("opinion %v, warnings %q, err %v; want no opinion and %q", o.Desired, o.Warnings, err, want)
	}
	refresh(t, ctx, w) // the same copy again (304): not logged again
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	if v := gauge(t, reg, "montage_scaler_calendar_warnings"); v != 1 {
		t.Errorf("montage_scaler_calendar_warnings = %v, want 1", v)
	}
	if out := logs.String(); strings.Count(out, `"msg":"calendar feed has events the scaler cannot use; they are skipped"`) != 1 ||
		!strings.Contains(out, `"count":1,"warnings":["event \"Upload session replicas=6\" (UID \"upload@t\"): no DTSTART; skipped"]`) {
		t.Errorf("logs:\n%s", out)
	}
}

// gauge reads the one sample of a gauge family.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single %s", name)
	return 0
}

// The fault probe's case: after a good copy, an edit added four daily
// series with COUNT started in 1800 and a 7-replica event in force. The
// whole feed used to be refused ("expansion exceeds the step limit"), so
// the edit was never applied (the decision stayed 6, has_copy 1, warnings
// 0). Now the series jump to the span, and an event beyond its own step
// budget is skipped with a warning in Explain, the log and the metric.
func TestAnEditBesideCostlyRecurrencesIsAppliedAndOnlyTheCostlyEventIsSkipped(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Hour)
	event := func(uid, summary string, start, end time.Time, extra ...string) string {
		lines := append([]string{"BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20250301T000000Z", "SUMMARY:" + summary,
			"DTSTART:" + start.Format("20060102T150405Z"), "DTEND:" + end.Format("20060102T150405Z")}, extra...)
		return strings.Join(append(lines, "END:VEVENT"), "\r\n") + "\r\n"
	}
	feed := func(events ...string) []byte {
		return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + strings.Join(events, "") + "END:VCALENDAR\r\n")
	}
	session := event("session", "Session replicas=6", now.Add(-time.Hour), now.Add(2*time.Hour))
	fs := newFeedServer(t, feed(session))
	var logs servers.LogBuffer
	h := NewHub(HubOptions{Limits: fs.allowOnly(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	t.Cleanup(h.Close)
	c := &calendar.Config{URL: fs.url(t), Timezone: time.UTC, DefaultReplicas: 4}
	w := h.Watch(c)
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := w.First(ctx)
	if err != nil || s.Value == nil {
		t.Fatalf("first fetch: %v %+v", err, s)
	}
	if o, err := calendar.NewOpinion(c).Of(s.Value, now); err != nil || o.Desired == nil || *o.Desired != 6 {
		t.Fatalf("before the edit: opinion %v, err %v; want 6", o.Desired, err)
	}

	edit := []string{session, event("launch", "Launch replicas=7", now.Add(-30*time.Minute), now.Add(time.Hour))}
	for i := range 4 {
		start := time.Date(1800, 1, 1, i, 0, 0, 0, time.UTC)
		edit = append(edit, event(fmt.Sprintf("daily-%d", i), fmt.Sprintf("Daily render %d", i), start, start.Add(30*time.Minute), "RRULE:FREQ=DAILY;COUNT=100000"))
	}
	// BYHOUR leaves no closed form: walked from 1800, a step a day.
	start := time.Date(1800, 1, 1, 5, 0, 0, 0, time.UTC)
	edit = append(edit, event("walked", "Walked since 1800", start, start.Add(time.Hour), "RRULE:FREQ=DAILY;BYHOUR=5;COUNT=100000"))
	fs.setBody(feed(edit...))
	s = refresh(t, ctx, w)
	if s.Err != nil || s.Value == nil {
		t.Fatalf("the edited copy: %+v", s)
	}
	const want = `event "Walked since 1800" (UID "walked"): recurrence needs more than 50000 steps, the limit for one event; skipped`
	o, err := calendar.NewOpinion(c).Of(s.Value, now)
	if err != nil || o.Desired == nil || *o.Desired != 7 || strings.Join(o.Warnings, "|") != want {
		t.Fatalf("after the edit: opinion %v, warnings %q, err %v; want 7 and %q", o.Desired, o.Warnings, err, want)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	if v := gauge(t, reg, "montage_scaler_calendar_warnings"); v != 1 {
		t.Errorf("montage_scaler_calendar_warnings = %v, want 1", v)
	}
	if v := gauge(t, reg, "montage_scaler_calendar_has_copy"); v != 1 {
		t.Errorf("montage_scaler_calendar_has_copy = %v, want 1", v)
	}
	if out := logs.String(); !strings.Contains(out, `"msg":"calendar feed has events the scaler cannot use; they are skipped"`) ||
		!strings.Contains(out, `(UID \"walked\"): recurrence needs more than 50000 steps`) {
		t.Errorf("logs:\n%s", out)
	}
}
