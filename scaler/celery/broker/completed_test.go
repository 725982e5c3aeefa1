package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/test/servers"
)

func noops(n int, queue string) []servers.Task {
	out := make([]servers.Task, n)
	for i := range out {
		out[i] = servers.Task{Name: servers.NoopTask, Queue: queue}
	}
	return out
}

// processedSays reads the next heartbeat of host on sub and returns its
// processed: what Celery itself says, decoded here.
func processedSays(t *testing.T, sub *redis.PubSub, host string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("heartbeat of %s: %v", host, err)
		}
		var env struct{ Body string }
		var ev struct {
			Hostname  string
			Processed int64
		}
		_ = json.Unmarshal([]byte(m.Payload), &env)
		raw, _ := base64.StdEncoding.DecodeString(env.Body)
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("heartbeat %q: %v", raw, err)
		}
		if ev.Hostname == host {
			return ev.Processed
		}
	}
}

// monotonic fails the test if Completed ever goes down across the
// snapshots it is shown.
type monotonic struct {
	t    *testing.T
	last int64
}

func (m *monotonic) see(b celery.Backlog) {
	m.t.Helper()
	if b.Completed < m.last {
		m.t.Fatalf("Completed went down: %d after %d", b.Completed, m.last)
	}
	m.last = b.Completed
}

func TestCompletedGrowsByTheTasksDoneThroughAWorkerKilledAndRestarted(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(4)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 4})
	t.Cleanup(func() { c.Close() })
	sub := c.Subscribe(t.Context(), "/4.celeryev/worker.heartbeat")
	t.Cleanup(func() { sub.Close() })
	opts := servers.WorkerOptions{BrokerURL: url, Queues: []string{"q1"}, AcksLate: true, Concurrency: 2, Name: "counted"}
	worker := servers.StartCeleryWorker(t, opts)
	w := fastHub(t).Watch(mustBroker(t, url), layout("", time.Hour, true, "q1"))
	defer w.Close()
	mono := &monotonic{t: t}
	until := func(what string, cond func(celery.Backlog) bool) celery.Backlog {
		t.Helper()
		return waitFor(t, w, what, func(b celery.Backlog) bool { mono.see(b); return cond(b) })
	}

	b := until("the worker is live", func(b celery.Backlog) bool { return b.HeartbeatWorkers == 1 })
	base := b.Completed
	prod := servers.ProducerOptions{BrokerURL: url}
	servers.SendTasks(t, prod, noops(5, "q1")...)
	b = until("5 tasks done", func(b celery.Backlog) bool { return b.Completed >= base+5 && b.Queued == 0 && b.InFlight == 0 })
	for p := processedSays(t, sub, worker.Name); ; p = processedSays(t, sub, worker.Name) {
		if p == 5 {
			break
		}
		t.Logf("the worker says processed %d, waiting for 5", p)
	}
	if b.Completed != base+5 {
		t.Fatalf("Completed = %d after 5 tasks, want %d", b.Completed, base+5)
	}

	// A task runs when the worker is SIGKILLed: Celery counted it when it
	// started; the restarted worker (same hostname) counts again from 0.
	servers.SendTasks(t, prod, servers.Block("k", "q1"))
	started(t, c, 1)
	until("the running task counted", func(b celery.Backlog) bool { return b.Completed == base+6 })
	worker.Kill()
	worker = servers.StartCeleryWorker(t, opts)
	servers.SendTasks(t, prod, noops(3, "q1")...)
	for p := processedSays(t, sub, worker.Name); ; p = processedSays(t, sub, worker.Name) {
		if p == 3 {
			break
		}
		t.Logf("the restarted worker says processed %d, waiting for 3", p)
	}
	b = until("3 more by the restarted worker", func(b celery.Backlog) bool { return b.Completed >= base+9 && b.Queued == 0 })
	// Let a few more heartbeats of the restarted worker through: the total
	// stays put (no double count of its running total).
	for range 2 {
		processedSays(t, sub, worker.Name)
	}
	b = until("settled", func(celery.Backlog) bool { return true })
	if b.Completed != base+9 || b.HeartbeatWorkers != 1 {
		t.Errorf("Completed %d with %d live workers, want %d (5 + 1 killed mid-task + 3) and 1", b.Completed, b.HeartbeatWorkers, base+9)
	}
	release(t, c, "k")
}

// Completed is counted per key prefix, and a second watch of the same
// broker reads the same counter.
func TestCompletedIsPerKeyPrefixAndSharedByWatches(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(5)
	servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"q1"}, KeyPrefix: "a:"})
	hub := fastHub(t)
	broker := mustBroker(t, url)
	wa := hub.Watch(broker, layout("a:", time.Hour, true, "q1"))
	defer wa.Close()
	wb := hub.Watch(broker, layout("b:", time.Hour, true, "q1"))
	defer wb.Close()
	wa2 := hub.Watch(broker, layout("a:", time.Hour, true, "q1", "q2"))
	defer wa2.Close()
	waitFor(t, wa, "worker live on a:", func(b celery.Backlog) bool { return b.HeartbeatWorkers == 1 })
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: url, KeyPrefix: "a:"}, noops(4, "q1")...)
	a := waitFor(t, wa, "4 done on a:", func(b celery.Backlog) bool { return b.Completed == 4 })
	a2 := waitFor(t, wa2, "the other layout on a:", func(b celery.Backlog) bool { return b.Completed == 4 })
	if a.CompletedSource == "" || a.CompletedSource != a2.CompletedSource {
		t.Errorf("sources %q and %q: want one counter for one prefix", a.CompletedSource, a2.CompletedSource)
	}
	b := wb.Latest()
	if b.Value.Completed != 0 || b.Value.HeartbeatWorkers != 0 || b.Value.CompletedSource == a.CompletedSource {
		t.Errorf("prefix b: %+v: want nothing counted, another source", b.Value)
	}
}
