package calendar

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAgeMetricNamesTheFeedRedacted(t *testing.T) {
	fs := newFeedServer(t, googleBody(t))
	var clock atomic.Int64
	start := ts(t, "2025-03-25T12:00:00Z")
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	h := NewHub(HubOptions{Now: now, Limits: fs.allowOnly()})
	t.Cleanup(h.Close)
	c := &Config{URL: fs.url(t), Timezone: time.UTC}
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
	want := "montage_scaler_calendar_age_seconds feed=" + fs.srv.URL + "/calendar/ical/xxxxx/xxxxx/basic.ics feed_id=" + id + " 150"
	if len(got) != 1 || got[0] != want {
		t.Errorf("metrics = %q, want [%q]", got, want)
	}
	if len(id) != 8 {
		t.Errorf("feed_id %q, want 8 hex digits", id)
	}

	// The opinion from the shared copy at a moment inside the session window.
	o, err := NewOpinion(&Config{URL: c.URL, Timezone: time.UTC, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}).Of(w.Latest().Value,
		ts(t, "2025-03-25T17:55:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Desired == nil || *o.Desired != 6 || !o.Active {
		t.Errorf("opinion = %v active %v, want 6 active", o.Desired, o.Active)
	}
}
