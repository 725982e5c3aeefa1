package forecast

import (
	"testing"
	"time"
)

func TestBucketerClosesEachBucketIntoItsDemand(t *testing.T) {
	var b Bucketer
	at := monday.Add(18 * time.Hour)
	add := func(off time.Duration, s Sample) (time.Time, Demand, bool) {
		return b.Add(at.Add(off), s)
	}
	tasks := func(backlog, inFlight, completed int64) *TaskSample {
		return &TaskSample{Backlog: backlog, InFlight: inFlight, Completed: completed}
	}
	// 18:00–18:05: 10 in flight, 30 s each, served as they come: 2 replicas;
	// latency asked for 1.5 at most.
	for i := range int64(20) {
		lat := Demand{KindLatency: 0}
		if i == 7 {
			lat[KindLatency] = 1.5
		}
		if _, _, ok := add(time.Duration(i)*15*time.Second, Sample{Tasks: tasks(10, 10, 5*i), TasksPerReplica: 5, Asks: lat}); ok {
			t.Fatalf("sample %d closed a bucket", i)
		}
	}
	// The first sample of 18:05 closes 18:00; it has no celery reading.
	bucket, d, ok := add(5*time.Minute, Sample{Asks: Demand{KindLatency: 0.5}})
	if !ok || !bucket.Equal(at) || len(d) != 2 || d[KindDemand] != 2 || d[KindLatency] != 1.5 {
		t.Fatalf("closed %s %v %t; want 18:00 with celery-demand 2 and latency 1.5", bucket, d, ok)
	}
	if b.Last.Method != MethodArrivals || b.Last.ServiceSeconds != 30 {
		t.Errorf("Last = %+v", b.Last)
	}
	bucket, d, ok = b.Close()
	if !ok || !bucket.Equal(at.Add(Bucket)) || len(d) != 1 || d[KindLatency] != 0.5 {
		t.Errorf("Close = %s %v %t; want 18:05 with latency 0.5 only", bucket, d, ok)
	}
	if _, d, ok := b.Close(); ok {
		t.Errorf("a second Close = %v, want nothing", d)
	}
}

func TestBucketerBoundsItsSamples(t *testing.T) {
	var b Bucketer
	at := monday.Add(18 * time.Hour)
	for i := range int64(3 * maxSamples) {
		b.Add(at.Add(time.Duration(i)*50*time.Millisecond), Sample{Tasks: &TaskSample{Backlog: 10, InFlight: 10, Completed: i}, TasksPerReplica: 5})
	}
	if n := len(b.tasks); n > maxSamples || n < maxSamples/2 {
		t.Fatalf("%d samples kept, want at most %d", n, maxSamples)
	}
	_, d, _ := b.Close()
	// 3072 samples 50 ms apart, one completion each: 20 tasks a second of
	// 0.5 s, 10 at once: 2 replicas.
	if v := d[KindDemand]; v < 1.99 || v > 2.01 {
		t.Errorf("demand %g after thinning, want 2", v)
	}
}

func TestALegacyCeleryAskCountsOnlyWhereTheBucketHasNoDemand(t *testing.T) {
	tests := []struct {
		name   string
		d      Demand
		total  float64
		legacy bool
	}{
		{"a legacy bucket is its ask", Demand{KindLegacyAsk: 8, KindLatency: 1}, 8, true},
		{"the demand replaces the legacy ask", Demand{KindLegacyAsk: 8, KindDemand: 2.7, KindLatency: 1}, 2.7, false},
		{"latency above the demand wins", Demand{KindDemand: 2.7, KindLatency: 3}, 3, false},
		{"a latency-only bucket", Demand{KindLatency: 0.4}, 0.4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v, ok := tc.d.Total(); !ok || v != tc.total || tc.d.Legacy() != tc.legacy {
				t.Errorf("Total = %g %t, Legacy %t; want %g, %t", v, ok, tc.d.Legacy(), tc.total, tc.legacy)
			}
		})
	}
}
