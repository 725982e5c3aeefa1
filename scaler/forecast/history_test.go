package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// monday is a Monday 00:00 UTC.
var monday = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// habit is a weekday-evening habit: 4 replicas 18:00–21:00 on weekdays,
// 0.2 otherwise.
func habit(t time.Time) float64 {
	if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday && t.Hour() >= 18 && t.Hour() < 21 {
		return 4
	}
	return 0.2
}

// fill observes every bucket of weeks weeks from monday, habit plus up to
// ±noise, through f (nil: as is).
func fill(h *History, weeks int, noise float64, seed uint64, f func(time.Time, float64) float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for t := monday; t.Before(monday.Add(time.Duration(weeks) * Week)); t = t.Add(Bucket) {
		v := habit(t) * (1 + noise*(2*rng.Float64()-1))
		if f != nil {
			v = f(t, v)
		}
		h.Observe(t, Demand{KindLegacyAsk: v})
	}
}

func TestEstimate(t *testing.T) {
	tests := []struct {
		name    string
		values  []float64 // k = 1, 2, … weeks back; <0: not observed
		want    float64
		samples int
		ok      bool
	}{
		{"a steady habit is its own estimate", []float64{4, 4, 4, 4}, 4, 4, true},
		{"a high percentile takes the busier of usual weeks", []float64{3, 4, 3.5, 3.8}, 3.8, 4, true},
		{"a single odd week is capped at the second largest", []float64{20, 4, 4, 4}, 4, 4, true},
		{"the same odd week three weeks back is capped too", []float64{4, 4, 20, 4}, 4, 4, true},
		{"two weeks are enough: the larger, ready for either", []float64{2, 3}, 3, 2, true},
		{"one observed week is no estimate", []float64{5, -1, -1, -1}, 0, 1, false},
		{"weeks beyond the retention are not used", []float64{-1, -1, -1, -1, 9, 9}, 0, 0, false},
	}
	target := monday.Add(8*Week + 18*time.Hour)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			for k, v := range tc.values {
				if v >= 0 {
					h.Observe(target.Add(-time.Duration(k+1)*Week), Demand{KindLegacyAsk: v})
				}
			}
			v, n, ok := h.Estimate(target.Add(2*time.Minute), Params{Weeks: 4})
			if v != tc.want || n != tc.samples || ok != tc.ok {
				t.Errorf("Estimate = %g, %d, %t; want %g, %d, %t", v, n, ok, tc.want, tc.samples, tc.ok)
			}
		})
	}
}

func TestObserveKeepsTheMaxPerComponentAndTotalIsTheLargestAsk(t *testing.T) {
	h := NewHistory()
	at := monday.Add(18*time.Hour + time.Minute)
	h.Observe(at, Demand{KindLegacyAsk: 2})
	h.Observe(at.Add(3*time.Minute), Demand{KindLegacyAsk: 1, KindLatency: 3})
	h.Observe(at.Add(4*time.Minute), Demand{KindLatency: 2.5})
	d, ok := h.Demand(monday.Add(18 * time.Hour))
	if !ok || len(d) != 2 || d[KindLegacyAsk] != 2 || d[KindLatency] != 3 {
		t.Fatalf("bucket %v %t, want celery 2 latency 3", d, ok)
	}
	if v, ok := d.Total(); v != 3 || !ok {
		t.Errorf("Total = %g %t, want 3 true", v, ok)
	}
	if _, ok := h.Demand(monday.Add(18*time.Hour + 10*time.Minute)); ok {
		t.Error("the next bucket was observed")
	}
}

