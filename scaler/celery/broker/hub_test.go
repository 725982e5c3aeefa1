package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/test/servers"
)

// fastHub polls often and re-reads the unacked hash often, so stages settle
// quickly; nothing asserts on time.
func fastHub(t *testing.T) *broker.Hub {
	t.Helper()
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond, Redis: redisbroker.Options{AttributionInterval: 100 * time.Millisecond, HeartbeatWarmup: 2500 * time.Millisecond}})
	t.Cleanup(h.Close)
	return h
}

func mustBroker(t *testing.T, raw string) celery.Broker {
	t.Helper()
	b, err := celery.ParseBrokerURL(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layout(prefix string, vt time.Duration, acksLate bool, queues ...string) celery.Layout {
	l := celery.DefaultLayout(queues...)
	l.KeyPrefix, l.VisibilityTimeout, l.AcksLate = prefix, vt, acksLate
	return l
}

// kombuView is what kombu left in Redis for some queues, read directly.
type kombuView struct {
	Queued, InFlight, ETAWaiting int64
}

// readKombu reads the lists and the unacked hash the way kombu lays them out, as docs/celery.md defines
// the counts, independently of the package under test.
func readKombu(ctx context.Context, t *testing.T, c *redis.Client, prefix string, vt time.Duration, queues ...string) kombuView {
	t.Helper()
	var v kombuView
	watched := map[string]bool{}
	for _, q := range queues {
		watched[q] = true
		for _, suffix := range []string{"", "\x06\x163", "\x06\x166", "\x06\x169"} {
			n, err := c.LLen(ctx, prefix+q+suffix).Result()
			if err != nil {
				t.Fatalf("llen: %v", err)
			}
			v.Queued += n
		}
	}
	entries, err := c.HGetAll(ctx, prefix+"unacked").Result()
	if err != nil {
		t.Fatalf("hgetall: %v", err)
	}
	now := time.Now()
	for tag, raw := range entries {
		var parts []json.RawMessage
		var msg struct {
			Headers map[string]any `json:"headers"`
		}
		var rk string
		if json.Unmarshal([]byte(raw), &parts) != nil || len(parts) != 3 || json.Unmarshal(parts[0], &msg) != nil || json.Unmarshal(parts[2], &rk) != nil {
			t.Fatalf("unacked %s is not kombu's [message, exchange, routing_key]: %.200s", tag, raw)
		}
		if !watched[rk] {
			continue
		}
		score, err := c.ZScore(ctx, prefix+"unacked_index", tag).Result()
		if err != nil {
			t.Fatalf("zscore %s: %v", tag, err)
		}
		delivered := time.Unix(0, int64(score*1e9))
		eta, _ := msg.Headers["eta"].(string)
		var etaT time.Time
		if eta != "" {
			if etaT, err = time.Parse(time.RFC3339Nano, eta); err != nil {
				t.Fatalf("eta %q: %v", eta, err)
			}
		}
		switch {
		case !etaT.IsZero() && etaT.After(now):
			v.ETAWaiting++
		case now.Sub(delivered) > vt, !etaT.IsZero():
			v.Queued++
		default:
			v.InFlight++
		}
	}
	return v
}

func view(b celery.Backlog) kombuView {
	return kombuView{Queued: b.Queued, InFlight: b.InFlight, ETAWaiting: b.ETAWaiting}
}

// waitFor waits until cond holds for the watch's latest snapshot, checking
// after every poll; it fails the test after a generous deadline.
func waitFor(t *testing.T, w *poll.View[celery.Backlog], what string, cond func(b celery.Backlog) bool) celery.Backlog {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := w.Changed()
		s := w.Latest()
		if s.Err == nil && !s.GoodAt.IsZero() && cond(s.Value) {
			return s.Value
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not reached in 60s; latest %+v (err %v)", what, s.Value, s.Err)
		}
	}
}

// waitMatches waits until the watch agrees with kombu's state in Redis, and
// with want.
func waitMatches(t *testing.T, w *poll.View[celery.Backlog], c *redis.Client, l celery.Layout, want kombuView, what string) celery.Backlog {
	t.Helper()
	var redisSays kombuView
	b := waitFor(t, w, what, func(b celery.Backlog) bool {
		redisSays = readKombu(t.Context(), t, c, l.KeyPrefix, l.VisibilityTimeout, l.Queues...)
		return view(b) == redisSays && redisSays == want
	})
	t.Logf("%s: scaler %+v, redis %+v", what, view(b), redisSays)
	return b
}

func started(t *testing.T, c *redis.Client, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var keys []string
	for range n {
		r, err := c.BLPop(ctx, 0, servers.StartedKey).Result()
		if err != nil {
			t.Fatalf("waiting for %d started tasks (have %v): %v", n, keys, err)
		}
		keys = append(keys, r[1])
	}
	return keys
}

func release(t *testing.T, c *redis.Client, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := c.RPush(t.Context(), servers.ReleaseKeyPrefix+k, "go").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrioritiesLandInKombusSubQueuesAndAllCountAsQueued(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 2})
	t.Cleanup(func() { c.Close() })
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: r.URL(2)},
		servers.Block("x", "q3"), servers.Block("y", "q3").WithPriority(5), servers.Block("z", "q3").WithPriority(9),
		servers.Block("w", "q4"))
	for key, want := range map[string]int64{"q3": 1, "q3\x06\x163": 1, "q3\x06\x169": 1, "q4": 1} {
		if n, err := c.LLen(t.Context(), key).Result(); err != nil || n != want {
			t.Errorf("LLEN %q = %d, %v; want %d", key, n, err, want)
		}
	}
	l := layout("", time.Hour, true, "q3")
	w := fastHub(t).Watch(mustBroker(t, r.URL(2)), l)
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil || s.Err != nil {
		t.Fatalf("First: %v, %v", err, s.Err)
	}
	want := celery.Backlog{Queued: 3, Queues: []celery.QueueBacklog{{Name: "q3", Ready: 3}}}
	got := s.Value
	got.AttributedAt, got.CompletedSource, got.BrokerTime = time.Time{}, "", time.Time{}
	// The waits are wait_test.go's.
	got.OldestWaitSeconds, got.WaitMethod, got.Queues[0].OldestWaitSeconds, got.Queues[0].WaitMethod = nil, "", nil, ""
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("backlog\n got %+v\nwant %+v", got, want)
	}
}

