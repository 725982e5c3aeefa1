package broker_test

import (
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/test/servers"
)

// TestAPoolOfShortTasksDrainsABurstWithoutAskingForPods: one real Celery
// worker (5 threads, acks_late) runs short tasks of 0.3 s. After a trickle
// that gives the flow its service time, a burst of 60 lands at once: the
// depth ask wants 12 pods, while the one pod running drains the burst. The
// celery source a server makes (queueWaitTarget 60s: the wait-based ask,
// its flow fed every poll) never asks for a second pod, and the one worker
// does drain the burst.
func TestAPoolOfShortTasksDrainsABurstWithoutAskingForPods(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(5)
	servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"thumbs"}, AcksLate: true, Concurrency: 5, Pool: "threads"})
	cfg := &celery.Config{Broker: mustBroker(t, url), Layout: layout("", time.Hour, true, "thumbs"), TasksPerReplica: 5, QueueWaitTarget: time.Minute}
	hub := broker.Component.NewHub(source.Options{Logger: slog.New(slog.DiscardHandler)}, &broker.Tuning{PollInterval: 100 * time.Millisecond})
	t.Cleanup(hub.Close)
	src := hub.Source(source.Request{Namespace: "montage", Name: "thumbs", Config: cfg})
	t.Cleanup(src.Close)

	// Every reading is asked for as KEDA would; maxAsk is the most the
	// wait-based ask asked once its flow was measured, maxDepth the most
	// the depth ask would have.
	var maxAsk, maxDepth float64
	var fallbacks int
	depth := &celery.Config{TasksPerReplica: 5}
	until := func(what string, cond func(celery.Backlog, bool) bool) celery.Backlog {
		t.Helper()
		return readUntil(t, src, what, func(b celery.Backlog, ask float64, fallback string) bool {
			d, _ := depth.Opinion(b, time.Now())
			maxDepth = math.Max(maxDepth, *d.Desired)
			if fallback != "" {
				fallbacks++
			} else {
				maxAsk = math.Max(maxAsk, ask)
			}
			return cond(b, fallback == "")
		})
	}
	until("the worker is live", func(b celery.Backlog, _ bool) bool { return b.HeartbeatWorkers == 1 })

	prod := servers.ProducerOptions{BrokerURL: url}
	short := func(prefix string, n int) []servers.Task {
		out := make([]servers.Task, n)
		for i := range out {
			out[i] = servers.Render(fmt.Sprintf("%s-%d", prefix, i), "thumbs", 300*time.Millisecond, 0)
		}
		return out
	}
	for i := range 4 {
		servers.SendTasks(t, prod, short(fmt.Sprintf("trickle%d", i), 5)...)
	}
	base := until("the trickle done and its completions heard", func(b celery.Backlog, _ bool) bool {
		return b.Queued == 0 && b.InFlight == 0 && b.Completed >= 20
	}).Completed
	until("the flow measured", func(_ celery.Backlog, measured bool) bool { return measured })
	fallbacks, maxAsk = 0, 0

	servers.SendTasks(t, prod, short("burst", 60)...)
	until("the burst queued", func(b celery.Backlog, _ bool) bool { return b.Queued+b.InFlight >= 40 })
	b := until("the burst drained by the one worker", func(b celery.Backlog, _ bool) bool {
		return b.Queued == 0 && b.InFlight == 0 && b.Completed >= base+60
	})
	t.Logf("the burst: depth ask up to %.1f, wait-based ask up to %.3f", maxDepth, maxAsk)
	if fallbacks > 0 {
		t.Errorf("the wait-based ask fell back to the depth ask %d times during the burst", fallbacks)
	}
	if maxDepth < 8 {
		t.Errorf("the depth ask reached only %.1f: the burst did not queue as a burst, so it proves nothing", maxDepth)
	}
	if math.Ceil(maxAsk-1e-9) > 1 {
		t.Errorf("the wait-based ask reached %.3f, more than the one pod that drained the burst", maxAsk)
	}
	if b.HeartbeatWorkers != 1 {
		t.Errorf("%d live workers at the end, want the 1 that drained it", b.HeartbeatWorkers)
	}
}

// readUntil asks src for its reading at every change until cond holds on
// its backlog, its ask and why the wait-based ask fell back ("" when it
// did not); it fails the test after 60 s.
func readUntil(t *testing.T, src registry.Source, what string, cond func(b celery.Backlog, ask float64, fallback string) bool) celery.Backlog {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := src.Changed()
		r := src.Reading(time.Now())
		if r.Err == nil && !r.GoodAt.IsZero() {
			b := r.Opinion.Detail.(celery.Backlog)
			if b.Flow == nil {
				t.Fatalf("a reading with queueWaitTarget has no flow in its detail: %+v", b)
			}
			if cond(b, *r.Opinion.Desired, b.Flow.Fallback) {
				return b
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not reached in 60s; latest %+v (err %v)", what, r.Opinion.Detail, r.Err)
		}
	}
}
