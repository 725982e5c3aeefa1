package forecast

import (
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

func TestPlanShowsTheComingDaySlotBySlot(t *testing.T) {
	h := NewHistory()
	fill(h, 2, 0, 7, nil) // two weeks from monday
	p := Params{Weeks: 4, LeadTime: 5 * time.Minute, MinWeeks: 2, MaxError: 0.5}
	// Sunday 12:00 of week 2: the history turns two weeks deep on Monday
	// at midnight, lead time before the 00:05 slot.
	now := monday.Add(2*Week - 12*time.Hour)
	plan := Plan(h, now, 24*time.Hour, decide.ForecastEnabled, p, nil)
	if len(plan) != 288 || !plan[0].At.Equal(now) || plan[0].Slot != "Sun 12:00 UTC" {
		t.Fatalf("%d slots from %+v", len(plan), plan[0])
	}
	for _, s := range plan {
		// Sunday's slots have one week of evidence (none before monday).
		weeks := 1
		if s.At.Weekday() == time.Monday {
			weeks = 2
		}
		// It speaks from Monday on: two weeks of evidence, the history two
		// weeks deep.
		deep := weeks == 2
		if s.Acting != deep || (s.Silent == "") != deep || s.Weeks != weeks || (s.Estimate != nil) != (weeks == 2) {
			t.Fatalf("slot %s: %+v; want acting %t from %d weeks", s.At, s, deep, weeks)
		}
		if s.At.Hour() == 12 && !strings.HasSuffix(s.Silent, "under the 2 weeks needed") {
			t.Errorf("slot %s silent %q, want the history too shallow", s.At, s.Silent)
		}
		if weeks == 2 && s.At.Hour() == 18 && *s.Estimate != 4 {
			t.Errorf("Monday 18:00's estimate %g, want the habit's 4", *s.Estimate)
		}
	}
	if v := nextHour(h, now, decide.ForecastEnabled, p, nil); v != nil {
		t.Errorf("next hour %g while the history is too shallow, want none", *v)
	}
	// Monday 17:30: the next hour reaches the 18:00 rush; in dry-run too.
	at := monday.Add(2*Week + 17*time.Hour + 30*time.Minute)
	for _, mode := range []string{decide.ForecastEnabled, decide.ForecastDryRun} {
		if v := nextHour(h, at, mode, p, nil); v == nil || *v != 4 {
			t.Errorf("%s: next hour %v, want 4", mode, v)
		}
	}
	// Backing off silences every slot.
	for _, s := range Plan(h, at, time.Hour, decide.ForecastEnabled, p, &decide.ForecastError{Over: 0.9}) {
		if s.Acting || !strings.HasPrefix(s.Silent, "backing off") {
			t.Fatalf("slot %s while backing off: %+v", s.At, s)
		}
	}
}
