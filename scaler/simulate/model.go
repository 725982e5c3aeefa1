package simulate

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Workload is the model of the Montage Deployment the policies scale. One
// replica is one pod that serves the HTTP API and runs a Celery worker with
// Concurrency slots.
//
//   - Video tasks arrive as the trace says, spread evenly over their step, and
//     wait in one FIFO queue (the default queue). A free slot of a ready pod
//     takes the oldest task; the task runs for its step's service time
//     (exactly the mean: the model is deterministic). Wait = start − arrival.
//   - A new pod serves (takes tasks and requests) only PodStartup after it is
//     created, plus a delay drawn uniformly from [0, StartupJitter) by a
//     generator seeded with Seed: the same seed gives every policy and
//     every run the same sequence of delays; with Startups, the k-th pod
//     created takes the k-th delay of the list instead (a measured run's
//     own delays, in order), and PodStartup plus jitter after the list. A pod removed by a scale-down leaves the Service at once and,
//     like a Celery warm shutdown under acks_late, finishes its running tasks
//     before it is gone; it costs pod time until then. The ReplicaSet removes
//     unready pods first, then the newest.
//   - API requests arrive at the step's rate, spread evenly over the ready
//     pods. A pod's CPU use is IdleCPU, plus RequestCPU per request, plus
//     TaskCPU per running task, over CPURequest. The API's P95 follows an M/M/1 processor-sharing
//     queue at that utilisation ρ: P95 = ln(20) · RequestCPU / (1 − ρ), capped
//     at LatencyCap (also the P95 when no pod is ready).
//   - Memory utilisation is MemoryBase + MemoryPerTask per running task, in
//     percent of the pod's request.
//
// Prometheus sees a P95 over the last minute (request-weighted), NaN when
// there were no requests; the broker sees queued and running tasks exactly.
type Workload struct {
	Concurrency   int
	PodStartup    time.Duration
	StartupJitter time.Duration
	Startups      []time.Duration
	Seed          uint64
	TaskCPU       float64
	IdleCPU       float64
	RequestCPU    time.Duration
	CPURequest    float64
	MemoryBase    float64
	MemoryPerTask float64
	LatencyCap    time.Duration
}

// DefaultWorkload is the ADR baseline: 5 tasks per pod, 45 s pod start-up,
// 10 ms of CPU per API request (P95 30 ms idle, 80 ms at 62.5 % CPU).
func DefaultWorkload() Workload {
	return Workload{
		Concurrency:   5,
		PodStartup:    45 * time.Second,
		TaskCPU:       0.12,
		RequestCPU:    10 * time.Millisecond,
		CPURequest:    1,
		MemoryBase:    35,
		MemoryPerTask: 5,
		LatencyCap:    30 * time.Second,
	}
}

// Validate names a parameter that makes no sense.
func (w Workload) Validate() error {
	switch {
	case w.Concurrency < 1 || w.Concurrency > 1000:
		return fmt.Errorf("workload: concurrency %d: want 1 to 1000", w.Concurrency)
	case w.PodStartup < 0 || w.PodStartup > time.Hour:
		return fmt.Errorf("workload: pod start-up %s: want 0 to 1h", w.PodStartup)
	case w.StartupJitter < 0 || w.StartupJitter > time.Hour:
		return fmt.Errorf("workload: pod start-up jitter %s: want 0 to 1h", w.StartupJitter)
	case slices.ContainsFunc(w.Startups, func(d time.Duration) bool { return d < 0 || d > time.Hour }):
		return fmt.Errorf("workload: pod start-ups %v: want each 0 to 1h", w.Startups)
	case !(w.TaskCPU >= 0) || w.TaskCPU > 64:
		return fmt.Errorf("workload: task CPU %g: want 0 to 64 cores", w.TaskCPU)
	case !(w.IdleCPU >= 0) || w.IdleCPU > 64:
		return fmt.Errorf("workload: idle CPU %g: want 0 to 64 cores", w.IdleCPU)
	case w.RequestCPU <= 0 || w.RequestCPU > 10*time.Second:
		return fmt.Errorf("workload: request CPU %s: want above 0 and at most 10s", w.RequestCPU)
	case !(w.CPURequest > 0) || w.CPURequest > 64:
		return fmt.Errorf("workload: CPU request %g: want above 0 and at most 64 cores", w.CPURequest)
	case !(w.MemoryBase >= 0) || w.MemoryBase > 1000 || !(w.MemoryPerTask >= 0) || w.MemoryPerTask > 1000:
		return fmt.Errorf("workload: memory %g %% + %g %% per task: want 0 to 1000 each", w.MemoryBase, w.MemoryPerTask)
	case w.LatencyCap <= w.RequestCPU:
		return fmt.Errorf("workload: latency cap %s: want above the request CPU %s", w.LatencyCap, w.RequestCPU)
	}
	return nil
}

