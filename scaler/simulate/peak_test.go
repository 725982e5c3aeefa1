package simulate

import (
	"testing"
	"time"
)

func TestTheWeeklyPeakIsTheHabitsRushFromTheThirdWeek(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// Three weeks from Monday 16 March 2026, midnight in Berlin, 5-minute
	// steps: 40 tasks every Monday 18:00–18:30 local time (an hour earlier
	// in UTC from 30 March), 20 every Tuesday then, one task otherwise.
	start := time.Date(2026, 3, 16, 0, 0, 0, 0, loc)
	trace := func(weeks int) Trace {
		tr := Trace{Start: start.UTC(), Step: 5 * time.Minute}
		for at := start; at.Before(start.AddDate(0, 0, 7*weeks)); at = at.Add(5 * time.Minute) {
			lt, n := at.In(loc), 1
			if lt.Hour() == 18 && lt.Minute() < 30 {
				switch lt.Weekday() {
				case time.Monday:
					n = 40
				case time.Tuesday:
					n = 20
				}
			}
			tr.Rows = append(tr.Rows, Row{Start: at.UTC(), Tasks: n, Service: 27 * time.Second})
		}
		return tr
	}
	p := FindWeeklyPeak(trace(3), loc)
	if p == nil || p.Slots != 12 || !p.From.Equal(time.Date(2026, 3, 30, 0, 0, 0, 0, loc)) {
		t.Fatalf("peak %+v, want Monday's and Tuesday's six slots from 30 March", p)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 3, 30, 18, 10, 0, 0, loc), true},  // in CEST: 16:10 UTC
		{time.Date(2026, 3, 31, 18, 25, 0, 0, loc), true},  // Tuesday's rush is half Monday's
		{time.Date(2026, 3, 30, 18, 30, 0, 0, loc), false}, // over
		{time.Date(2026, 3, 30, 17, 10, 0, 0, loc), false}, // 18:10 in UTC-weeks' terms
		{time.Date(2026, 3, 23, 18, 10, 0, 0, loc), false}, // before the forecast can speak
	} {
		if got := p.Holds(c.at); got != c.want {
			t.Errorf("Holds(%s) = %t, want %t", c.at, got, c.want)
		}
	}
	if p := FindWeeklyPeak(trace(2), loc); p != nil {
		t.Errorf("a two-week trace has a peak %+v, want none (the forecast never speaks)", p)
	}
}