func TestAcksLateWorkerThroughETAPrefetchAndSIGKILL(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(1)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 1})
	t.Cleanup(func() { c.Close() })
	worker := servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"q1", "q2"}, AcksLate: true, Concurrency: 2, Prefetch: 1})
	hub := fastHub(t)
	broker := mustBroker(t, url)
	long := layout("", time.Hour, true, "q1", "q2")
	short := layout("", 2*time.Second, true, "q1", "q2")
	w := hub.Watch(broker, long)
	defer w.Close()
	prod := servers.ProducerOptions{BrokerURL: url}

	// An ETA task is taken into unacked at once and held until its ETA.
	servers.SendTasks(t, prod, servers.Block("eta", "q2").WithCountdown(time.Hour))
	waitMatches(t, w, c, long, kombuView{ETAWaiting: 1}, "ETA task held")

	// Three tasks, two processes, prefetch 1: two run, one waits in a list.
	servers.SendTasks(t, prod, servers.Block("a", "q1"), servers.Block("b", "q1").WithPriority(5), servers.Block("c", "q2").WithPriority(9))
	first := started(t, c, 2)
	b := waitMatches(t, w, c, long, kombuView{Queued: 1, InFlight: 2, ETAWaiting: 1}, "two running, one queued")
	if b.UnackedTotal != 3 {
		t.Errorf("UnackedTotal = %d, want 3", b.UnackedTotal)
	}

	// Releasing both lets the third run.
	release(t, c, first...)
	third := started(t, c, 1)
	waitMatches(t, w, c, long, kombuView{InFlight: 1, ETAWaiting: 1}, "third running")

	// SIGKILL mid-task: kombu leaves the entries in unacked.
	worker.Kill()
	if n, err := c.HLen(t.Context(), "unacked").Result(); err != nil || n != 2 {
		t.Fatalf("unacked after SIGKILL = %d, %v; want 2", n, err)
	}
	waitMatches(t, w, c, long, kombuView{InFlight: 1, ETAWaiting: 1}, "killed worker, 1h visibility")

	// With a short visibility timeout the dead worker's task counts as queued;
	// both layouts share one poller.
	ws := hub.Watch(broker, short)
	defer ws.Close()
	b = waitMatches(t, ws, c, short, kombuView{Queued: 1, ETAWaiting: 1}, "killed worker, 2s visibility")
	if b.Stale != 1 {
		t.Errorf("Stale = %d, want 1", b.Stale)
	}
	release(t, c, third...)
}

