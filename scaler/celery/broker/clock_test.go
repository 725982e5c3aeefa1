package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/test/servers"
)

// skewedHub is a scaler replica whose clock (HubOptions.Now and Clock)
// runs skew off the real one, as on a host whose clock is wrong: its ages
// must not move, as they are judged by the broker's clock.
func skewedHub(t *testing.T, skew time.Duration) *broker.Hub {
	t.Helper()
	now := func() time.Time { return time.Now().Add(skew) }
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond, Now: now, Redis: redisbroker.Options{AttributionInterval: 100 * time.Millisecond, Clock: now}})
	t.Cleanup(h.Close)
	return h
}

// brokerTime reads the broker's clock (TIME): the tests bound ages by it.
func brokerTime(t *testing.T, c *redis.Client) time.Time {
	t.Helper()
	at, err := c.Time(t.Context()).Result()
	if err != nil {
		t.Fatalf("TIME: %v", err)
	}
	return at
}

// afterPolls waits for two more polls of w and returns the second's
// reading: that poll began after this call did.
func afterPolls(t *testing.T, w *poll.View[celery.Backlog]) celery.Backlog {
	t.Helper()
	for range 2 {
		select {
		case <-w.Changed():
		case <-time.After(60 * time.Second):
			t.Fatal("no poll in 60s")
		}
	}
	s := w.Latest()
	if s.Err != nil {
		t.Fatalf("poll: %v", s.Err)
	}
	return s.Value
}

// within says whether age (seconds) lies in [lo, hi], give or take the
// millisecond a first sighting is kept to.
func within(age float64, lo, hi time.Duration) bool {
	d := time.Duration(age * float64(time.Second))
	return d >= lo-time.Millisecond && d <= hi+time.Millisecond
}

func TestScalerReplicasWithSkewedClocksReadTheBrokersAges(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(12)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 12})
	t.Cleanup(func() { c.Close() })
	t0 := brokerTime(t, c)
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url, Preload: []string{stampSnippet}}, servers.Block("s", "stamped"))
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url}, servers.Block("u", "plain"))
	m, _ := headOf(t, c, "stamped")
	stamp := m.stamp(t) // the producer's clock: this host's, as the broker's
	l := layout("", time.Hour, true, "stamped", "plain")
	l.ShareFirstSeen = true

	// One scaler replica's clock runs 2 minutes fast and sees the unstamped
	// task first; another's runs 5 minutes slow.
	fast := skewedHub(t, 2*time.Minute).Watch(mustBroker(t, url), l)
	defer fast.Close()
	waitFor(t, fast, "the fast replica's first sighting", hasWait("plain", celery.WaitFirstSeen))
	t1 := brokerTime(t, c) // the first sighting was in [t0, t1]
	slow := skewedHub(t, -5*time.Minute).Watch(mustBroker(t, url), l)
	defer slow.Close()
	waitFor(t, slow, "the slow replica reads it", hasWait("plain", celery.WaitFirstSeen))

	// Two seconds on the broker's clock, so that no age of 0 passes.
	for brokerTime(t, c).Before(t1.Add(2 * time.Second)) {
		<-fast.Changed()
	}
	t2 := brokerTime(t, c)
	readings := map[string]celery.Backlog{"2 minutes fast": afterPolls(t, fast), "5 minutes slow": afterPolls(t, slow)}
	t3 := brokerTime(t, c) // both readings were taken in [t2, t3]
	for name, b := range readings {
		plain, stamped := queueOf(t, b, "plain"), queueOf(t, b, "stamped")
		if !within(*plain.OldestWaitSeconds, t2.Sub(t1), t3.Sub(t0)) || plain.WaitMethod != celery.WaitFirstSeen {
			t.Errorf("%s: the unstamped task waited %.3f s (%s), want %s to %s by the broker's clock",
				name, *plain.OldestWaitSeconds, plain.WaitMethod, t2.Sub(t1), t3.Sub(t0))
		}
		if !within(*stamped.OldestWaitSeconds, t2.Sub(stamp), t3.Sub(stamp)) {
			t.Errorf("%s: the stamped task waited %.3f s, want %s to %s by the broker's clock",
				name, *stamped.OldestWaitSeconds, t2.Sub(stamp), t3.Sub(stamp))
		}
	}
}

// putUnacked writes a kombu unacked entry for queue q, delivered at
// delivered (kombu's unacked_index score, the worker's clock), with an
// optional ETA, as a worker that took the task leaves it.
func putUnacked(t *testing.T, c *redis.Client, tag, q string, delivered, eta time.Time) {
	t.Helper()
	etaJSON := "null"
	if !eta.IsZero() {
		etaJSON = fmt.Sprintf("%q", eta.UTC().Format(time.RFC3339Nano))
	}
	v := fmt.Sprintf(`[{"body": "W10=", "headers": {"task": "render", "id": %q, "eta": %s}, "properties": {"delivery_tag": %q}}, "", %q]`,
		tag, etaJSON, tag, q)
	pipe := c.TxPipeline()
	pipe.HSet(t.Context(), "unacked", tag, v)
	pipe.ZAdd(t.Context(), "unacked_index", redis.Z{Score: float64(delivered.UnixNano()) / 1e9, Member: tag})
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestUnackedEntriesAreAgedByTheBrokersClock(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 13})
	t.Cleanup(func() { c.Close() })
	now := brokerTime(t, c)
	putUnacked(t, c, "running", "q", now, time.Time{})                // in flight
	putUnacked(t, c, "eta", "q", now, now.Add(time.Hour))             // held until its ETA
	putUnacked(t, c, "dead", "q", now.Add(-2*time.Hour), time.Time{}) // its worker died: queued again
	type counts struct{ Queued, InFlight, ETAWaiting, Stale int64 }
	want := counts{Queued: 1, InFlight: 1, ETAWaiting: 1, Stale: 1} // a visibility timeout of 1 h
	for _, skew := range []time.Duration{2 * time.Hour, -2 * time.Hour} {
		t.Run(fmt.Sprintf("a scaler clock %s off", skew), func(t *testing.T) {
			w := skewedHub(t, skew).Watch(mustBroker(t, r.URL(13)), layout("", time.Hour, true, "q"))
			defer w.Close()
			b := waitFor(t, w, "attributed", func(b celery.Backlog) bool { return !b.UnackedPartial && b.UnackedSampled == 3 })
			got := counts{b.Queued, b.InFlight, b.ETAWaiting, b.Stale}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}
