package broker_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/test/servers"
)

// stampSnippet is the before_task_publish handler the README tells users to
// install: the tests' producers load this very file.
const stampSnippet = "../../../examples/celery/publish_stamp.py"

// kombuMessage is what kombu keeps of a task: its headers, read directly.
type kombuMessage struct {
	Headers struct {
		ID          string   `json:"id"`
		ETA         *string  `json:"eta"`
		Stamp       *float64 `json:"montage_published_at"`
		Redelivered bool     `json:"redelivered"`
	} `json:"headers"`
	Properties struct {
		DeliveryTag string `json:"delivery_tag"`
	} `json:"properties"`
}

func (m kombuMessage) stamp(t *testing.T) time.Time {
	t.Helper()
	if m.Headers.Stamp == nil {
		t.Fatalf("message %s has no %s header", m.Headers.ID, celery.StampHeader)
	}
	return time.Unix(0, int64(*m.Headers.Stamp*1e9))
}

// headOf reads the oldest message of a list (kombu consumes from the right).
func headOf(t *testing.T, c *redis.Client, list string) (kombuMessage, bool) {
	t.Helper()
	raw, err := c.LIndex(t.Context(), list, -1).Result()
	if errors.Is(err, redis.Nil) {
		return kombuMessage{}, false
	}
	if err != nil {
		t.Fatalf("lindex %q: %v", list, err)
	}
	var m kombuMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("list %q holds %.200s: %v", list, raw, err)
	}
	return m, true
}

// impliedStart is when the scaler says the queue's oldest task began to
// wait, by the broker's clock: the instant its ages were judged at minus
// the age.
func impliedStart(b celery.Backlog, q celery.QueueBacklog) time.Time {
	return b.BrokerTime.Add(-time.Duration(math.Round(*q.OldestWaitSeconds * 1e9)))
}

func near(a, b time.Time, d time.Duration) bool { return a.Sub(b).Abs() <= d }

func queueOf(t *testing.T, b celery.Backlog, name string) celery.QueueBacklog {
	t.Helper()
	for _, q := range b.Queues {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("no queue %q in %+v", name, b.Queues)
	return celery.QueueBacklog{}
}

func hasWait(name, method string) func(celery.Backlog) bool {
	return func(b celery.Backlog) bool {
		for _, q := range b.Queues {
			if q.Name == name && q.OldestWaitSeconds != nil && q.WaitMethod == method {
				return true
			}
		}
		return false
	}
}

func TestStampedAgesAreThePublishTimesOfTheOldestTaskAcrossPrioritySubQueues(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(6)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 6})
	t.Cleanup(func() { c.Close() })
	before := time.Now()
	// The first published goes to the priority-9 sub-queue: the queue's
	// oldest task is not at the head of its bare list.
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url, Preload: []string{stampSnippet}},
		servers.Block("p9", "q").WithPriority(9), servers.Block("p0", "q"), servers.Block("p5", "q").WithPriority(5))
	after := time.Now()
	l := layout("", time.Hour, true, "q")
	var oldest time.Time
	var oldestList string
	for _, list := range l.Lists("q") {
		m, ok := headOf(t, c, list)
		if !ok {
			continue
		}
		s := m.stamp(t)
		if s.Before(before) || s.After(after) {
			t.Errorf("list %q: stamp %s outside the producer's run [%s, %s]", list, s, before, after)
		}
		if oldest.IsZero() || s.Before(oldest) {
			oldest, oldestList = s, list
		}
	}
	if oldestList != "q\x06\x169" {
		t.Fatalf("the oldest stamp is on %q, want the priority-9 list", oldestList)
	}

	// A scaler whose own clock is an hour ahead reads the same age.
	w := skewedHub(t, time.Hour).Watch(mustBroker(t, url), l)
	defer w.Close()
	b := waitFor(t, w, "a stamped wait", hasWait("q", celery.WaitStamp))
	q := queueOf(t, b, "q")
	got := impliedStart(b, q)
	t.Logf("oldest stamp %s; the scaler's age %.6f s at the broker's %s says %s", oldest.Format(time.RFC3339Nano), *q.OldestWaitSeconds,
		b.BrokerTime.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
	if !near(got, oldest, time.Millisecond) {
		t.Errorf("the scaler's oldest wait began at %s, the priority-9 task's stamp is %s", got, oldest)
	}
	// Within 1 s of the producer's own clock: inside the run that sent it.
	if got.Before(before.Add(-time.Second)) || got.After(after.Add(time.Second)) {
		t.Errorf("the scaler's oldest wait began at %s, outside the producer's run [%s, %s] ± 1 s", got, before, after)
	}
	if q.Ready != 3 {
		t.Errorf("ready %d, want 3", q.Ready)
	}
}