// p95 is the API's P95 in seconds at CPU utilisation rho (0–1 and beyond).
func (w Workload) p95(rho float64) float64 {
	cap := w.LatencyCap.Seconds()
	if rho >= 1 {
		return cap
	}
	return math.Min(math.Log(20)*w.RequestCPU.Seconds()/(1-rho), cap)
}

type task struct {
	arrive, service float64 // seconds since the trace start
	start           float64 // -1 until started
	queue           int     // index into Trace.Queues
}

// classesOf are a row's classes; a row built without them (in code) is
// one class of its Tasks and Service in the first queue.
func classesOf(r Row) []Class {
	if len(r.Classes) > 0 {
		return r.Classes
	}
	return []Class{{Tasks: r.Tasks, Service: r.Service}}
}

// tasksOf spreads each class's tasks evenly over its step, the classes of a
// step interleaved by arrival.
func tasksOf(t Trace) []task {
	var out []task
	step := t.Step.Seconds()
	for i, r := range t.Rows {
		base := float64(i) * step
		from := len(out)
		for _, c := range classesOf(r) {
			for k := 0; k < c.Tasks; k++ {
				out = append(out, task{arrive: base + (float64(k)+0.5)*step/float64(c.Tasks), service: c.Service.Seconds(), start: -1, queue: c.Queue})
			}
		}
		slices.SortStableFunc(out[from:], func(a, b task) int { return cmp.Compare(a.arrive, b.arrive) })
	}
	return out
}

// queuesOf is how many queues t's tasks go to (at least 1).
func queuesOf(t Trace) int { return max(1, len(t.Queues)) }

type pod struct {
	created, ready float64
	busy           []float64 // per slot: busy until
	draining       bool
	deleted        float64
}

func (p *pod) running(now float64) int {
	n := 0
	for _, b := range p.busy {
		if b > now {
			n++
		}
	}
	return n
}

func (p *pod) lastBusy() float64 {
	m := 0.0
	for _, b := range p.busy {
		m = math.Max(m, b)
	}
	return m
}

// cluster is the Deployment and its queues, advanced one second at a time.
// Each queue is FIFO; a free slot takes the head of the next queue that
// has one, round-robin (kombu's Redis transport rotates the queues it
// fetches from), so one queue of mixed tasks and two queues of one kind
// each are served differently.
type cluster struct {
	w       Workload
	tasks   []task
	arrived int // tasks with arrive < now
	started int // tasks started
	// byQueue are each queue's tasks (indexes into tasks, by arrival),
	// next each queue's first task not started, arrivedBy each queue's
	// tasks arrived, and rr the queue the next slot looks at first.
	byQueue         [][]int
	next, arrivedBy []int
	rr              int
	pods            []*pod
	replicas        int32
	podSecs         float64
	changes         int
	// jitter draws the pods' extra start-up delays; nil without jitter.
	jitter *rand.Rand
	// created counts the pods created by scale-ups (Workload.Startups).
	created int
}

func newCluster(w Workload, tasks []task, queues int, replicas int32) *cluster {
	c := &cluster{w: w, tasks: tasks, replicas: replicas, byQueue: make([][]int, queues), next: make([]int, queues), arrivedBy: make([]int, queues)}
	for i, t := range tasks {
		c.byQueue[t.queue] = append(c.byQueue[t.queue], i)
	}
	if w.StartupJitter > 0 {
		c.jitter = rand.New(rand.NewPCG(w.Seed, 0))
	}
	for range replicas {
		c.pods = append(c.pods, &pod{busy: make([]float64, w.Concurrency)})
	}
	return c
}

// observe counts, at now, the tasks queued and running (draining pods' too).
func (c *cluster) observe(now float64) (queued, running int) {
	for c.arrived < len(c.tasks) && c.tasks[c.arrived].arrive < now {
		c.arrivedBy[c.tasks[c.arrived].queue]++
		c.arrived++
	}
	for _, p := range c.pods {
		running += p.running(now)
	}
	return c.arrived - c.started, running
}

// queuedBy are the tasks waiting in each queue at the last observe (every
// task started by then had arrived by then).
func (c *cluster) queuedBy() []int {
	out := make([]int, len(c.byQueue))
	for q := range out {
		out[q] = c.arrivedBy[q] - c.next[q]
	}
	return out
}

// readyPods counts pods that serve at now, and those not ready yet.
func (c *cluster) readyPods(now float64) (ready, unready int) {
	for _, p := range c.pods {
		switch {
		case p.draining:
		case p.ready <= now:
			ready++
		default:
			unready++
		}
	}
	return ready, unready
}