func TestEarlyAckCountsWorkerHeartbeats(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(3)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 3})
	t.Cleanup(func() { c.Close() })
	const prefix = "montage:"
	worker := servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"q1"}, AcksLate: false, Concurrency: 2, Prefetch: 1, KeyPrefix: prefix})
	l := layout(prefix, time.Hour, false, "q1")
	w := fastHub(t).Watch(mustBroker(t, url), l)
	defer w.Close()

	// Our own subscriber: what the heartbeats say, decoded here.
	sub := c.Subscribe(t.Context(), prefix+"/3.celeryev/worker.heartbeat")
	t.Cleanup(func() { sub.Close() })
	heartbeatActive := func() int64 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		var env struct{ Body string }
		var ev struct {
			Hostname string
			Active   int64
		}
		raw, _ := base64.StdEncoding.DecodeString(func() string { _ = json.Unmarshal([]byte(m.Payload), &env); return env.Body }())
		if err := json.Unmarshal(raw, &ev); err != nil || ev.Hostname != worker.Name {
			t.Fatalf("heartbeat %q: %v (hostname %q, want %q)", raw, err, ev.Hostname, worker.Name)
		}
		return ev.Active
	}

	prod := servers.ProducerOptions{BrokerURL: url, KeyPrefix: prefix}
	servers.SendTasks(t, prod, servers.Block("a", "q1"), servers.Block("b", "q1"), servers.Block("c", "q1"))
	first := started(t, c, 2)
	// Early ack: the two running left unacked; the third is reserved there.
	b := waitFor(t, w, "two running by heartbeat, one reserved", func(b celery.Backlog) bool {
		return b.InFlight == 3 && b.Queued == 0 && b.HeartbeatActive == 2
	})
	if got := readKombu(t.Context(), t, c, prefix, time.Hour, "q1"); got != (kombuView{InFlight: 1}) {
		t.Errorf("redis holds %+v, want one reserved entry in unacked", got)
	}
	if b.HeartbeatWorkers != 1 {
		t.Errorf("HeartbeatWorkers = %d, want 1", b.HeartbeatWorkers)
	}
	// The same worker one by one, by the hostname it heartbeats with (what
	// the pod-cost writer maps to a pod).
	if want := []celery.WorkerLoad{{Hostname: worker.Name, Active: 2}}; !slices.Equal(b.Workers, want) {
		t.Errorf("Workers = %+v, want %+v", b.Workers, want)
	}
	for a := heartbeatActive(); a != 2; a = heartbeatActive() {
		t.Logf("heartbeat active %d, waiting for 2", a)
	}

	release(t, c, first...)
	rest := started(t, c, 1)
	waitFor(t, w, "one running by heartbeat", func(b celery.Backlog) bool {
		return b.InFlight == 1 && b.Queued == 0 && b.HeartbeatActive == 1
	})
	for a := heartbeatActive(); a != 1; a = heartbeatActive() {
		t.Logf("heartbeat active %d, waiting for 1", a)
	}
	release(t, c, rest...)
	waitFor(t, w, "idle", func(b celery.Backlog) bool { return b.InFlight == 0 && b.Queued == 0 })
}