func TestUnstampedFirstSightingsAreSharedByReplicasWhenATargetActs(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(7)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 7})
	t.Cleanup(func() { c.Close() })
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url}, servers.Block("u", "q"))
	head, _ := headOf(t, c, "q")
	shared := layout("", time.Hour, true, "q")
	shared.ShareFirstSeen = true

	// Replica 1, its clock 2 minutes fast, sees the message first and
	// records when, by the broker's clock.
	w1 := skewedHub(t, 2*time.Minute).Watch(mustBroker(t, url), shared)
	defer w1.Close()
	b1 := waitFor(t, w1, "replica 1: first seen", hasWait("q", celery.WaitFirstSeen))
	q1 := queueOf(t, b1, "q")
	stored, err := c.Get(t.Context(), "montage-scaler:first-seen:q").Result()
	if err != nil {
		t.Fatalf("the first sighting is not in the broker: %v", err)
	}
	tag, ms, _ := strings.Cut(stored, " ")
	msec, _ := strconv.ParseInt(ms, 10, 64)
	first := time.UnixMilli(msec)
	if tag != head.Properties.DeliveryTag || !near(impliedStart(b1, q1), first, time.Millisecond) {
		t.Errorf("stored %q; want the head's delivery tag %s and the time replica 1 reports (%s)", stored, head.Properties.DeliveryTag, impliedStart(b1, q1))
	}
	if ttl := c.PTTL(t.Context(), "montage-scaler:first-seen:q").Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("the key's TTL is %s, want at most 24h", ttl)
	}

	// Replica 2, its clock 5 minutes slow, starts later (or replica 1
	// restarted): the same start, so the same age at the same instant.
	w2 := skewedHub(t, -5*time.Minute).Watch(mustBroker(t, url), shared)
	defer w2.Close()
	b2 := waitFor(t, w2, "replica 2: first seen", hasWait("q", celery.WaitFirstSeen))
	// A ScaledObject without a target reads the shared time too.
	w3 := fastHub(t).Watch(mustBroker(t, url), layout("", time.Hour, true, "q"))
	defer w3.Close()
	b3 := waitFor(t, w3, "without a target: first seen", hasWait("q", celery.WaitFirstSeen))
	for i, b := range []celery.Backlog{b1, b2, b3} {
		if got := impliedStart(b, queueOf(t, b, "q")); !near(got, first, time.Millisecond) {
			t.Errorf("replica %d: waits since %s, want the shared first sighting %s", i+1, got, first)
		}
	}
}

func TestUnstampedAgesWithoutATargetAreThisReplicasAndWriteNothing(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(8)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 8})
	t.Cleanup(func() { c.Close() })
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url}, servers.Block("u", "q"))
	w := fastHub(t).Watch(mustBroker(t, url), layout("", time.Hour, true, "q"))
	defer w.Close()
	b := waitFor(t, w, "first seen by this replica", hasWait("q", celery.WaitFirstSeenLocal))
	if b.ActionableWait() != 0 {
		t.Errorf("ActionableWait = %s, want 0: a replica's own sighting is shown only", b.ActionableWait())
	}
	if keys := c.Keys(t.Context(), "montage-scaler:*").Val(); len(keys) != 0 {
		t.Errorf("the scaler wrote %q without a target", keys)
	}
}

func TestAnETATaskWaitsFromItsETAOnlyByTheBrokersClock(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(9)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 9})
	t.Cleanup(func() { c.Close() })
	// No worker: the ETA tasks stay in their lists.
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url, Preload: []string{stampSnippet}},
		servers.Block("e", "later").WithCountdown(time.Hour), servers.Block("d", "soon").WithCountdown(time.Second))
	etaOf := func(list string) time.Time {
		m, ok := headOf(t, c, list)
		if !ok || m.Headers.ETA == nil {
			t.Fatalf("list %s: %+v, want the ETA task", list, m)
		}
		eta, err := time.Parse(time.RFC3339Nano, *m.Headers.ETA)
		if err != nil {
			t.Fatal(err)
		}
		return eta
	}
	soon := etaOf("soon")

	// A scaler whose clock is two hours ahead: the hour-long countdown has
	// not passed for the broker, so that task does not wait yet.
	w := skewedHub(t, 2*time.Hour).Watch(mustBroker(t, url), layout("", time.Hour, true, "later", "soon"))
	defer w.Close()
	b := waitFor(t, w, "the short countdown due", func(b celery.Backlog) bool {
		return hasWait("soon", celery.WaitStamp)(b) && b.BrokerTime.After(soon.Add(time.Second))
	})
	if q := queueOf(t, b, "later"); q.OldestWaitSeconds == nil || *q.OldestWaitSeconds != 0 || q.WaitMethod != "" || q.Ready != 1 {
		t.Errorf("before its ETA: %+v, want ready 1, no wait", q)
	}
	if got := impliedStart(b, queueOf(t, b, "soon")); !near(got, soon, time.Millisecond) {
		t.Errorf("after its ETA: waits since %s, want its ETA %s (not its stamp)", got, soon)
	}
}

