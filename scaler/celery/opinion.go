package celery

import (
	"fmt"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Opinion is the celery component's ask for a layout's backlog: (queued +
// inFlight) / tasksPerReplica, active while any task is queued or in flight;
// with QueueWaitTarget, the queue-wait rule may raise it (see
// decide.CeleryWaitOpinion). Only ages every scaler replica reads alike act
// (Backlog.ActionableWait). The backlog is the detail Explain shows, with
// the target and the wait rule's ask filled in.
func (c *Config) Opinion(b Backlog, _ time.Time) (decide.Opinion, error) {
	// Redis gives whole numbers, but a worker's heartbeat says its own
	// active count: a count below 0 is no count, and never a smaller ask.
	if b.Queued < 0 || b.InFlight < 0 {
		return decide.Opinion{}, fmt.Errorf("celery: %d queued and %d in flight is not a count of tasks (a worker heartbeat with a negative active?)", b.Queued, b.InFlight)
	}
	ev := decide.CeleryBacklog{Queued: b.Queued, InFlight: b.InFlight, OldestWait: b.ActionableWait(), Workers: b.HeartbeatWorkers}
	var warnings []string
	if c.QueueWaitTarget > 0 {
		target := c.QueueWaitTarget.Seconds()
		b.QueueWaitTargetSeconds = &target
		if ask, ok := decide.CeleryWaitAsk(ev, c.TasksPerReplica, c.QueueWaitTarget); ok {
			b.WaitAsk = &ask
		}
		if b.WaitError != "" {
			warnings = append(warnings, "queue wait: "+b.WaitError)
		}
		for _, q := range b.Queues {
			if q.WaitMethod == WaitFirstSeenLocal && q.OldestWaitSeconds != nil && *q.OldestWaitSeconds > target {
				warnings = append(warnings, fmt.Sprintf("queue %q: its oldest task waited %.0f s by this replica's own sighting: shown, not acted on", q.Name, *q.OldestWaitSeconds))
			}
		}
	}
	o := decide.CeleryWaitOpinion(ev, c.TasksPerReplica, c.QueueWaitTarget, b)
	o.Warnings = append(o.Warnings, warnings...)
	return o, nil
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
