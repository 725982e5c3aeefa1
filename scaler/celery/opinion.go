package celery

import (
	"fmt"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Opinion is the celery component's ask for a layout's backlog: (queued +
// inFlight) / tasksPerReplica, active while any task is queued or in flight.
// With QueueWaitTarget it is the wait-based ask (decide.CeleryFlowAsk),
// which needs the flow of a watch (Flow.Opinion): one reading alone has
// none, so this falls back to the depth ask and its age rule
// (decide.CeleryWaitOpinion), and says so. Only ages every scaler replica
// reads alike act (Backlog.ActionableWait). The backlog is the detail
// Explain shows, with the target, the rule and its figures filled in.
func (c *Config) Opinion(b Backlog, _ time.Time) (decide.Opinion, error) {
	return c.opinion(b, nil)
}

// opinion is Opinion with measure giving the watch's flow (nil: none).
func (c *Config) opinion(b Backlog, measure func() decide.CeleryFlow) (decide.Opinion, error) {
	// Redis gives whole numbers, but a worker's heartbeat says its own
	// active count: a count below 0 is no count, and never a smaller ask.
	if b.Queued < 0 || b.InFlight < 0 {
		return decide.Opinion{}, fmt.Errorf("celery: %d queued and %d in flight is not a count of tasks (a worker heartbeat with a negative active?)", b.Queued, b.InFlight)
	}
	ev := decide.CeleryBacklog{Queued: b.Queued, InFlight: b.InFlight, OldestWait: b.ActionableWait(), Workers: b.HeartbeatWorkers}
	if c.QueueWaitTarget <= 0 {
		return decide.CeleryWaitOpinion(ev, c.TasksPerReplica, 0, b), nil
	}
	var warnings []string
	target := c.QueueWaitTarget.Seconds()
	b.QueueWaitTargetSeconds = &target
	if b.WaitError != "" {
		warnings = append(warnings, "queue wait: "+b.WaitError)
	}
	for _, q := range b.Queues {
		if q.WaitMethod == WaitFirstSeenLocal && q.OldestWaitSeconds != nil && *q.OldestWaitSeconds > target {
			warnings = append(warnings, fmt.Sprintf("queue %q: its oldest task waited %.0f s by this replica's own sighting: shown, not acted on", q.Name, *q.OldestWaitSeconds))
		}
	}
	flow := decide.CeleryFlow{PodStartup: c.podStartup(), Why: "no flow measured (a single reading: check, or the first poll)"}
	if measure != nil {
		flow = measure()
	}
	o, d := decide.CeleryFlowAsk(ev, c.TasksPerReplica, c.QueueWaitTarget, flow)
	if d.Rule == decide.RuleDepthFallback {
		if ask, ok := decide.CeleryWaitAsk(ev, c.TasksPerReplica, c.QueueWaitTarget); ok {
			b.WaitAsk = &ask
		}
	}
	b.Flow = &d
	o.Detail = b
	o.Warnings = append(o.Warnings, warnings...)
	return o, nil
}

// podStartup is podStartupTime, or DefaultPodStartup.
func (c *Config) podStartup() time.Duration {
	if c.PodStartup > 0 {
		return c.PodStartup
	}
	return DefaultPodStartup
}

// TaskCounts are the tasks queued and in flight (the scaler's gauges).
func (b Backlog) TaskCounts() (queued, inFlight int64) { return b.Queued, b.InFlight }

// CompletedTasks is Completed and the counter it comes from (the scaler's
// processed-task counter).
func (b Backlog) CompletedTasks() (source string, total int64) {
	return b.CompletedSource, b.Completed
}

// OldestWaits are the queues' oldest waits in seconds, for those that could
// be read (the scaler's wait gauge).
func (b Backlog) OldestWaits() map[string]float64 {
	out := make(map[string]float64, len(b.Queues))
	for _, q := range b.Queues {
		if q.OldestWaitSeconds != nil {
			out[q.Name] = *q.OldestWaitSeconds
		}
	}
	return out
}