func TestRedisOutageKeepsTheLastGoodValueAndRecovers(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 0})
	t.Cleanup(func() { c.Close() })
	if err := c.RPush(t.Context(), "video", "m1", "m2").Err(); err != nil {
		t.Fatal(err)
	}
	w := fastHub(t).Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "video"))
	defer w.Close()
	good := waitFor(t, w, "two queued", func(b celery.Backlog) bool { return b.Queued == 2 })
	goodAt := w.Latest().GoodAt

	r.Stop()
	deadline := time.After(60 * time.Second)
	for w.Latest().Err == nil {
		select {
		case <-w.Changed():
		case <-deadline:
			t.Fatal("no error 60s after Redis stopped")
		}
	}
	s := w.Latest()
	if s.Value.Queued != good.Queued || !s.GoodAt.Equal(goodAt) && s.GoodAt.Before(goodAt) {
		t.Errorf("after the outage: Value.Queued %d GoodAt %v; want the last good %d from %v", s.Value.Queued, s.GoodAt, good.Queued, goodAt)
	}
	if !strings.Contains(s.Err.Error(), "celery: poll redis://"+r.Addr()+"/0: ") {
		t.Errorf("error %q does not name the broker", s.Err)
	}

	r.Restart(t) // empty: nothing persisted
	waitFor(t, w, "recovered with the new (empty) state", func(b celery.Backlog) bool { return b.Queued == 0 })
}

func TestFirstOnAMissingRedisReturnsAnError(t *testing.T) {
	r := servers.StartRedis(t)
	r.Stop()
	w := fastHub(t).Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "video"))
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil {
		t.Fatalf("First: %v", err)
	}
	if s.Err == nil || !s.GoodAt.IsZero() || s.Value.Queued != 0 || s.Value.Queues != nil {
		t.Errorf("First on a dead Redis = %+v; want Err set and no value", s)
	}
}

func TestAPasswordBrokerWorksAndAWrongPasswordNeverShows(t *testing.T) {
	r := servers.StartRedisWith(t, servers.RedisOptions{Password: "right-pw-123"})
	hub := fastHub(t)
	ok := hub.Watch(mustBroker(t, "redis://:right-pw-123@"+r.Addr()+"/0"), layout("", time.Hour, true, "video"))
	defer ok.Close()
	if s, err := ok.First(t.Context()); err != nil || s.Err != nil || s.GoodAt.IsZero() {
		t.Fatalf("First with the right password: %+v, %v", s, err)
	}
	bad := hub.Watch(mustBroker(t, "redis://:wrong-pw-456@"+r.Addr()+"/0"), layout("", time.Hour, true, "video"))
	defer bad.Close()
	s, err := bad.First(t.Context())
	if err != nil || s.Err == nil {
		t.Fatalf("First with a wrong password: %+v, %v; want Err", s, err)
	}
	want := "celery: poll redis://:xxxxx@" + r.Addr() + "/0: "
	if !strings.HasPrefix(s.Err.Error(), want) || strings.Contains(s.Err.Error(), "wrong-pw-456") {
		t.Errorf("error %q: want prefix %q and no password", s.Err, want)
	}
}

