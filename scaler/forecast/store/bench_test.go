package store

import (
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/test/servers"
)

// fourWeeks is a full retention of two components: a weekday-evening habit
// (4 replicas 18:00–21:00 on weekdays, 0.2 otherwise) and half of it.
func fourWeeks() *forecast.History {
	h := forecast.NewHistory()
	for t := monday; t.Before(monday.Add(4 * forecast.Week)); t = t.Add(forecast.Bucket) {
		v := 0.2
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday && t.Hour() >= 18 && t.Hour() < 21 {
			v = 4
		}
		h.Observe(t, forecast.Demand{forecast.KindLegacyAsk: v, forecast.KindLatency: v / 2})
	}
	return h
}

// BenchmarkStoreRead reads a full four-week history of two components
// (16128 fields) from a real redis-server: the history poller's cost, once a
// minute per ScaledObject.
func BenchmarkStoreRead(b *testing.B) {
	r := servers.StartRedis(b)
	c := client(b, r)
	s := New(c, "media", "worker", 4)
	h := fourWeeks()
	end := monday.Add(4 * forecast.Week)
	for t := monday; t.Before(end); t = t.Add(forecast.Bucket) {
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
	s := New(c, "media", "worker", 4)
	at := monday
	for b.Loop() {
		if err := s.Write(b.Context(), at, forecast.Demand{forecast.KindLegacyAsk: 1.5, forecast.KindLatency: 0.5}, at); err != nil {
			b.Fatal(err)
		}
		at = at.Add(forecast.Bucket) // past four weeks each write also trims one bucket
	}
}
