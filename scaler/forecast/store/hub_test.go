package store

import (
	"errors"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/test/servers"
)

// TestClosingTheHubFirstStillWritesEveryOpenBucket: the poller owns the
// broker's client and its recorders, so a Hub closed while its Watches are
// open writes their open buckets before it closes the client; the Watches'
// own Close afterwards writes nothing more.
func TestClosingTheHubFirstStillWritesEveryOpenBucket(t *testing.T) {
	r := servers.StartRedis(t)
	clk := &clock{t: monday.Add(18 * time.Hour)}
	h := NewHub(HubOptions{Now: clk.now, Sample: 10 * time.Millisecond, Refresh: 50 * time.Millisecond})
	demand := func(n int64) func(time.Time) forecast.Sample {
		return func(time.Time) forecast.Sample {
			return forecast.Sample{Tasks: &forecast.TaskSample{Backlog: n, InFlight: n}, TasksPerReplica: 5}
		}
	}
	c := config(t, r.URL(0), "4")
	ws := []*Watch{h.Watch(c, "media", "worker", demand(10)), h.Watch(c, "media", "encoder", demand(15))}
	for _, w := range ws {
		waitFor(t, "a sample", func() bool { return sampled(w) })
	}
	h.Close()
	for _, w := range ws {
		w.Close()
	}
	for name, want := range map[string]float64{"worker": 2, "encoder": 3} {
		got, err := New(client(t, r), "media", name, 4).Read(t.Context(), clk.now())
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := got.Demand(clk.now()); !ok || d[forecast.KindDemand] != want || got.Len() != 1 {
			t.Errorf("media/%s: bucket %v (%t, %d buckets), want %s %g", name, d, ok, got.Len(), forecast.KindDemand, want)
		}
	}
	// A Watch of a closed Hub reads nothing and records nothing.
	w := h.Watch(c, "media", "late", demand(5))
	defer w.Close()
	if w.rec != nil || !errors.Is(w.Latest().Err, poll.ErrClosed) {
		t.Errorf("a Watch of a closed Hub: recorder %v, err %v; want none, ErrClosed", w.rec, w.Latest().Err)
	}
}