func TestCompletedCountsTasksDoneAcrossAWorkerRestart(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(4)
	worker := servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, AcksLate: true, Name: "restarts"})
	w := fastHub(t).Watch(mustBroker(t, url), layout("", time.Hour, true, "celery"))
	defer w.Close()
	waitFor(t, w, "the worker's heartbeat", func(b celery.Backlog) bool { return b.HeartbeatWorkers == 1 })
	noop := servers.Task{Name: servers.NoopTask, Queue: "celery"}
	prod := servers.ProducerOptions{BrokerURL: url}

	servers.SendTasks(t, prod, noop, noop, noop)
	waitFor(t, w, "three completed", func(b celery.Backlog) bool { return b.Completed == 3 && b.Queued == 0 && b.InFlight == 0 })

	// A restart under the same hostname: its running total starts from 0.
	worker.Stop()
	servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, AcksLate: true, Name: "restarts"})
	servers.SendTasks(t, prod, noop, noop)
	b := waitFor(t, w, "five completed", func(b celery.Backlog) bool { return b.Completed == 5 && b.Queued == 0 && b.InFlight == 0 })
	if b.HeartbeatActive != 0 {
		t.Errorf("HeartbeatActive = %d with acks_late and nothing running, want 0", b.HeartbeatActive)
	}
}

// A trigger at the limits (100 queues × 10 priority steps = 1,000 lists)
// shares its broker's poll with a neighbour, which keeps reading without
// an error: the limits keep one object's share of the poll small. The
// poll's duration is logged, not asserted.
func TestALayoutAtTheLimitsDoesNotStallItsNeighbour(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	if err := c.RPush(t.Context(), "video", "m1").Err(); err != nil {
		t.Fatal(err)
	}
	queues := make([]string, celery.MaxQueues)
	for i := range queues {
		queues[i] = fmt.Sprintf("big-%03d", i)
	}
	big := layout("", time.Hour, true, queues...)
	big.PrioritySteps = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if n := len(big.Queues) * len(big.Lists("")); n != celery.MaxLists {
		t.Fatalf("%d lists, want the limit %d", n, celery.MaxLists)
	}
	var polls, failed atomic.Int64
	h := broker.NewHub(broker.HubOptions{PollInterval: 10 * time.Millisecond, OnPoll: func(err error) {
		polls.Add(1)
		if err != nil {
			failed.Add(1)
		}
	}})
	t.Cleanup(h.Close)
	b := mustBroker(t, r.URL(0))
	wb := h.Watch(b, big)
	defer wb.Close()
	w := h.Watch(b, layout("", time.Hour, true, "video"))
	defer w.Close()
	waitFor(t, w, "the neighbour's task", func(b celery.Backlog) bool { return b.Queued == 1 })
	start, n0 := time.Now(), polls.Load()
	for range 50 {
		select {
		case <-w.Changed():
		case <-time.After(10 * time.Second):
			t.Fatal("no poll of the neighbour's broker in 10 s")
		}
		s := w.Latest()
		if s.Err != nil || s.Value.Queued != 1 {
			t.Fatalf("neighbour: %+v, err %v", s.Value, s.Err)
		}
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d polls failed", failed.Load(), polls.Load())
	}
	n := polls.Load() - n0
	t.Logf("%d polls with %d + 4 lists in %s: %s per poll (10ms pause included)", n, celery.MaxLists, time.Since(start).Round(time.Millisecond), (time.Since(start) / time.Duration(max(n, 1))).Round(time.Microsecond))
}