func TestEvaluate(t *testing.T) {
	p := Params{Weeks: 4, LeadTime: 5 * time.Minute, MinWeeks: 2, MaxError: 0.5}
	t.Run("with under two weeks of history the forecast stays silent", func(t *testing.T) {
		h := NewHistory()
		fill(h, 1, 0, 1, nil)
		now := monday.Add(Week + 6*24*time.Hour + 17*time.Hour + 55*time.Minute) // 1.99 weeks deep
		e := Evaluate(h, now, decide.ForecastEnabled, p)
		o := decide.ForecastOpinion(e)
		if o.Desired != nil || e.HistoryWeeks >= 2 {
			t.Fatalf("opinion %v at depth %g, want none", *o.Desired, e.HistoryWeeks)
		}
	})
	t.Run("a noisy weekly habit is expected before its evening peak", func(t *testing.T) {
		h := NewHistory()
		fill(h, 4, 0.2, 2, nil)
		now := monday.Add(4*Week + 17*time.Hour + 55*time.Minute) // Monday 17:55, peak at 18:00
		e := Evaluate(h, now, decide.ForecastEnabled, p)
		o := decide.ForecastOpinion(e)
		if e.Slot != "Mon 18:00 UTC" || e.Samples != 4 || e.HistoryWeeks != 4.11 {
			t.Fatalf("slot %q samples %d depth %g", e.Slot, e.Samples, e.HistoryWeeks)
		}
		if o.Desired == nil || *o.Desired < 4 || *o.Desired > 4.8 || !o.Active {
			t.Fatalf("opinion %+v, want 4..4.8 replicas and active", o)
		}
		if e.LastWeek == nil || e.LastWeek.Relative > 0.3 || e.LastWeek.Buckets != 1801 {
			// The trace ends at the week's start: last week from Monday 17:55 on.
			t.Fatalf("last week %+v, want a small error over 1801 buckets", e.LastWeek)
		}
	})
	t.Run("a one-off anomaly week does not cause a lasting over-forecast", func(t *testing.T) {
		h := NewHistory()
		// Week 2 (from monday) had a viral Tuesday: 15 replicas all day.
		fill(h, 6, 0.1, 3, func(at time.Time, v float64) float64 {
			if at.Sub(monday) >= 2*Week && at.Sub(monday) < 3*Week && at.Weekday() == time.Tuesday {
				return 15
			}
			return v
		})
		for k := 3; k <= 6; k++ {
			now := monday.Add(time.Duration(k)*Week + 24*time.Hour + 11*time.Hour + 55*time.Minute) // Tuesday 11:55
			e := Evaluate(h, now, decide.ForecastEnabled, p)
			if e.Estimate == nil || *e.Estimate > 0.3 {
				t.Errorf("%d weeks after the start, Tuesday noon estimate %v, want at most 0.3 (the habit, not the anomaly)", k, e.Estimate)
			}
		}
	})
	t.Run("a habit that moved makes the forecast back off: it over-forecast the old hours", func(t *testing.T) {
		h := NewHistory()
		// The habit moved from the evening to the morning in week 3.
		fill(h, 4, 0, 4, func(at time.Time, v float64) float64 {
			if at.Sub(monday) >= 3*Week && at.Weekday() != time.Saturday && at.Weekday() != time.Sunday {
				if at.Hour() >= 8 && at.Hour() < 11 {
					return 4
				}
				return 0.2
			}
			return v
		})
		e := Evaluate(h, monday.Add(4*Week+17*time.Hour+55*time.Minute), decide.ForecastEnabled, p)
		o := decide.ForecastOpinion(e)
		if e.LastWeek == nil || e.LastWeek.Over <= 0.5 || e.LastWeek.UnderMinutes != 4*3*60 {
			// Last week is Monday 17:55 on: four evenings over-forecast,
			// four mornings under-forecast.
			t.Fatalf("last week %+v, want an over-forecast above 0.5 and 720 minutes under", e.LastWeek)
		}
		if o.Desired != nil {
			t.Fatalf("opinion %g, want silence", *o.Desired)
		}
	})
	t.Run("an unforeseen rush does not make the forecast back off: under-forecasts cost nothing", func(t *testing.T) {
		h := NewHistory()
		// Week 3 had its usual evenings and, on Friday, a viral day.
		fill(h, 4, 0, 4, func(at time.Time, v float64) float64 {
			if at.Sub(monday) >= 3*Week && at.Weekday() == time.Friday && at.Hour() >= 8 && at.Hour() < 18 {
				return 12
			}
			return v
		})
		e := Evaluate(h, monday.Add(4*Week+17*time.Hour+55*time.Minute), decide.ForecastEnabled, p)
		o := decide.ForecastOpinion(e)
		if e.LastWeek == nil || e.LastWeek.Relative <= 0.5 || e.LastWeek.Over != 0 || o.Desired == nil || *o.Desired != 4 {
			t.Fatalf("last week %+v, opinion %v: want a large relative error, no over-forecast and the habit's 4 replicas", e.LastWeek, o.Desired)
		}
	})
}

