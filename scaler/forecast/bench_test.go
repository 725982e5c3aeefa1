package forecast

import (
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/test/servers"
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

// BenchmarkStoreRead reads a full four-week history of two components
// (16128 fields) from a real redis-server: the history poller's cost, once a
// minute per ScaledObject.
func BenchmarkStoreRead(b *testing.B) {
	r := servers.StartRedis(b)
	c := client(b, r)
	s := NewStore(c, "media", "worker", 4)
	h := fourWeeks()
	end := monday.Add(4 * Week)
	for t := monday; t.Before(end); t = t.Add(Bucket) {
		d, _ := h.Demand(t)
		if err := s.Write(b.Context(), t, d, t); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		got, err := s.Read(b.Context(), end)
		if err != nil || got.Len() != 4*2016 {
			b.Fatalf("read %v buckets, %v", got.Len(), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/read")
}

// BenchmarkStoreWrite is one bucket's write (the Lua max and trim) into a
// full history: the recorder's cost, once per 5 minutes per ScaledObject.
func BenchmarkStoreWrite(b *testing.B) {
	r := servers.StartRedis(b)
	c := client(b, r)
	s := NewStore(c, "media", "worker", 4)
	at := monday
	for b.Loop() {
		if err := s.Write(b.Context(), at, Demand{KindLegacyAsk: 1.5, KindLatency: 0.5}, at); err != nil {
			b.Fatal(err)
		}
		at = at.Add(Bucket) // past four weeks each write also trims one bucket
	}
}
