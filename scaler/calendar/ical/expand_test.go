package ical

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// week is the span the scaler expands a calendar over.
const week = 7 * 24 * time.Hour

type row struct {
	summary    string
	start, end string // RFC 3339, UTC
	replicas   float64
	source     string
	clamped    bool
}

func loadCalendar(t *testing.T, name string) *Calendar {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := Parse(data, Limits{})
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return cal
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func opts(tz *time.Location) Options {
	return Options{Zone: tz, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}
}

// checkWindows asserts every window, in order, and that From/Until are the
// event's span widened by the lead time and the hold.
func checkWindows(t *testing.T, o Options, got []Window, want []row) {
	t.Helper()
	var gotRows []row
	for _, w := range got {
		gotRows = append(gotRows, row{w.Summary, w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339), w.Replicas, w.ReplicasSource, w.Clamped})
		if !w.From.Equal(w.Start.Add(-o.LeadTime)) || !w.Until.Equal(w.End.Add(o.Hold)) {
			t.Errorf("window %q %s: From %s Until %s, want start-%s and end+%s", w.Summary, w.Start, w.From, w.Until, o.LeadTime, o.Hold)
		}
		if w.Start.Location() != time.UTC {
			t.Errorf("window %q: start not in UTC: %s", w.Summary, w.Start)
		}
	}
	if !slices.Equal(gotRows, want) {
		t.Errorf("windows:\n got  %s\n want %s", fmtRows(gotRows), fmtRows(want))
	}
}

func fmtRows(rs []row) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("\n  ")
		b.WriteString(strings.Join([]string{r.summary, r.start, r.end, fmtF(r.replicas), r.source}, " | "))
		if r.clamped {
			b.WriteString(" | clamped")
		}
	}
	return b.String()
}

