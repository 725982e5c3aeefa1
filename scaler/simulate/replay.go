package simulate

import (
	"math"
	"slices"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
)

// promWindow is the range of the P95 query Prometheus answers (rate over 1m).
const promWindow = 60

// replayRun is one replay: a policy over a trace, one simulated second per
// step.
type replayRun struct {
	trace    Trace
	setup    *Setup
	workload Workload
	// policy is the policy's id; ctl decides its replicas.
	policy string
	ctl    controller
	// every is the sample period of Result.Samples, in seconds.
	every int
	// rec, when not nil, is fed what the cluster would have exported (see
	// Timeline).
	rec *recorder
	// peak, when not nil, is the weekly peak whose tasks' queue wait is
	// measured.
	peak *WeeklyPeak
	// lag is how old the cpu/memory utilisation the policy reads is.
	lag time.Duration
}

// replay runs the policy over the trace and measures the result.
func replay(run replayRun) Result {
	r := newReplayer(run)
	for sec := 0; sec < r.total; sec++ {
		r.second(sec)
	}
	return r.finish()
}

// replayer is a replay under way: the simulated cluster and what has been
// counted so far.
type replayer struct {
	replayRun
	tasks   []task
	cl      *cluster
	res     Result
	total   int // seconds
	stepSec int // seconds per trace row
	// target is the API's P95 latency target and waitTarget the queue
	// wait's, in seconds.
	target, waitTarget float64
	overWait           int // seconds the oldest task waited past waitTarget
	// starts are the replicas of the calendar events that begin inside the
	// trace, by the second they begin; events counts them, readyEvents
	// those that found as many pods ready.
	starts              map[int][]float64
	events, readyEvents int
	prom                promP95
	minute              minuteLatency
	usage               *lagged
}

func newReplayer(run replayRun) *replayer {
	tasks := tasksOf(run.trace)
	cl := newCluster(run.workload, tasks, queuesOf(run.trace), run.ctl.initial())
	r := &replayer{
		replayRun:  run,
		tasks:      tasks,
		cl:         cl,
		res:        Result{Policy: run.policy, PeakReplicas: cl.replicas},
		total:      int(run.trace.End().Sub(run.trace.Start) / time.Second),
		stepSec:    int(run.trace.Step / time.Second),
		target:     latency.DefaultTarget.Seconds(),
		waitTarget: run.setup.waitTarget().Seconds(),
		usage:      newLagged(run.lag),
	}
	if run.setup.Latency != nil {
		r.target = run.setup.Latency.Target.Seconds()
	}
	r.starts, r.events = eventStarts(run.trace, run.setup.Windows)
	return r
}

// eventStarts returns the replicas of the calendar events that begin
// inside tr, by the second they begin, and how many there are.
func eventStarts(tr Trace, windows []decide.CalendarWindow) (map[int][]float64, int) {
	starts := map[int][]float64{}
	n := 0
	for _, e := range windows {
		if e.Start.Before(tr.Start) || !e.Start.Before(tr.End()) {
			continue
		}
		sec := int(math.Ceil(e.Start.Sub(tr.Start).Seconds()))
		starts[sec] = append(starts[sec], math.Ceil(e.Replicas))
		n++
	}
	return starts, n
}

// second simulates one second: the cluster observed, what it exports
// recorded and measured, the policy's decision applied, tasks dispatched
// and finished.
func (r *replayer) second(sec int) {
	now := r.trace.Start.Add(time.Duration(sec) * time.Second)
	fs := float64(sec)
	row := r.trace.Rows[sec/r.stepSec]
	rate := row.Requests / float64(r.stepSec)

	queued, running := r.cl.observe(fs)
	oldest := r.cl.oldestWait(fs)
	if oldest > r.waitTarget {
		r.overWait++
	}
	cpu, mem, ready, unready := r.cl.usage(fs, rate)
	p95 := r.workload.observedP95(rate, ready, cpu)
	if r.rec != nil {
		r.rec.second(sec, r.cl, queued, running, r.ctl, rate, p95)
	}
	prom := r.prom.add(sec, rate, p95)
	if mean, ok := r.minute.add(rate, p95, (sec+1)%60 == 0 || sec == r.total-1); ok && mean > r.target {
		r.res.LatencyOverTargetMinutes++
	}
	for _, n := range r.starts[sec] {
		if float64(ready) >= n {
			r.readyEvents++
		}
	}

	seen := r.usage.at(sec, usage{cpu, mem})
	o := observation{queued: queued, queuedBy: r.cl.queuedBy(), running: running, completed: r.cl.started - running, oldestWait: oldest, p95: prom, cpu: seen.cpu, mem: seen.mem, ready: ready, unready: unready}
	r.decide(now, sec, o)
	if sec%r.every == 0 {
		readyNow, _ := r.cl.readyPods(fs)
		r.res.Samples = append(r.res.Samples, Sample{At: now, Replicas: r.cl.replicas, Ready: readyNow, Queued: queued, Running: running, OldestWaitSecond: oldest})
	}
	r.cl.dispatch(fs)
	r.cl.reap(fs)
}

