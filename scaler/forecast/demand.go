package forecast

import (
	"math"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
)

// TaskSample is one look at the broker, as the celery component reads it.
type TaskSample struct {
	At time.Time
	// Backlog is queued + in flight: what the celery component divides.
	Backlog int64
	// InFlight is the tasks the workers hold (running, or reserved by a
	// prefetch).
	InFlight int64
	// Completed is the broker's running count of completed tasks
	// (celery.Backlog.Completed). It may start again from 0 (a restarted
	// scaler or poller): a decrease counts as a restart.
	Completed int64
}

// How a bucket's demand was measured (DemandEstimate.Method).
const (
	// MethodArrivals: arrivals × service time (Little's law), the normal case.
	MethodArrivals = "arrivals"
	// MethodInFlight: no task completed in the bucket (no heartbeats, or
	// tasks longer than the bucket): the work the workers did.
	MethodInFlight = "in-flight"
	// MethodBacklog: tasks waited and none ran (no worker): the tasks present.
	MethodBacklog = "backlog"
	// MethodIdle: nothing queued, running or completed.
	MethodIdle = "idle"
)

// DemandEstimate is one bucket's demand, with the numbers it came from.
type DemandEstimate struct {
	// Replicas is Tasks / tasksPerReplica: what the history records.
	Replicas float64 `json:"replicas"`
	// Tasks is how many tasks would have run at once, on average, had each
	// arrival been served as it came (the offered load, in task slots).
	Tasks  float64 `json:"tasks"`
	Method string  `json:"method"`
	// Samples is how many samples the bucket had; Span is from the first
	// to the last.
	Samples int           `json:"samples"`
	Span    time.Duration `json:"span"`
	// Arrived = Δbacklog + Completed over the span, at least 0.
	Arrived int64 `json:"arrived"`
	// Completed is the tasks completed over the span.
	Completed int64 `json:"completed"`
	// MeanInFlight and MeanBacklog are the samples' means.
	MeanInFlight float64 `json:"meanInFlight"`
	MeanBacklog  float64 `json:"meanBacklog"`
	// ServiceSeconds is the service time Little's law gives (mean in
	// flight × span / completed); 0 unless Method is MethodArrivals.
	ServiceSeconds float64 `json:"serviceSeconds"`
}

// EstimateDemand is the demand of one bucket from its samples (in time
// order): the replicas that would have served the bucket's arrivals as they
// came, rather than the backlog that built while too few replicas ran.
//
// Over the samples' span, tasks arrived A = (last backlog − first backlog)
// + completed C. The workers held L = mean in-flight tasks; by Little's law
// each task took S = L·span/C, so the arrivals needed A·S/span = L·A/C task
// slots on average. While the queue builds, A > C and the demand is above
// what ran; while a backlog drains, A < C and it is below. It is capped at
// the mean backlog (a system serving every arrival at once holds no more
// tasks than one that queues them), which also bounds the noise of a bucket
// with few completions. Divided by tasksPerReplica (≤ 0 takes the celery
// default), as the celery component divides its count.
//
// Failure cases: with no completion in the bucket (workers that send no
// heartbeats, tasks longer than the bucket, a stall) the service time is
// unknown and the demand is the mean in flight, the work done (below the
// demand when too few replicas ran); with nothing running either, the mean
// backlog. Completed counts every worker on the broker's db and prefix: a
// worker consuming other queues adds the same tasks to A and C, pulling
// L·A/C towards L. A worker that dies between two heartbeats loses its last
// tasks from C (and A), which raises the ratio; the cap bounds it. ok is
// false without samples.
func EstimateDemand(samples []TaskSample, tasksPerReplica float64) (e DemandEstimate, ok bool) {
	n := len(samples)
	if n == 0 {
		return DemandEstimate{}, false
	}
	if !(tasksPerReplica > 0) {
		tasksPerReplica = celery.DefaultTasksPerReplica
	}
	first, last := samples[0], samples[n-1]
	e.Samples, e.Span = n, last.At.Sub(first.At)
	for i, s := range samples {
		e.MeanInFlight += float64(s.InFlight)
		e.MeanBacklog += float64(s.Backlog)
		if i == 0 {
			continue
		}
		if d := s.Completed - samples[i-1].Completed; d >= 0 {
			e.Completed += d
		} else {
			e.Completed += s.Completed // the count restarted from 0
		}
	}
	e.MeanInFlight /= float64(n)
	e.MeanBacklog /= float64(n)
	e.Arrived = max(0, last.Backlog-first.Backlog+e.Completed)
	switch {
	case e.Completed > 0:
		e.Method = MethodArrivals
		e.Tasks = math.Min(e.MeanInFlight*float64(e.Arrived)/float64(e.Completed), e.MeanBacklog)
		e.ServiceSeconds = e.MeanInFlight * e.Span.Seconds() / float64(e.Completed)
	case e.MeanInFlight > 0:
		e.Method, e.Tasks = MethodInFlight, e.MeanInFlight
	case e.MeanBacklog > 0:
		e.Method, e.Tasks = MethodBacklog, e.MeanBacklog
	default:
		e.Method = MethodIdle
	}
	e.Replicas = e.Tasks / tasksPerReplica
	return e, true
}
