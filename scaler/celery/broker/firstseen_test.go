package broker_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/test/servers"
)

const firstSeenKey = "montage-scaler:first-seen:q"

// sharedSighting starts a hub that logs to logs and keeps first sightings
// of queue q in the broker, and waits until it has one for the unstamped
// task sent there; it returns the watch and what the broker keeps.
func sharedSighting(t *testing.T, r *servers.Redis, c *redis.Client, logs *servers.LogBuffer) (*broker.Hub, *poll.View[celery.Backlog], string) {
	t.Helper()
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: r.URL(0)}, servers.Block("u", "q"))
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(h.Close)
	l := layout("", time.Hour, true, "q")
	l.ShareFirstSeen = true
	w := h.Watch(mustBroker(t, r.URL(0)), l)
	t.Cleanup(w.Close)
	waitFor(t, w, "first seen", hasWait("q", celery.WaitFirstSeen))
	kept, err := c.Get(t.Context(), firstSeenKey).Result()
	if err != nil {
		t.Fatalf("no first sighting in the broker: %v", err)
	}
	return h, w, kept
}

// sightingTime is the time a first-seen value keeps.
func sightingTime(t *testing.T, v string) time.Time {
	t.Helper()
	_, ms, _ := strings.Cut(v, " ")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		t.Fatalf("first-seen value %q: %v", v, err)
	}
	return time.UnixMilli(n)
}

// restored waits until the broker holds a first sighting again, then
// returns it and a reading taken after it was written.
func restored(t *testing.T, w *poll.View[celery.Backlog], c *redis.Client) (string, celery.Backlog) {
	t.Helper()
	var v string
	waitFor(t, w, "the first-seen key written again", func(celery.Backlog) bool {
		v, _ = c.Get(t.Context(), firstSeenKey).Result()
		return v != ""
	})
	return v, afterPolls(t, w)
}

func TestAFirstSeenKeyEvictedUnderVolatileLRUKeepsTheOlderSighting(t *testing.T) {
	r := servers.StartRedisWith(t, servers.RedisOptions{Args: []string{"--maxmemory-policy", "volatile-lru"}})
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	logs := &servers.LogBuffer{}
	_, w, kept := sharedSighting(t, r, c, logs)
	first := sightingTime(t, kept)
	// The broker's clock moves on, so that a sighting written anew would
	// be later.
	for brokerTime(t, c).Before(first.Add(100 * time.Millisecond)) {
		<-w.Changed()
	}

	// Memory runs short: the first-seen keys, the only ones with a TTL, go
	// first (Celery's lists have none).
	evictedAt := brokerTime(t, c)
	if err := c.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	err := c.Set(t.Context(), "filler", "x", 0).Err()
	if err := c.ConfigSet(t.Context(), "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(err), "OOM") || !strings.Contains(c.Info(t.Context(), "stats").Val(), "evicted_keys:1\r\n") {
		t.Fatalf("no eviction: SET said %v; %s", err, c.Info(t.Context(), "stats").Val())
	}
	if n := c.LLen(t.Context(), "q").Val(); n != 1 {
		t.Fatalf("the task's list lost its task (%d left): the test evicted more than the sighting", n)
	}

	got, b := restored(t, w, c)
	if got != kept {
		t.Errorf("the broker keeps %q after the eviction, want the older sighting %q", got, kept)
	}
	q := queueOf(t, b, "q")
	if q.WaitMethod != celery.WaitFirstSeen || !within(*q.OldestWaitSeconds, evictedAt.Sub(first), time.Hour) {
		t.Errorf("after the eviction: waited %.3f s (%s), want at least the %s it had waited when evicted, first-seen",
			*q.OldestWaitSeconds, q.WaitMethod, evictedAt.Sub(first))
	}
	if !strings.Contains(b.WaitError, `queue "q": its first-seen key was lost from the broker`) {
		t.Errorf("waitError %q does not say the key was lost", b.WaitError)
	}
	if !strings.Contains(logs.String(), "first-seen key lost") {
		t.Errorf("no log line says the key was lost:\n%s", logs)
	}
}

// counted is montage_scaler_celery_wait_warnings_total for kind.
func counted(t *testing.T, h *broker.Hub, kind string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "montage_scaler_celery_wait_warnings_total" && len(labels) == 1 && labels["kind"] == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no montage_scaler_celery_wait_warnings_total{kind=%q}", kind)
	return 0
}