// decide asks the policy for replicas and scales the cluster to them,
// counting a scale-down below the work in flight.
func (r *replayer) decide(now time.Time, sec int, o observation) {
	n := r.ctl.tick(now, sec, o, r.cl.replicas)
	if n == r.cl.replicas {
		return
	}
	if n < r.cl.replicas && int(n)*r.workload.Concurrency < o.running {
		r.res.ScaleDownsBelowInFlight++
	}
	r.cl.scale(float64(sec), n)
	r.res.PeakReplicas = max(r.res.PeakReplicas, n)
}

// observedP95 is the API's P95 latency (seconds) at request rate rate with
// ready pods at cpu utilisation: the latency cap while no pod is ready, 0
// without requests.
func (w Workload) observedP95(rate float64, ready int, cpu float64) float64 {
	switch {
	case !(rate > 0):
		return 0
	case ready > 0:
		return w.p95(cpu)
	default:
		return w.LatencyCap.Seconds()
	}
}

// promP95 is the P95 Prometheus answers: the request-weighted mean of the
// last promWindow seconds' P95.
type promP95 struct {
	req, weighted [promWindow]float64
	sumReq, sumW  float64
}

// add records second sec's request rate and P95 and returns the P95 over
// the window; NaN without requests.
func (p *promP95) add(sec int, rate, p95 float64) float64 {
	i := sec % promWindow
	p.sumReq += rate - p.req[i]
	p.sumW += rate*p95 - p.weighted[i]
	p.req[i], p.weighted[i] = rate, rate*p95
	if p.sumReq > 1e-9 {
		return p.sumW / p.sumReq
	}
	return math.NaN()
}

// minuteLatency is the request-weighted P95 of the minute under way.
type minuteLatency struct {
	req, weighted float64
}

// add records one second's request rate and P95. When the second ends
// the minute it returns the minute's P95 (ok false for a minute without
// requests) and starts the next.
func (m *minuteLatency) add(rate, p95 float64, end bool) (mean float64, ok bool) {
	m.req += rate
	m.weighted += rate * p95
	if !end {
		return 0, false
	}
	if m.req > 0 {
		mean, ok = m.weighted/m.req, true
	}
	m.req, m.weighted = 0, 0
	return mean, ok
}

// finish measures the replay at the trace's end.
func (r *replayer) finish() Result {
	end := float64(r.total)
	res := &r.res
	res.QueueWaitOverTargetMinutes = float64(r.overWait) / 60
	res.QueuedAtEnd, res.RunningAtEnd = r.cl.observe(end)
	res.Arrived = r.cl.arrived
	r.queueWaits(end)
	secs := r.cl.podSecs
	for _, p := range r.cl.pods {
		secs += end - p.created
	}
	res.PodHours = secs / 3600
	if r.rec != nil {
		res.Timeline = r.rec.finish(r.total, r.cl, r.tasks)
	}
	if res.Videos > 0 {
		v := res.PodHours / float64(res.Videos)
		res.CostPerVideo = &v
	}
	res.ScaleEventsPerHour = float64(r.cl.changes) / (end / 3600)
	if r.events > 0 {
		v := float64(r.readyEvents) / float64(r.events)
		res.ReadyAtEventStart = &v
	}
	return *res
}

// queueWaits measures the arrived tasks' queue waits at end, those of the
// weekly peak apart, and counts the videos finished.
func (r *replayer) queueWaits(end float64) {
	res := &r.res
	var waits, peakWaits []float64
	for _, t := range r.tasks[:r.cl.arrived] {
		wait := end - t.arrive // never started: its wait so far
		if t.start >= 0 {
			wait = t.start - t.arrive
			if t.start+t.service <= end {
				res.Videos++
			}
		}
		waits = append(waits, wait)
		if r.peak.Holds(r.trace.Start.Add(time.Duration(t.arrive * float64(time.Second)))) {
			peakWaits = append(peakWaits, wait)
		}
	}
	if len(waits) > 0 {
		res.QueueWaitP95Seconds = p95(waits)
		res.QueueWaitMaxSeconds = waits[len(waits)-1]
	}
	if r.peak != nil {
		v := 0.0
		if len(peakWaits) > 0 {
			v = p95(peakWaits)
		}
		res.PeakQueueWaitP95Seconds = &v
	}
}

// p95 sorts vs and returns its 95th percentile (nearest rank).
func p95(vs []float64) float64 {
	slices.Sort(vs)
	return vs[int(math.Ceil(0.95*float64(len(vs))))-1]
}

// loadSamples averages the trace's arrival rates over each sample period.
func loadSamples(tr Trace, every time.Duration) []LoadSample {
	tasks := tasksOf(tr)
	total := tr.End().Sub(tr.Start).Seconds()
	per := every.Seconds()
	step := tr.Step.Seconds()
	var out []LoadSample
	k := 0
	for from := 0.0; from < total; from += per {
		to := math.Min(from+per, total)
		n := 0
		for k < len(tasks) && tasks[k].arrive < to {
			n++
			k++
		}
		req := 0.0
		for sec := from; sec < to; sec++ {
			req += tr.Rows[int(sec/step)].Requests / step
		}
		out = append(out, LoadSample{At: tr.Start.Add(time.Duration(from) * time.Second),
			TasksPerMinute: float64(n) * 60 / (to - from), RequestsPerMinute: req * 60 / (to - from)})
	}
	return out
}
