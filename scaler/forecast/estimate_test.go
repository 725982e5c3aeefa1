package forecast

import (
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fillLocal observes every bucket in [from, to) with f of its local time.
func fillLocal(h *History, from, to time.Time, loc *time.Location, f func(local time.Time) float64) {
	for t := from; t.Before(to); t = t.Add(Bucket) {
		h.Observe(t, Demand{KindDemand: f(t.In(loc))})
	}
}

// localHabit is 4 replicas 18:00–21:00 local time on weekdays, 0.2 otherwise.
func localHabit(lt time.Time) float64 {
	if wd := lt.Weekday(); wd != time.Saturday && wd != time.Sunday && lt.Hour() >= 18 && lt.Hour() < 21 {
		return 4
	}
	return 0.2
}

func TestAHabitKeepsItsLocalHourAcrossDaylightSaving(t *testing.T) {
	loc := berlin(t)
	for _, tc := range []struct {
		name   string
		monday time.Time // the Monday after the change, local midnight
		zone   string
	}{
		{"after the last Sunday of March (clocks forward)", time.Date(2026, 3, 30, 0, 0, 0, 0, loc), "CEST"},
		{"after the last Sunday of October (clocks back)", time.Date(2026, 10, 26, 0, 0, 0, 0, loc), "CET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			fillLocal(h, tc.monday.AddDate(0, 0, -28), tc.monday, loc, localHabit)
			p := Params{Weeks: 4, LeadTime: 5 * time.Minute, MinWeeks: 2, MaxError: 0.5, Zone: loc}
			for _, c := range []struct {
				hour, min int
				want      float64
			}{{17, 55, 0.2}, {18, 0, 4}, {20, 55, 4}, {21, 0, 0.2}} {
				target := time.Date(2026, tc.monday.Month(), tc.monday.Day(), c.hour, c.min, 0, 0, loc)
				e := Evidence(h, target.Add(-5*time.Minute), decide.ForecastEnabled, p)
				slot := target.Format("Mon 15:04 ") + tc.zone
				if e.Estimate == nil || *e.Estimate != c.want || e.Samples != 4 || e.Slot != slot || e.Zone != "Europe/Berlin" {
					t.Errorf("%s: estimate %v from %d weeks, slot %q; want %g from 4, %q", slot, e.Estimate, e.Samples, e.Slot, c.want, slot)
				}
			}
			// UTC weeks would have moved the habit by an hour.
			miss := 0
			for _, hour := range []int{17, 18, 20, 21} {
				target := time.Date(2026, tc.monday.Month(), tc.monday.Day(), hour, 30, 0, 0, loc)
				local, _, _ := h.Estimate(target, p)
				utc, _, _ := h.Estimate(target, Params{Weeks: 4})
				if local != utc {
					miss++
				}
			}
			if miss == 0 {
				t.Error("UTC weeks forecast the same: the test does not cross a change")
			}
		})
	}
}