func TestErrorsCountsUnderMinutesAndExtraPodHours(t *testing.T) {
	h := NewHistory()
	at := monday.Add(18 * time.Hour)
	h.Observe(at, Demand{KindLegacyAsk: 4})
	h.Observe(at.Add(Week), Demand{KindLegacyAsk: 4})
	h.Observe(at.Add(2*Week), Demand{KindLegacyAsk: 2})             // forecast 4: over by 2
	h.Observe(at.Add(2*Week+Bucket), Demand{KindLegacyAsk: 1})      // no estimate: not counted
	h.Observe(at.Add(-Week), Demand{KindLegacyAsk: 4})              // makes 3 weeks deep
	h.Observe(at.Add(2*Week-Week+Bucket), Demand{KindLegacyAsk: 0}) // one week of the next slot
	e := h.Errors(at.Add(2*Week), at.Add(2*Week+2*Bucket), Params{Weeks: 4, MinWeeks: 2})
	if e == nil || e.Buckets != 1 || e.MeanError != 2 || e.UnderMinutes != 0 || e.ExtraPodHours != 2*Bucket.Hours() || e.Relative != 1 {
		t.Fatalf("errors %+v, want 1 bucket over by 2", e)
	}
}

func TestBacktestIsSilentForTheFirstTwoWeeksThenScoresEachWeek(t *testing.T) {
	h := NewHistory()
	fill(h, 4, 0, 5, nil)
	r := Backtest(h, Params{Weeks: 4, MinWeeks: 2, MaxError: 0.5})
	if !r.From.Equal(monday) || !r.To.Equal(monday.Add(4*Week)) || r.Buckets != 4*2016 || len(r.Weeks) != 4 {
		t.Fatalf("report %+v", r)
	}
	for i, w := range r.Weeks {
		if silent := w.Error == nil; silent != (i < 2) {
			t.Errorf("week %d silent %t, want %t", i, silent, i < 2)
		}
	}
	// A steady habit is forecast exactly.
	if e := r.Total; e == nil || e.Buckets != 2*2016 || e.MeanAbsError != 0 || e.UnderMinutes != 0 || e.ExtraPodHours != 0 {
		t.Errorf("total %+v, want 4032 exact buckets", e)
	}
	if e := Backtest(NewHistory(), Params{Weeks: 4, MinWeeks: 2}); e.Buckets != 0 || e.Total != nil || len(e.Weeks) != 0 {
		t.Errorf("empty history: %+v", e)
	}
}

func TestTheEstimatorBeatsLastWeeksSlotAfterAnAnomaly(t *testing.T) {
	h := NewHistory()
	fill(h, 4, 0, 6, func(at time.Time, v float64) float64 {
		if at.Sub(monday) >= 2*Week && at.Sub(monday) < 3*Week && at.Weekday() == time.Tuesday {
			return 15 // a viral Tuesday in week 2
		}
		return v
	})
	r := Backtest(h, Params{Weeks: 4, MinWeeks: 2, MaxError: 0.5})
	// Last week's slot repeats the viral Tuesday in week 3: 21 hours of
	// 14.8 replicas too many and 3 evening hours of 11: 343.8 pod-hours.
	if r.Naive == nil || r.Total == nil || math.Abs(r.Naive.ExtraPodHours-343.8) > 1e-6 || r.Total.ExtraPodHours != 0 {
		t.Fatalf("extra pod-hours: naive %+v, estimator %+v", r.Naive, r.Total)
	}
}