func TestALostFirstSeenKeyIsExplainedLoggedAndCountedOnce(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	logs := &servers.LogBuffer{}
	h, w, kept := sharedSighting(t, r, c, logs)
	broker := "redis://" + r.Addr() + "/0"
	if n := counted(t, h, "first_seen_lost"); n != 0 {
		t.Fatalf("counted %v lost keys before any was lost", n)
	}
	if err := c.Del(t.Context(), firstSeenKey).Err(); err != nil {
		t.Fatal(err)
	}
	got, b := restored(t, w, c)
	if got != kept {
		t.Errorf("the broker keeps %q after the key was deleted, want the older sighting %q", got, kept)
	}
	afterPolls(t, w)
	if n := counted(t, h, "first_seen_lost"); n != 1 {
		t.Errorf("counted %v lost keys, want 1 (one loss, however many polls see its effects)", n)
	}
	if strings.Count(logs.String(), "first-seen key lost") != 1 || !strings.Contains(logs.String(), "broker="+broker) ||
		!strings.Contains(logs.String(), "key="+firstSeenKey) {
		t.Errorf("want one WARN line naming the broker and the key:\n%s", logs)
	}
	cfg := &celery.Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute}
	o, err := cfg.Opinion(b, time.Now())
	if err != nil || !strings.Contains(strings.Join(o.Warnings, "\n"), "queue wait: queue \"q\": its first-seen key was lost from the broker (evicted under a volatile-* maxmemory-policy, or deleted); the older sighting is kept: set the broker's maxmemory-policy to noeviction") {
		t.Errorf("component warnings %q (%v): want the lost key explained", o.Warnings, err)
	}
}

func TestAPublishStampAheadOfTheBrokersClockIsExplainedLoggedAndCountedOnce(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	// A producer whose clock runs 2 minutes ahead of the broker's.
	ahead := brokerTime(t, c).Add(2 * time.Minute)
	msg := fmt.Sprintf(`{"body": "W10=", "headers": {"task": "render", "id": "a1", "eta": null, %q: %f}, "properties": {"delivery_tag": "a1"}}`,
		celery.StampHeader, float64(ahead.UnixNano())/1e9)
	if err := c.LPush(t.Context(), "q", msg).Err(); err != nil {
		t.Fatal(err)
	}
	logs := &servers.LogBuffer{}
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(h.Close)
	w := h.Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "q"))
	defer w.Close()
	b := waitFor(t, w, "the stamp read", hasWait("q", celery.WaitStamp))
	afterPolls(t, w)
	q := queueOf(t, b, "q")
	if *q.OldestWaitSeconds != 0 || !strings.HasPrefix(b.WaitError, `queue "q": the publish stamp of its oldest task is `) ||
		!strings.Contains(b.WaitError, ` ahead of the broker's clock (the producer's clock runs ahead): its wait reads 0`) {
		t.Errorf("waited %v s, waitError %q: want 0 and the stamp's lead explained", *q.OldestWaitSeconds, b.WaitError)
	}
	broker := "redis://" + r.Addr() + "/0"
	if n := counted(t, h, "stamp_ahead"); n != 1 {
		t.Errorf("counted %v stamps ahead, want 1 (one message, however many polls)", n)
	}
	if strings.Count(logs.String(), "publish stamp ahead of the broker's clock") != 1 || !strings.Contains(logs.String(), "broker="+broker) {
		t.Errorf("want one WARN line naming the broker:\n%s", logs)
	}
}

// A stamp written in milliseconds by mistake is a time far ahead, said as
// such: it never wraps to a time centuries ago (every task "waiting" for
// centuries would ask for every worker the wait rule allows).
func TestAPublishStampInMillisecondsReadsAheadNeverCenturiesOld(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	msg := fmt.Sprintf(`{"body": "W10=", "headers": {"task": "render", "id": "m1", "eta": null, %q: %d}, "properties": {"delivery_tag": "m1"}}`,
		celery.StampHeader, brokerTime(t, c).UnixMilli())
	if err := c.LPush(t.Context(), "q", msg).Err(); err != nil {
		t.Fatal(err)
	}
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond})
	t.Cleanup(h.Close)
	w := h.Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "q"))
	defer w.Close()
	b := waitFor(t, w, "the stamp read", hasWait("q", celery.WaitStamp))
	if q := queueOf(t, b, "q"); *q.OldestWaitSeconds != 0 || !strings.Contains(b.WaitError, "ahead of the broker's clock") {
		t.Errorf("waited %v s, waitError %q: want 0 and the stamp said to be ahead", *q.OldestWaitSeconds, b.WaitError)
	}
}