// Redis's WRONGTYPE names no key: the poll's error does.
func TestAKeyOfTheWrongTypeIsNamedInTheError(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	h := fastHub(t)
	for _, tc := range []struct {
		name, key, want string
	}{
		{"a queue that is a string", "video\x06\x166", `celery: poll redis://` + r.Addr() + `/0: LLEN "video\x06\x166": WRONGTYPE Operation against a key holding the wrong kind of value`},
		{"an unacked hash that is a list", "unacked", `celery: poll redis://` + r.Addr() + `/0: HLEN "unacked": WRONGTYPE Operation against a key holding the wrong kind of value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			if tc.key == "unacked" {
				c.RPush(t.Context(), tc.key, "x")
			} else {
				c.Set(t.Context(), tc.key, "x", 0)
			}
			w := h.Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "video"))
			defer w.Close()
			deadline := time.After(30 * time.Second)
			for w.Latest().Err == nil {
				select {
				case <-w.Changed():
				case <-deadline:
					t.Fatal("no error")
				}
			}
			if got := w.Latest().Err.Error(); got != tc.want {
				t.Fatalf("error\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A hung Redis (SIGSTOPped: it accepts, never answers) is an error that
// says which call, which address and which limit.
func TestAHungRedisNamesTheCallTheAddressAndTheTimeout(t *testing.T) {
	r := servers.StartRedis(t)
	h := broker.NewHub(broker.HubOptions{PollInterval: 50 * time.Millisecond, Redis: redisbroker.Options{ReadTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond}})
	t.Cleanup(h.Close)
	w := h.Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "video"))
	defer w.Close()
	waitFor(t, w, "a first reading", func(celery.Backlog) bool { return true })
	r.Pause(t)
	t.Cleanup(func() { r.Resume(t) })
	deadline := time.After(30 * time.Second)
	for w.Latest().Err == nil {
		select {
		case <-w.Changed():
		case <-deadline:
			t.Fatal("no error 30s after Redis hung")
		}
	}
	got := w.Latest().Err.Error()
	want := "celery: poll redis://" + r.Addr() + "/0: pipeline of "
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "LLEN, HLEN") ||
		!strings.Contains(got, "got no answer from "+r.Addr()+" within the Redis timeout of 300ms (--redis-timeout): ") {
		t.Fatalf("error %q", got)
	}
	t.Log(got)
}

// One poll reads every layout of a broker, but a key Redis refuses fails
// only the layouts that read it: a neighbour whose list is a string keeps
// its last good Backlog, with the error naming the key, while the small
// layout in the same round and the one at the limits in the next read
// fresh; the neighbour recovers once its key is a list again.
func TestAKeyRefusedInOneLayoutFailsOnlyThatLayout(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	for _, q := range []string{"video", "thumbs"} {
		if err := c.RPush(t.Context(), q, "m1").Err(); err != nil {
			t.Fatal(err)
		}
	}
	var failed atomic.Int64
	h := broker.NewHub(broker.HubOptions{PollInterval: 10 * time.Millisecond, OnPoll: func(err error) {
		if err != nil {
			failed.Add(1)
		}
	}})
	t.Cleanup(h.Close)
	b := mustBroker(t, r.URL(0))
	queues := make([]string, celery.MaxQueues)
	for i := range queues {
		queues[i] = fmt.Sprintf("big-%03d", i)
	}
	big := layout("", time.Hour, true, queues...)
	big.PrioritySteps = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	wb := h.Watch(b, big)
	defer wb.Close()
	small := h.Watch(b, layout("", time.Hour, true, "video"))
	defer small.Close()
	neighbour := h.Watch(b, layout("", time.Hour, true, "thumbs"))
	defer neighbour.Close()
	waitFor(t, neighbour, "the neighbour's task", func(b celery.Backlog) bool { return b.Queued == 1 })
	waitFor(t, small, "the small layout's task", func(b celery.Backlog) bool { return b.Queued == 1 })

	if err := c.Set(t.Context(), "thumbs\x06\x166", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for neighbour.Latest().Err == nil {
		select {
		case <-neighbour.Changed():
		case <-deadline:
			t.Fatal("the neighbour's refused key is no error")
		}
	}
	s := neighbour.Latest()
	want := `celery: poll redis://` + r.Addr() + `/0: LLEN "thumbs\x06\x166": WRONGTYPE Operation against a key holding the wrong kind of value`
	if s.Err.Error() != want || s.Value.Queued != 1 || s.GoodAt.IsZero() {
		t.Fatalf("the neighbour: %+v, err %v; want its last good Backlog held, with %q", s.Value, s.Err, want)
	}
	for range 20 {
		select {
		case <-small.Changed():
		case <-time.After(10 * time.Second):
			t.Fatal("no poll in 10 s")
		}
		for name, w := range map[string]*poll.View[celery.Backlog]{"the small layout": small, "the layout at the limits": wb} {
			if s := w.Latest(); s.Err != nil || s.GoodAt.Before(neighbour.Latest().GoodAt) {
				t.Fatalf("%s: err %v, read at %v", name, s.Err, s.GoodAt)
			}
		}
		if s := small.Latest(); s.Value.Queued != 1 {
			t.Fatalf("the small layout reads %+v", s.Value)
		}
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d polls failed as a whole", n)
	}
	if err := c.Del(t.Context(), "thumbs\x06\x166").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, neighbour, "the neighbour again", func(b celery.Backlog) bool { return b.Queued == 1 })
}

// heartbeat is a worker-heartbeat event as Celery publishes it on Redis:
// kombu's envelope around a base64 JSON body.
func heartbeat(t *testing.T, host string, active int64) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"hostname": host, "type": "worker-heartbeat", "processed": 0, "active": active, "freq": 2.0})
	env, _ := json.Marshal(map[string]any{"body": base64.StdEncoding.EncodeToString(body), "properties": map[string]any{"body_encoding": "base64"}})
	return string(env)
}