// oldestWait is how long the oldest head of the queues has waited at now.
func (c *cluster) oldestWait(now float64) float64 {
	w := 0.0
	for q, ids := range c.byQueue {
		if c.next[q] < len(ids) {
			if t := c.tasks[ids[c.next[q]]]; t.arrive < now {
				w = math.Max(w, now-t.arrive)
			}
		}
	}
	return w
}

// dispatch starts tasks in [now, now+1): the slot that frees first takes
// the head of the next queue (round-robin) that has one by then.
func (c *cluster) dispatch(now float64) {
	end := now + 1
	for {
		var best *float64
		bestAt := end
		for _, p := range c.pods {
			if p.draining || p.ready >= end {
				continue
			}
			for i := range p.busy {
				at := math.Max(p.busy[i], p.ready)
				if at < bestAt {
					bestAt, best = at, &p.busy[i]
				}
			}
		}
		if best == nil {
			return
		}
		q := c.pick(bestAt, end)
		if q < 0 {
			return
		}
		t := &c.tasks[c.byQueue[q][c.next[q]]]
		t.start = math.Max(bestAt, t.arrive)
		*best = t.start + t.service
		c.next[q]++
		c.started++
	}
}

// pick is the queue whose head a slot free at `at` takes: the next queue
// round-robin whose head has arrived by then, else the queue whose head
// arrives first before end; -1 when none does.
func (c *cluster) pick(at, end float64) int {
	n := len(c.byQueue)
	first, firstAt := -1, end
	for k := range n {
		q := (c.rr + k) % n
		if c.next[q] >= len(c.byQueue[q]) {
			continue
		}
		arrive := c.tasks[c.byQueue[q][c.next[q]]].arrive
		if arrive <= at {
			c.rr = (q + 1) % n
			return q
		}
		if arrive < firstAt {
			first, firstAt = q, arrive
		}
	}
	if first >= 0 {
		c.rr = (first + 1) % n
	}
	return first
}

// scale sets the Deployment's replicas at now and reconciles its pods.
func (c *cluster) scale(now float64, to int32) {
	if to == c.replicas {
		return
	}
	c.replicas = to
	c.changes++
	var live []*pod
	for _, p := range c.pods {
		if !p.draining {
			live = append(live, p)
		}
	}
	for n := int32(len(live)); n < to; n++ {
		c.pods = append(c.pods, &pod{created: now, ready: now + c.startup(), busy: make([]float64, c.w.Concurrency)})
	}
	for n := int32(len(live)); n > to; n-- {
		// Unready pods go first, then the newest (ReplicaSet's order).
		var victim *pod
		for _, p := range live {
			if !p.draining && (victim == nil || removeFirst(now, p, victim)) {
				victim = p
			}
		}
		victim.draining, victim.deleted = true, now
	}
	c.reap(now)
}

// startup is a new pod's start-up delay in seconds.
func (c *cluster) startup() float64 {
	c.created++
	if c.created <= len(c.w.Startups) {
		return c.w.Startups[c.created-1].Seconds()
	}
	d := c.w.PodStartup.Seconds()
	if c.jitter != nil {
		d += c.jitter.Float64() * c.w.StartupJitter.Seconds()
	}
	return d
}

// removeFirst says whether the ReplicaSet deletes p before v.
func removeFirst(now float64, p, v *pod) bool {
	if pu, vu := p.ready > now, v.ready > now; pu != vu {
		return pu
	}
	return p.created >= v.created
}

// reap removes drained pods, booking their time.
func (c *cluster) reap(now float64) {
	kept := c.pods[:0]
	for _, p := range c.pods {
		if p.draining && p.lastBusy() <= now {
			c.podSecs += math.Max(p.deleted, p.lastBusy()) - p.created
			continue
		}
		kept = append(kept, p)
	}
	c.pods = kept
}

// usage is the mean CPU (fraction of the request) and memory (percent) of
// the ready pods at now with reqRate requests per second.
func (c *cluster) usage(now, reqRate float64) (cpu, mem float64, ready, unready int) {
	ready, unready = c.readyPods(now)
	if ready == 0 {
		return math.NaN(), math.NaN(), 0, unready
	}
	per := reqRate / float64(ready)
	for _, p := range c.pods {
		if p.draining || p.ready > now {
			continue
		}
		r := float64(p.running(now))
		cpu += (c.w.IdleCPU + r*c.w.TaskCPU + per*c.w.RequestCPU.Seconds()) / c.w.CPURequest
		mem += c.w.MemoryBase + r*c.w.MemoryPerTask
	}
	return cpu / float64(ready), mem / float64(ready), ready, unready
}
