package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/test/servers"
)

// monday is a Monday 00:00 UTC.
var monday = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// clock is a settable clock for one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func config(t *testing.T, url string, weeks string) *forecast.Config {
	t.Helper()
	m := meta.New(map[string]string{"brokerURL": url, forecast.KeyMode: "enabled", forecast.KeyWeeks: weeks})
	cel, err := celery.ParseConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := forecast.ParseConfig(m, cel, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func client(t testing.TB, r *servers.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStoreWritesTheMaxPerBucketAndReadsItBack(t *testing.T) {
	r := servers.StartRedis(t)
	ctx := t.Context()
	a := New(client(t, r), "media", "worker", 4)
	b := New(client(t, r), "media", "worker", 4)
	at := monday.Add(18*time.Hour + 2*time.Minute)
	// Two replicas write the same bucket in either order: both keep the max.
	writes := []struct {
		s *Store
		d forecast.Demand
	}{
		{a, forecast.Demand{forecast.KindLegacyAsk: 2.5}},
		{b, forecast.Demand{forecast.KindLegacyAsk: 3, forecast.KindLatency: 1}},
		{a, forecast.Demand{forecast.KindLegacyAsk: 1, forecast.KindLatency: 0.5}},
	}
	for _, w := range writes {
		if err := w.s.Write(ctx, at, w.d, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*Store{a, b} {
		h, err := s.Read(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := h.Demand(at)
		if h.Len() != 1 || !ok || d[forecast.KindLegacyAsk] != 3 || d[forecast.KindLatency] != 1 {
			t.Fatalf("history %v, want one bucket celery 3 latency 1", d)
		}
	}
	if got := client(t, r).HGetAll(ctx, a.Key()).Val(); len(got) != 2 || got["1793642400:celery"] != "3.000" {
		t.Errorf("hash %v, want field 1793642400:celery = 3.000", got)
	}
	if ttl := client(t, r).TTL(ctx, a.Key()).Val(); ttl <= 4*forecast.Week || ttl > 5*forecast.Week {
		t.Errorf("TTL %s, want the retention plus a week", ttl)
	}
}

func TestStoreDropsBucketsAfterTheRetention(t *testing.T) {
	r := servers.StartRedis(t)
	ctx := t.Context()
	s := New(client(t, r), "media", "worker", 2)
	first := monday.Add(18 * time.Hour)
	for _, at := range []time.Time{first, first.Add(forecast.Week), first.Add(2*forecast.Week - forecast.Bucket)} {
		if err := s.Write(ctx, at, forecast.Demand{forecast.KindLegacyAsk: 1}, at); err != nil {
			t.Fatal(err)
		}
	}
	if n := client(t, r).HLen(ctx, s.Key()).Val(); n != 3 {
		t.Fatalf("%d fields before the retention passed, want 3", n)
	}
	// Two weeks after the first bucket, a write trims it.
	later := first.Add(2*forecast.Week + forecast.Bucket)
	if err := s.Write(ctx, later, forecast.Demand{forecast.KindLegacyAsk: 2}, later); err != nil {
		t.Fatal(err)
	}
	h, err := s.Read(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Demand(first); ok || h.Len() != 3 {
		t.Fatalf("first bucket still read (%d buckets), want it dropped", h.Len())
	}
	if n := client(t, r).HLen(ctx, s.Key()).Val(); n != 3 {
		t.Errorf("%d fields after the retention passed, want 3", n)
	}
	if n := client(t, r).ZCard(ctx, s.Key()+":index").Val(); n != 3 {
		t.Errorf("%d index entries, want 3", n)
	}
}

func TestHistorySurvivesARestartAndIsSharedByTwoScalers(t *testing.T) {
	r := servers.StartRedis(t)
	c := config(t, r.URL(0), "4")
	clk := &clock{t: monday.Add(18 * time.Hour)}
	// v × 5 tasks in flight, none waiting: v replicas of demand.
	demand := func(v float64) func(time.Time) forecast.Sample {
		n := int64(v * 5)
		return func(time.Time) forecast.Sample {
			return forecast.Sample{Tasks: &forecast.TaskSample{Backlog: n, InFlight: n}, TasksPerReplica: 5}
		}
	}
	opts := HubOptions{Now: clk.now, Sample: 10 * time.Millisecond, Refresh: 50 * time.Millisecond}

	// Scaler 1 records 2 replicas in the 18:00 bucket, then stops: Close
	// writes the open bucket.
	h1 := NewHub(opts)
	w1 := h1.Watch(c, "media", "worker", demand(2))
	waitFor(t, "a sample", func() bool { return w1.rec != nil && sampled(w1) })
	w1.Close()
	h1.Close()

	// A restarted scaler and a second replica both read it back.
	h2, h3 := NewHub(opts), NewHub(opts)
	t.Cleanup(h2.Close)
	t.Cleanup(h3.Close)
	w2 := h2.Watch(c, "media", "worker", demand(5))
	w3 := h3.Watch(c, "media", "worker", demand(1))
	t.Cleanup(w2.Close)
	t.Cleanup(w3.Close)
	for _, w := range []*Watch{w2, w3} {
		waitFor(t, "the restarted history", func() bool {
			h := w.Latest().Value
			d, ok := historyDemand(h, monday.Add(18*time.Hour))
			return ok && d[forecast.KindDemand] == 2
		})
	}
	// Both record into the 18:05 bucket; when 18:10 comes each writes its
	// bucket once and both agree on the max, 5.
	clk.set(monday.Add(18*time.Hour + 5*time.Minute))
	waitFor(t, "samples in 18:05", func() bool { return sampled(w2) && sampled(w3) })
	clk.set(monday.Add(18*time.Hour + 10*time.Minute))
	for _, w := range []*Watch{w2, w3} {
		waitFor(t, "the 18:05 bucket from both", func() bool {
			d, ok := historyDemand(w.Latest().Value, monday.Add(18*time.Hour+5*time.Minute))
			return ok && d[forecast.KindDemand] == 5
		})
	}
	if n := client(t, r).HLen(context.Background(), New(nil, "media", "worker", 4).Key()).Val(); n != 2 {
		t.Errorf("%d fields, want 2 (one per bucket)", n)
	}
}

// sampled reports whether the recorder's open bucket has the clock's bucket.
func sampled(w *Watch) bool {
	return w.rec.sampledAt().Equal(forecast.BucketOf(w.rec.o.Now()))
}

// historyDemand is h's bucket holding at; none while h is nil (not read yet).
func historyDemand(h *forecast.History, at time.Time) (forecast.Demand, bool) {
	if h == nil {
		return nil, false
	}
	return h.Demand(at)
}

func TestAHistoryInThePreviousFormatStillLoads(t *testing.T) {
	r := servers.StartRedis(t)
	c := client(t, r)
	s := New(c, "media", "worker", 4)
	at := monday.Add(18 * time.Hour)
	// What a scaler before celery-demand wrote: the celery and latency asks.
	old := map[string]any{}
	for k := range 3 {
		b := at.Add(-time.Duration(k+1) * forecast.Week).Unix()
		old[strconv.FormatInt(b, 10)+":celery"] = "8.000"
		old[strconv.FormatInt(b, 10)+":latency"] = "1.000"
	}
	if err := c.HSet(t.Context(), s.Key(), old).Err(); err != nil {
		t.Fatal(err)
	}
	// This version writes the same slot's demand one week back, beside the
	// old field (a replica not yet upgraded may still write it too).
	if err := s.Write(t.Context(), at.Add(-forecast.Week), forecast.Demand{forecast.KindDemand: 2.7, forecast.KindLatency: 0.5}, at); err != nil {
		t.Fatal(err)
	}
	h, err := s.Read(t.Context(), at)
	if err != nil {
		t.Fatal(err)
	}
	wantTotals := []float64{2.7, 8, 8} // 1, 2 and 3 weeks back
	for k, want := range wantTotals {
		d, ok := h.Demand(at.Add(-time.Duration(k+1) * forecast.Week))
		v, _ := d.Total()
		if !ok || v != want || d.Legacy() != (k > 0) {
			t.Errorf("%d weeks back: %v, total %g; want %g (legacy %t)", k+1, d, v, want, k > 0)
		}
	}
	if n := h.LegacyBuckets(); n != 2 {
		t.Errorf("LegacyBuckets = %d, want 2", n)
	}
}

func TestAWatchKeepingFewerWeeksDoesNotTrimAnotherWatchsHistory(t *testing.T) {
	r := servers.StartRedis(t)
	clk := &clock{t: monday.Add(10*forecast.Week + 18*time.Hour)}
	opts := HubOptions{Now: clk.now, Sample: 10 * time.Millisecond, Refresh: 50 * time.Millisecond}
	long := New(client(t, r), "media", "worker", 8)
	// Seven weeks of one slot, written by a watch that keeps 8.
	for k := 1; k <= 7; k++ {
		b := clk.now().Add(-time.Duration(k) * forecast.Week)
		if err := long.Write(t.Context(), b, forecast.Demand{forecast.KindDemand: 3}, b); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHub(opts)
	t.Cleanup(h.Close)
	// Two triggers of one ScaledObject, 2 and 8 weeks: the 2-week watch
	// records, and its write trims to 8 weeks, not 2.
	one := func(time.Time) forecast.Sample {
		return forecast.Sample{Tasks: &forecast.TaskSample{Backlog: 5, InFlight: 5}, TasksPerReplica: 5}
	}
	nothing := func(time.Time) forecast.Sample { return forecast.Sample{} }
	w8 := h.Watch(config(t, r.URL(0), "8"), "media", "worker", nothing)
	w2 := h.Watch(config(t, r.URL(0), "2"), "media", "worker", one)
	t.Cleanup(w8.Close)
	waitFor(t, "a sample", func() bool { return sampled(w2) })
	w2.Close()
	got, err := long.Read(t.Context(), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != 8 {
		t.Fatalf("%d buckets after the 2-week watch wrote, want the 7 old ones and its own", got.Len())
	}
	// Each watch uses its own weeks of the one history.
	target := clk.now()
	if _, n, _ := got.Estimate(target, forecast.Params{Weeks: 2}); n != 2 {
		t.Errorf("the 2-week watch's estimate uses %d weeks, want 2", n)
	}
	if _, n, _ := got.Estimate(target, forecast.Params{Weeks: 8}); n != 7 {
		t.Errorf("the 8-week watch's estimate uses %d weeks, want 7", n)
	}
}

func TestAHistoryNeverHoldsADemandThatIsNotAReplicaCount(t *testing.T) {
	r := servers.StartRedis(t)
	c := client(t, r)
	at := monday.Add(18 * time.Hour)
	field := strconv.FormatInt(forecast.BucketOf(at.Add(-forecast.Week)).Unix(), 10) + ":" + forecast.KindDemand

	t.Run("a demand above the ceiling is written as the ceiling", func(t *testing.T) {
		s := New(c, "media", "above", 4)
		if err := s.Write(t.Context(), at.Add(-forecast.Week), forecast.Demand{forecast.KindDemand: 1.25e17}, at); err != nil {
			t.Fatal(err)
		}
		if got := c.HGet(t.Context(), s.Key(), field).Val(); got != "10000.000" {
			t.Errorf("stored %q, want 10000.000", got)
		}
	})
	for _, v := range []float64{math.Inf(1), math.NaN(), -1} {
		t.Run(fmt.Sprintf("a demand of %g is refused and nothing is written", v), func(t *testing.T) {
			s := New(c, "media", "refused", 4)
			err := s.Write(t.Context(), at.Add(-forecast.Week), forecast.Demand{forecast.KindDemand: v}, at)
			want := fmt.Sprintf("forecast: write history %s: %s demand %g is not a replica count: nothing written", s.Key(), forecast.KindDemand, v)
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %q", err, want)
			}
			if n := c.Exists(t.Context(), s.Key()).Val(); n != 0 {
				t.Errorf("the history exists after a refused write")
			}
		})
	}
	// A broker's hash is anyone's to write: what an older version, another
	// tool or a hand wrote is read only when it is a replica count.
	for _, stored := range []string{"+Inf", "inf", "NaN", "1e308", "10000.001", "-0.5"} {
		t.Run("a stored "+stored+" fails the read naming the field", func(t *testing.T) {
			s := New(c, "media", "stored-"+stored, 4)
			if err := c.HSet(t.Context(), s.Key(), field, stored).Err(); err != nil {
				t.Fatal(err)
			}
			_, err := s.Read(t.Context(), at)
			want := fmt.Sprintf("forecast: read history %s: field %q = %q is not <unix>:<component> = replicas from 0 to 10000", s.Key(), field, stored)
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}
