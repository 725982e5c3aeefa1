package forecast

import (
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// fourWeeks is a full retention of two components.
func fourWeeks() *History {
	h := NewHistory()
	fill(h, 4, 0.2, 9, nil)
	for t := monday; t.Before(monday.Add(4 * Week)); t = t.Add(Bucket) {
		h.Observe(t, Demand{KindLatency: habit(t) / 2})
	}
	return h
}

// BenchmarkEvaluate is one slot's evidence, last week's error included
// (2016 estimates): the server does it once per slot and ScaledObject.
func BenchmarkEvaluate(b *testing.B) {
	h := fourWeeks()
	p := Params{Weeks: 4, LeadTime: 5 * time.Minute, MinWeeks: 2, MaxError: 0.5}
	now := monday.Add(4*Week - time.Hour)
	for b.Loop() {
		Evaluate(h, now, decide.ForecastEnabled, p)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/evaluation")
}

// BenchmarkEvaluateInAZone is BenchmarkEvaluate with the slots in
// Europe/Berlin: each past slot's bucket is found through the zone's
// offsets instead of by subtracting whole weeks.
func BenchmarkEvaluateInAZone(b *testing.B) {
	h := fourWeeks()
	p := Params{Weeks: 4, LeadTime: 5 * time.Minute, MinWeeks: 2, MaxError: 0.5, Zone: berlin(b)}
	now := monday.Add(4*Week - time.Hour)
	for b.Loop() {
		Evaluate(h, now, decide.ForecastEnabled, p)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/evaluation")
}

// BenchmarkEstimate is one slot's estimate alone: what a reading costs
// between slots is less (the evidence is cached).
func BenchmarkEstimate(b *testing.B) {
	h := fourWeeks()
	target := monday.Add(4*Week - time.Hour)
	for b.Loop() {
		h.Estimate(target, Params{Weeks: 4})
	}
}