// Redis pub/sub is not per db: the brokers of one server (its dbs) follow
// their workers' heartbeats through one subscription, and each db's
// layouts count the heartbeats of their own db only. The subscription
// goes with the server's last broker.
func TestTheBrokersOfOneServerShareOneHeartbeatSubscription(t *testing.T) {
	r := servers.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 1})
	t.Cleanup(func() { c.Close() })
	h := broker.NewHub(broker.HubOptions{PollInterval: 20 * time.Millisecond, Redis: redisbroker.Options{HeartbeatWarmup: 100 * time.Millisecond}})
	t.Cleanup(h.Close)
	ws := map[int]*poll.View[celery.Backlog]{}
	for _, db := range []int{1, 2, 3} {
		ws[db] = h.Watch(mustBroker(t, r.URL(db)), layout("", time.Hour, false, "q"))
	}
	clients := func() (pubsub, other int) {
		list, err := c.ClientList(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(strings.TrimSpace(list), "\n") {
			if strings.Contains(l, " flags=P ") {
				pubsub++
			} else {
				other++
			}
		}
		return pubsub, other - 1 // our own
	}
	// Workers on db 2 only: two tasks running, by heartbeat.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.Publish(t.Context(), "/2.celeryev/worker.heartbeat", heartbeat(t, "w@2", 2)).Err(); err != nil {
			t.Fatal(err)
		}
		s2, s1 := ws[2].Latest(), ws[1].Latest()
		if s2.Err == nil && s2.Value.HeartbeatActive == 2 && s1.Err == nil && !s1.GoodAt.IsZero() && ws[3].Latest().Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("db 2 reads %+v (%v), db 1 %+v (%v)", s2.Value, s2.Err, s1.Value, s1.Err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, db := range []int{1, 3} {
		if b := ws[db].Latest().Value; b.HeartbeatActive != 0 || b.HeartbeatWorkers != 0 || b.InFlight != 0 {
			t.Fatalf("db %d counts another db's workers: %+v", db, b)
		}
	}
	if b := ws[2].Latest().Value; b.InFlight != 2 || b.HeartbeatWorkers != 1 {
		t.Fatalf("db 2: %+v, want its worker's 2 running tasks in flight", b)
	}
	if pubsub, polls := clients(); pubsub != 1 || polls != 3 {
		t.Fatalf("%d subscriptions and %d other connections for 3 dbs of one server, want 1 and 3", pubsub, polls)
	}
	ws[1].Close()
	ws[2].Close()
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
		}
	}
	eventually("db 1's and db 2's channels dropped, db 3's kept", func() bool {
		chs, err := c.PubSubChannels(t.Context(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(chs) == 3 && strings.HasPrefix(chs[0], "/3.")
	})
	ws[3].Close()
	eventually("the subscription closed with the last broker", func() bool { p, o := clients(); return p == 0 && o == 0 })
}
