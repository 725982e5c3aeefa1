package simulate

import (
	"math"
	"slices"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
)

// ScrapeInterval is how often the Timeline samples the cluster: the
// PodMonitor's interval in deploy/monitoring; kube-state-metrics and the
// scaler are taken to be scraped as often.
const ScrapeInterval = 15 * time.Second

// LatencyBuckets are the upper bounds (le) of the API's request histogram
// in a Timeline (+Inf implied): around the 80 ms target, finer.
var LatencyBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Timeline is what the cluster would have exported while a policy scaled
// the trace: sampled every ScrapeInterval from the trace's start, and at its
// end. Sample k holds the state after every simulated second before
// Times[k].
type Timeline struct {
	Start time.Time
	// PodStartup is the workload's; the pods of the initial replicas are
	// taken to have been created that long before the trace.
	PodStartup time.Duration
	Times      []time.Time
	// Spec is the Deployment's spec.replicas.
	Spec []int32
	// Queued and InFlight are the celery component's evidence, and
	// OldestWait how long the head of the queue had waited (seconds).
	Queued, InFlight []int
	OldestWait       []float64
	// Decision is the scaler's latest decision (nil: none yet, or the
	// policy is not the scaler).
	Decision []*float64
	// Asks are the components with an opinion in that decision.
	Asks []map[string]float64
	// Forecast is the forecast component's estimate by mode, when it has one.
	Forecast []map[string]float64
	// Processed counts the tasks finished by each instant.
	Processed []int
	Pods      []PodTimeline
}

// PodTimeline is one pod: when it existed, was Ready, and the requests it
// served. Times are seconds from the trace's start.
type PodTimeline struct {
	Created, Ready float64
	// Deleted is when the scale-down marked it for deletion (it is then
	// Terminating, no longer Ready); +Inf if never.
	Deleted float64
	// Gone is when it had finished its running tasks and was removed;
	// +Inf if it outlived the trace.
	Gone float64
	// First is the first sample it has request counts for; Count, Sum and
	// Buckets (cumulative, by LatencyBuckets) are the API histogram at
	// samples First, First+1, ...
	First   int
	Count   []float64
	Sum     []float64
	Buckets [][]float64
}

// ReadyEver says whether the pod was ever Ready (it may be deleted while
// starting).
func (p PodTimeline) ReadyEver() bool { return p.Ready < p.Deleted }

// recorder builds a Timeline from inside the replay loop.
type recorder struct {
	w        Workload
	start    time.Time
	interval int
	tl       *Timeline
	index    map[*pod]int
	pods     []*pod
	// acc are each pod's running request counts: count, sum, buckets.
	acc [][]float64
}

func newRecorder(tr Trace, w Workload) *recorder {
	return &recorder{w: w, start: tr.Start, interval: int(ScrapeInterval / time.Second), index: map[*pod]int{},
		tl: &Timeline{Start: tr.Start, PodStartup: w.PodStartup}}
}

// second is called at the start of each simulated second, before the
// policy acts: it samples on the scrape grid, then books the second's
// requests to the pods that serve them.
func (r *recorder) second(sec int, cl *cluster, queued, running int, c controller, rate, p95 float64) {
	r.discover(cl)
	if sec%r.interval == 0 {
		r.sample(sec, cl.replicas, queued, running, cl.oldestWait(float64(sec)), c)
	}
	fs := float64(sec)
	ready, _ := cl.readyPods(fs)
	if rate <= 0 || ready == 0 || p95 <= 0 {
		return
	}
	// A processor-sharing queue's response time is exponential: mean
	// P95 / ln(20), so a share 1 - exp(-le/mean) is within each bound.
	per, mean := rate/float64(ready), p95/math.Log(20)
	for _, p := range cl.pods {
		if p.draining || p.ready > fs {
			continue
		}
		a := r.acc[r.index[p]]
		a[0] += per
		a[1] += per * mean
		for i, le := range LatencyBuckets {
			a[2+i] += per * (1 - math.Exp(-le/mean))
		}
	}
}

func (r *recorder) discover(cl *cluster) {
	for _, p := range cl.pods {
		if _, ok := r.index[p]; !ok {
			r.index[p] = len(r.pods)
			r.pods = append(r.pods, p)
			r.acc = append(r.acc, make([]float64, 2+len(LatencyBuckets)))
			r.tl.Pods = append(r.tl.Pods, PodTimeline{First: len(r.tl.Times)})
		}
	}
}

func (r *recorder) sample(sec int, spec int32, queued, running int, wait float64, c controller) {
	tl := r.tl
	tl.Times = append(tl.Times, r.start.Add(time.Duration(sec)*time.Second))
	tl.Spec = append(tl.Spec, spec)
	tl.Queued, tl.InFlight = append(tl.Queued, queued), append(tl.InFlight, running)
	tl.OldestWait = append(tl.OldestWait, wait)
	var dec *float64
	var asks, fc map[string]float64
	if k, ok := c.(*kedaPolicy); ok && k.last != nil {
		if d := k.last.Desired; d != nil {
			v := *d
			dec = &v
		}
		for _, cr := range k.last.Components {
			if cr.Desired == nil {
				continue
			}
			if asks == nil {
				asks = map[string]float64{}
			}
			asks[cr.Name] = *cr.Desired
			if fd, ok := cr.Detail.(decide.ForecastDetail); ok && cr.Name == forecast.Name {
				fc = map[string]float64{fd.Mode: *cr.Desired}
			}
		}
	}
	tl.Decision, tl.Asks, tl.Forecast = append(tl.Decision, dec), append(tl.Asks, asks), append(tl.Forecast, fc)
	for i := range r.pods {
		pt := &tl.Pods[i]
		a := r.acc[i]
		pt.Count, pt.Sum = append(pt.Count, a[0]), append(pt.Sum, a[1])
		pt.Buckets = append(pt.Buckets, slices.Clone(a[2:]))
	}
}

// finish takes the last sample at the trace's end (total seconds) and the
// pods' lives, and counts finished tasks at each sample.
func (r *recorder) finish(total int, cl *cluster, tasks []task) *Timeline {
	queued, running := cl.observe(float64(total))
	r.discover(cl)
	r.sample(total, cl.replicas, queued, running, cl.oldestWait(float64(total)), nil)
	// The last sample's decision is the one before it: nothing decided in
	// between.
	n := len(r.tl.Times)
	if n > 1 {
		r.tl.Decision[n-1], r.tl.Asks[n-1], r.tl.Forecast[n-1] = r.tl.Decision[n-2], r.tl.Asks[n-2], r.tl.Forecast[n-2]
	}
	for i, p := range r.pods {
		pt := &r.tl.Pods[i]
		pt.Created, pt.Ready, pt.Deleted, pt.Gone = p.created, p.ready, math.Inf(1), math.Inf(1)
		if p.created == 0 && p.ready == 0 {
			// One of the initial replicas: started before the trace.
			pt.Created = -r.w.PodStartup.Seconds()
		}
		if p.draining {
			pt.Deleted, pt.Gone = p.deleted, math.Max(p.deleted, p.lastBusy())
		}
	}
	var done []float64
	for _, t := range tasks {
		if t.start >= 0 {
			done = append(done, t.start+t.service)
		}
	}
	slices.Sort(done)
	for _, at := range r.tl.Times {
		s := at.Sub(r.start).Seconds()
		k, _ := slices.BinarySearchFunc(done, s, func(a, b float64) int {
			if a <= b {
				return -1
			}
			return 1
		})
		r.tl.Processed = append(r.tl.Processed, k)
	}
	return r.tl
}