func fmtF(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func TestGoogleFeedAcrossBerlinSpringForward(t *testing.T) {
	cal := loadCalendar(t, "google.ics")
	if cal.Name != "Montage uploads" || cal.Events != 7 || len(cal.Warnings) != 0 {
		t.Fatalf("feed: name %q events %d warnings %q", cal.Name, cal.Events, cal.Warnings)
	}
	o := opts(zone(t, "Europe/Berlin"))
	got, err := cal.Windows(o, ts(t, "2025-03-24T00:00:00Z"), ts(t, "2025-04-09T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		{"Evening upload session", "2025-03-25T18:00:00Z", "2025-03-25T20:00:00Z", 6, SourceDescription, false},
		{"Evening upload session", "2025-03-27T18:00:00Z", "2025-03-27T20:00:00Z", 6, SourceDescription, false},
		{"Night render", "2025-03-28T22:00:00Z", "2025-03-29T01:00:00Z", 4, SourceDefault, false},
		// All-day over the DST change: local midnight to local midnight, 47 h.
		{"Batch day replicas=8", "2025-03-28T23:00:00Z", "2025-03-30T22:00:00Z", 8, SourceSummary, false},
		// Moved occurrence (RECURRENCE-ID override), now in summer time.
		{"Evening upload session (late)", "2025-04-01T18:30:00Z", "2025-04-01T20:30:00Z", 6, SourceDescription, false},
		// 2025-04-03 is cancelled by its override.
		{"Launch: season 2", "2025-04-05T16:00:00Z", "2025-04-05T18:00:00Z", 4, SourceDefault, false},
		{"Evening upload session", "2025-04-08T17:00:00Z", "2025-04-08T19:00:00Z", 6, SourceDescription, false},
	})
}

func TestGoogleFeedUntilIsInclusiveAndEndsTheSeries(t *testing.T) {
	cal := loadCalendar(t, "google.ics")
	o := opts(zone(t, "Europe/Berlin"))
	got, err := cal.Windows(o, ts(t, "2025-04-14T00:00:00Z"), ts(t, "2025-04-30T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		{"Evening upload session", "2025-04-15T17:00:00Z", "2025-04-15T19:00:00Z", 6, SourceDescription, false},
		{"Evening upload session", "2025-04-17T17:00:00Z", "2025-04-17T19:00:00Z", 6, SourceDescription, false},
	})
}

func TestTransparentEventsCountOnlyWhenAsked(t *testing.T) {
	cal := loadCalendar(t, "google.ics")
	o := opts(zone(t, "Europe/Berlin"))
	o.IncludeTransparent = true
	got, err := cal.Windows(o, ts(t, "2025-03-26T00:00:00Z"), ts(t, "2025-03-26T23:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		{"Dentist", "2025-03-26T09:00:00Z", "2025-03-26T10:00:00Z", 4, SourceDefault, false},
	})
	o.IncludeTransparent = false
	got, err = cal.Windows(o, ts(t, "2025-03-26T00:00:00Z"), ts(t, "2025-03-26T23:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, nil)
}

func TestOutlookFeedWithWindowsZonesAndDSTGapAndOverlap(t *testing.T) {
	cal := loadCalendar(t, "outlook.ics")
	if len(cal.Warnings) != 0 {
		t.Fatalf("warnings: %q", cal.Warnings)
	}
	o := opts(time.UTC)
	got, err := cal.Windows(o, ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-11-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		// 20:00 EST, then (US DST from 9 March) 20:00 EDT; COUNT=4 with
		// 11 March in a multi-value EXDATE.
		{"Weekly live stream", "2025-03-05T01:00:00Z", "2025-03-05T03:00:00Z", 6, SourceCategories + ":peak", false},
		{"Weekly live stream", "2025-03-19T00:00:00Z", "2025-03-19T02:00:00Z", 6, SourceCategories + ":peak", false},
		{"Weekly live stream", "2025-03-26T00:00:00Z", "2025-03-26T02:00:00Z", 6, SourceCategories + ":peak", false},
		// 02:30 does not exist in Berlin on 30 March: RFC 5545 reads it with
		// the offset before the gap, 03:30 CEST.
		{"Night batch (replicas=2)", "2025-03-30T01:30:00Z", "2025-03-30T02:30:00Z", 2, SourceSummary, false},
		// 01:30 CEST to 03:30 CET on the fall-back night: three hours.
		{"Upload window", "2025-10-25T23:30:00Z", "2025-10-26T02:30:00Z", 3, SourceCategories + ":normal", false},
	})
}

func TestNextcloudFeedAcrossNewYorkFallBack(t *testing.T) {
	cal := loadCalendar(t, "nextcloud.ics")
	if cal.RefreshInterval != 4*time.Hour {
		t.Fatalf("refresh interval %s, want 4h", cal.RefreshInterval)
	}
	o := opts(zone(t, "America/New_York"))
	got, err := cal.Windows(o, ts(t, "2025-01-01T00:00:00Z"), ts(t, "2025-12-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		// Floating times placed in calendarTimezone; BYMONTHDAY=-1 is the
		// last day of each month; a floating UNTIL is inclusive.
		{"Channel review", "2025-01-31T23:00:00Z", "2025-02-01T00:00:00Z", 3, SourceDescription, false},
		{"Channel review", "2025-02-28T23:00:00Z", "2025-03-01T00:00:00Z", 3, SourceDescription, false},
		// RDATEs (multi-value) next to DTSTART, DURATION for each.
		{"Collab stream", "2025-03-10T16:00:00Z", "2025-03-10T17:30:00Z", 8, SourceCategories + ":burst", false},
		{"Collab stream", "2025-03-12T16:00:00Z", "2025-03-12T17:30:00Z", 8, SourceCategories + ":burst", false},
		{"Collab stream", "2025-03-14T19:00:00Z", "2025-03-14T20:30:00Z", 8, SourceCategories + ":burst", false},
		{"Channel review", "2025-03-31T22:00:00Z", "2025-03-31T23:00:00Z", 3, SourceDescription, false},
		{"Channel review", "2025-04-30T22:00:00Z", "2025-04-30T23:00:00Z", 3, SourceDescription, false},
		{"Morning transcode", "2025-10-31T05:30:00Z", "2025-10-31T06:30:00Z", 2, SourceProperty, false},
		{"Morning transcode", "2025-11-01T05:30:00Z", "2025-11-01T06:30:00Z", 2, SourceProperty, false},
		// 01:30 happens twice on 2 November: the first (EDT) is meant.
		{"Morning transcode", "2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z", 2, SourceProperty, false},
		{"Morning transcode", "2025-11-03T06:30:00Z", "2025-11-03T07:30:00Z", 2, SourceProperty, false},
	})
}

func TestAppleFeedMonthlyAllDayAndClampedHint(t *testing.T) {
	cal := loadCalendar(t, "apple.ics")
	o := opts(zone(t, "Europe/Berlin"))
	maxR := 8.0
	o.MaxReplicas = &maxR
	got, err := cal.Windows(o, ts(t, "2025-01-01T00:00:00Z"), ts(t, "2025-06-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		{"Batch Saturday", "2025-01-03T23:00:00Z", "2025-01-04T23:00:00Z", 6, SourceCategories + ":peak", false},
		{"Batch Saturday", "2025-01-31T23:00:00Z", "2025-02-01T23:00:00Z", 6, SourceCategories + ":peak", false},
		{"Batch Saturday", "2025-02-28T23:00:00Z", "2025-03-01T23:00:00Z", 6, SourceCategories + ":peak", false},
		{"Podcast edit", "2025-03-03T09:00:00Z", "2025-03-03T11:00:00Z", 8, SourceProperty, true},
		// 17 March is excluded by a UTC EXDATE; 31 March is summer time.
		{"Podcast edit", "2025-03-31T08:00:00Z", "2025-03-31T10:00:00Z", 8, SourceProperty, true},
		{"Batch Saturday", "2025-04-04T22:00:00Z", "2025-04-05T22:00:00Z", 6, SourceCategories + ":peak", false},
		{"Podcast edit", "2025-04-14T08:00:00Z", "2025-04-14T10:00:00Z", 8, SourceProperty, true},
	})
	if got[3].Requested != 12 {
		t.Errorf("requested %v, want 12", got[3].Requested)
	}
}

func TestWindowInForceAtTheStartOfTheSpanIsIncluded(t *testing.T) {
	cal := loadCalendar(t, "google.ics")
	o := opts(zone(t, "Europe/Berlin"))
	// Mid-way through the 47-hour batch day, and in the hold after the session.
	got, err := cal.Windows(o, ts(t, "2025-03-30T12:00:00Z"), ts(t, "2025-03-30T13:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		{"Batch day replicas=8", "2025-03-28T23:00:00Z", "2025-03-30T22:00:00Z", 8, SourceSummary, false},
	})
	got, err = cal.Windows(o, ts(t, "2025-03-25T20:04:00Z"), ts(t, "2025-03-25T21:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		{"Evening upload session", "2025-03-25T18:00:00Z", "2025-03-25T20:00:00Z", 6, SourceDescription, false},
	})
}

func TestOutlookDisplayNameZonesAreMatchedThroughTheirVTimezone(t *testing.T) {
	cal := loadCalendar(t, "outlook-display-names.ics")
	if len(cal.Warnings) != 0 {
		t.Fatalf("warnings: %q", cal.Warnings)
	}
	o := opts(time.UTC)
	got, err := cal.Windows(o, ts(t, "2025-03-27T00:00:00Z"), ts(t, "2025-04-07T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, got, []row{
		// Berlin rules: CET before the change, CEST after it.
		{"Friday edit", "2025-03-28T18:00:00Z", "2025-03-28T20:00:00Z", 4, SourceDefault, false},
		// A fixed +05:30 block.
		{"Sync with Pune editors", "2025-04-02T03:30:00Z", "2025-04-02T05:30:00Z", 4, SourceDefault, false},
		{"Friday edit", "2025-04-04T17:00:00Z", "2025-04-04T19:00:00Z", 4, SourceDefault, false},
	})
}

func TestExampleCalendarWeek(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "calendar.ics"))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if cal.Name != "Montage - creator schedule" || len(cal.Warnings) != 0 {
		t.Errorf("name %q warnings %q", cal.Name, cal.Warnings)
	}
	o := opts(zone(t, "Europe/Berlin"))
	from := ts(t, "2026-11-30T00:00:00Z")
	e, err := cal.Expand(o, from, from.Add(week))
	if err != nil || len(e.Warnings) != 0 {
		t.Fatalf("expand: %v, warnings %q", err, e.Warnings)
	}
	checkWindows(t, o, e.Windows, []row{
		// Tuesday's session is cancelled, Thursday's moved later.
		{"Evening upload session (late start)", "2026-12-03T19:30:00Z", "2026-12-03T22:00:00Z", 6, SourceProperty, false},
		{"Launch: winter series", "2026-12-04T14:00:00Z", "2026-12-04T18:00:00Z", 8, SourceDescription, false},
		{"Friday live stream", "2026-12-04T19:00:00Z", "2026-12-04T21:00:00Z", 6, SourceCategories + ":peak", false},
		{"Batch day: re-encode the archive", "2026-12-04T23:00:00Z", "2026-12-05T23:00:00Z", 8, SourceCategories + ":burst", false},
	})
}
