package broker_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/test/servers"
)

// TestAPoolOfShortTasksDrainsABurstWithoutAskingForPods: one real Celery
// worker (5 threads, acks_late) runs short tasks of 0.3 s. After a trickle
// that gives the flow its service time, a burst of 60 lands at once: the
// depth ask wants 12 pods, while the one pod running drains the burst in
// about 4 s. The wait-based ask (queueWaitTarget 60s), fed every poll as a
// server's watch feeds it, never asks for a second pod, and the one worker
// does drain the burst.
func TestAPoolOfShortTasksDrainsABurstWithoutAskingForPods(t *testing.T) {
	r := servers.StartRedis(t)
	url := r.URL(5)
	servers.StartCeleryWorker(t, servers.WorkerOptions{BrokerURL: url, Queues: []string{"thumbs"}, AcksLate: true, Concurrency: 5, Pool: "threads"})
	w := fastHub(t).Watch(mustBroker(t, url), layout("", time.Hour, true, "thumbs"))
	defer w.Close()
	cfg := &celery.Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute}
	depthCfg := &celery.Config{TasksPerReplica: 5}
	flow := celery.NewFlow(cfg)
	// Every poll's reading goes through the flow, as the server's feed does;
	// maxAsk is the most the wait-based ask asked once the flow was
	// measured, maxDepth the most the depth ask would have.
	var maxAsk, maxDepth float64
	var fallbacks []string
	see := func(b celery.Backlog) {
		o, err := flow.Opinion(b, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		d, _ := depthCfg.Opinion(b, time.Now())
		maxDepth = math.Max(maxDepth, *d.Desired)
		if f := o.Detail.(celery.Backlog).Flow; f.Fallback != "" {
			fallbacks = append(fallbacks, f.Fallback)
			return
		}
		maxAsk = math.Max(maxAsk, *o.Desired)
	}
	until := func(what string, cond func(celery.Backlog) bool) celery.Backlog {
		t.Helper()
		return waitFor(t, w, what, func(b celery.Backlog) bool { see(b); return cond(b) })
	}
	until("the worker is live", func(b celery.Backlog) bool { return b.HeartbeatWorkers == 1 })

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
	base := until("the trickle done and its completions heard", func(b celery.Backlog) bool {
		return b.Queued == 0 && b.InFlight == 0 && b.Completed >= 20
	}).Completed
	until("the flow measured", func(celery.Backlog) bool { return flow.Measure().Measured })
	t.Logf("before the burst: %+v (fell back %d times while it was being measured)", flow.Measure(), len(fallbacks))
	fallbacks, maxAsk = nil, 0

	servers.SendTasks(t, prod, short("burst", 60)...)
	until("the burst queued", func(b celery.Backlog) bool { return b.Queued+b.InFlight >= 40 })
	b := until("the burst drained by the one worker", func(b celery.Backlog) bool {
		return b.Queued == 0 && b.InFlight == 0 && b.Completed >= base+60
	})
	t.Logf("the burst: depth ask up to %.1f, wait-based ask up to %.3f; after it: %+v", maxDepth, maxAsk, flow.Measure())
	if len(fallbacks) > 0 {
		t.Errorf("the wait-based ask fell back to the depth ask during the burst: %q", fallbacks)
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