func TestDaysOfTwentyThreeAndTwentyFiveHoursMapOntoTheSlotsOfTheWeek(t *testing.T) {
	loc := berlin(t)
	at := func(y int, m time.Month, d, hh, mm int, zone string) time.Time {
		t.Helper()
		for _, off := range []int{0, -3600} {
			x := time.Date(y, m, d, hh, mm, 0, 0, loc).Add(time.Duration(off) * time.Second)
			if name, _ := x.Zone(); name == zone && x.Hour() == hh && x.Minute() == mm {
				return x
			}
		}
		t.Fatalf("no %d-%02d-%02d %02d:%02d %s", y, m, d, hh, mm, zone)
		return time.Time{}
	}
	slots := func(b time.Time, k int) []time.Time {
		var out []time.Time
		for _, x := range slotBuckets(b.Unix(), k, loc, nil) {
			out = append(out, time.Unix(x, 0).In(loc))
		}
		return out
	}

	t.Run("an ordinary Sunday's 02:30 is one bucket", func(t *testing.T) {
		got := slots(at(2026, 3, 29, 1, 30, "CET"), 1)
		if len(got) != 1 || !got[0].Equal(at(2026, 3, 22, 1, 30, "CET")) {
			t.Errorf("a week before Sun 01:30: %v", got)
		}
	})
	t.Run("the hour skipped on the last Sunday of March has no bucket", func(t *testing.T) {
		// The 23-hour day: 02:00–02:55 never happened.
		if got := slots(at(2026, 4, 5, 2, 30, "CEST"), 1); len(got) != 0 {
			t.Errorf("a week before Sun 5 April 02:30: %v, want none (29 March went from 02:00 to 03:00)", got)
		}
		// A slot with one week fewer still has its estimate from the others.
		h := NewHistory()
		fillLocal(h, at(2026, 3, 8, 0, 0, "CET"), at(2026, 4, 5, 0, 0, "CEST"), loc, func(lt time.Time) float64 {
			if lt.Weekday() == time.Sunday && lt.Hour() == 2 {
				return 1 // a night batch at 02:00
			}
			return 0
		})
		v, n, ok := h.Estimate(at(2026, 4, 5, 2, 30, "CEST"), Params{Weeks: 4, Zone: loc})
		if !ok || v != 1 || n != 3 {
			t.Errorf("Sun 02:30 after the change: %g from %d weeks (%t), want 1 from 3", v, n, ok)
		}
	})
	t.Run("the hour repeated on the last Sunday of October is one slot of two buckets", func(t *testing.T) {
		// The 25-hour day: 02:00–02:55 happened in CEST, then again in CET.
		first, second := at(2026, 10, 25, 2, 30, "CEST"), at(2026, 10, 25, 2, 30, "CET")
		got := slots(at(2026, 11, 1, 2, 30, "CET"), 1)
		if len(got) != 2 || !got[0].Equal(first) || !got[1].Equal(second) {
			t.Fatalf("a week before Sun 1 November 02:30: %v, want %v and %v", got, first, second)
		}
		h := NewHistory()
		h.Observe(first, Demand{KindDemand: 1})
		h.Observe(second, Demand{KindDemand: 3})
		if v, ok := h.slotTotal(at(2026, 11, 1, 2, 30, "CET").Unix(), 1, loc); !ok || v != 3 {
			t.Errorf("the repeated slot's demand %g (%t), want the larger bucket, 3", v, ok)
		}
		// Both 02:30s of that day are forecast from the same slot a week
		// (and two) before, and named apart.
		fillLocal(h, at(2026, 10, 11, 0, 0, "CEST"), at(2026, 10, 25, 0, 0, "CEST"), loc, func(lt time.Time) float64 {
			return float64(lt.Day()%7) + float64(lt.Hour())/24
		})
		p := Params{Weeks: 2, Zone: loc}
		v1, n1, _ := h.Estimate(first, p)
		v2, n2, _ := h.Estimate(second, p)
		if v1 != v2 || n1 != 2 || n2 != 2 {
			t.Errorf("estimates %g (%d weeks) and %g (%d weeks), want equal from 2 weeks", v1, n1, v2, n2)
		}
		if a, b := SlotName(first, loc), SlotName(second, loc); a != "Sun 02:30 CEST" || b != "Sun 02:30 CET" {
			t.Errorf("slot names %q and %q", a, b)
		}
	})
	t.Run("backtest weeks follow the local calendar: 167 and 169 hours", func(t *testing.T) {
		h := NewHistory()
		from, to := at(2026, 3, 23, 0, 0, "CET"), at(2026, 4, 6, 0, 0, "CEST")
		fillLocal(h, from, to, loc, localHabit)
		fillLocal(h, at(2026, 10, 19, 0, 0, "CEST"), at(2026, 11, 2, 0, 0, "CET"), loc, localHabit)
		r := Backtest(h, Params{Weeks: 4, MinWeeks: 2, Zone: loc})
		if len(r.Weeks) < 2 || r.Weeks[1].From.Sub(r.Weeks[0].From) != 167*time.Hour {
			t.Fatalf("weeks %v, want the first 167 hours long", r.Weeks)
		}
		october := false
		for i, w := range r.Weeks {
			if lt := w.From.In(loc); lt.Weekday() != time.Monday || lt.Hour() != 0 {
				t.Errorf("a week starts %s, want Monday midnight in Berlin", lt)
			}
			if w.From.Equal(at(2026, 10, 19, 0, 0, "CEST")) {
				october = i+1 < len(r.Weeks) && r.Weeks[i+1].From.Sub(w.From) == 169*time.Hour
			}
		}
		if !october {
			t.Error("no 169-hour week from Monday 19 October")
		}
	})
}