func TestATaskRestoredAfterItsWorkerWasKilledKeepsItsOriginalStamp(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(10)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 10})
	t.Cleanup(func() { c.Close() })
	dead := servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"q1"}, AcksLate: true,
		VisibilityTimeout: 2 * time.Second})
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url, Preload: []string{stampSnippet}}, servers.Block("a", "q1"))
	started(t, c, 1)
	entries := c.HVals(t.Context(), "unacked").Val()
	if len(entries) != 1 {
		t.Fatalf("unacked holds %d entries, want the running task", len(entries))
	}
	var parts []json.RawMessage
	var running kombuMessage
	if err := json.Unmarshal([]byte(entries[0]), &parts); err != nil || json.Unmarshal(parts[0], &running) != nil {
		t.Fatalf("unacked entry %.200s: %v", entries[0], err)
	}
	original := running.stamp(t)
	delivered := time.Unix(0, int64(c.ZScore(t.Context(), "unacked_index", running.Properties.DeliveryTag).Val()*1e9))
	dead.Kill()

	// Another worker's kombu restores the dead worker's task to q1 when it
	// starts, if the visibility timeout has passed by then (else only 100 s
	// later): it consumes another queue, so the task waits there.
	time.Sleep(time.Until(delivered.Add(2 * time.Second)))
	servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"other"}, AcksLate: true,
		VisibilityTimeout: 2 * time.Second})
	w := skewedHub(t, time.Hour).Watch(mustBroker(t, url), layout("", 2*time.Hour, true, "q1"))
	defer w.Close()
	b := waitFor(t, w, "restored to q1", func(b celery.Backlog) bool { return b.Queues[0].Ready == 1 && hasWait("q1", celery.WaitStamp)(b) })
	m, _ := headOf(t, c, "q1")
	if !m.Headers.Redelivered || m.Headers.ID != running.Headers.ID {
		t.Errorf("head of q1: %+v, want task %s redelivered by kombu", m.Headers, running.Headers.ID)
	}
	if got := impliedStart(b, b.Queues[0]); !near(got, original, time.Millisecond) {
		t.Errorf("the restored task waits since %s, want its original stamp %s", got, original)
	}
	release(t, c, "a")
}

func TestTheWaitNeedsScriptingAndWritesOnlyForSharedSightings(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(11)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 11})
	t.Cleanup(func() { c.Close() })
	for _, acl := range [][]any{
		{"ACL", "SETUSER", "noscript", "on", ">pw-noscript", "~*", "&*", "+@all", "-@scripting"},
		{"ACL", "SETUSER", "readonly", "on", ">pw-readonly", "~*", "&*", "+@all", "-@write"},
	} {
		if err := c.Do(t.Context(), acl...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url}, servers.Block("u", "q"))
	shared := layout("", time.Hour, true, "q")
	shared.ShareFirstSeen = true
	hub := fastHub(t)

	// No scripting: the counts stand, the wait is unknown and says why.
	w := hub.Watch(mustBroker(t, "redis://noscript:pw-noscript@"+r.Addr()+"/11"), shared)
	defer w.Close()
	b := waitFor(t, w, "counted", func(b celery.Backlog) bool { return b.Queued == 1 })
	if b.Queues[0].OldestWaitSeconds != nil || !strings.Contains(b.WaitError, `queue "q": NOPERM`) || strings.Contains(b.WaitError, "pw-noscript") {
		t.Errorf("without scripting: %+v, error %q; want no wait, NOPERM named, no password", b.Queues[0], b.WaitError)
	}

	// No writes: the sighting is this replica's, shown and said so.
	w = hub.Watch(mustBroker(t, "redis://readonly:pw-readonly@"+r.Addr()+"/11"), shared)
	defer w.Close()
	b = waitFor(t, w, "first seen locally", hasWait("q", celery.WaitFirstSeenLocal))
	if !strings.Contains(b.WaitError, `queue "q": the first sighting could not be kept in the broker: ERR The user executing the script can't run this command`) {
		t.Errorf("read-only: error %q, want the store failure", b.WaitError)
	}

	// The script lost (SCRIPT FLUSH, a restarted Redis): sent again within
	// the same poll, no poll goes without the wait.
	w = hub.Watch(mustBroker(t, url), shared)
	defer w.Close()
	waitFor(t, w, "first seen", hasWait("q", celery.WaitFirstSeen))
	if err := c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		<-w.Changed()
		if b := w.Latest().Value; b.WaitError != "" || b.Queues[0].WaitMethod != celery.WaitFirstSeen {
			t.Fatalf("after SCRIPT FLUSH: %+v, error %q", b.Queues[0], b.WaitError)
		}
	}
}
