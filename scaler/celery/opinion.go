package celery

import (
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Opinion is the celery component's ask for a layout's backlog: (queued +
// inFlight) / tasksPerReplica, active while any task is queued or in flight.
// The backlog is the detail Explain shows.
func (c *Config) Opinion(b Backlog, _ time.Time) (decide.Opinion, error) {
	return decide.CeleryOpinion(decide.CeleryBacklog{Queued: b.Queued, InFlight: b.InFlight}, c.TasksPerReplica, b), nil
}

// TaskCounts are the tasks queued and in flight (the scaler's gauges).
func (b Backlog) TaskCounts() (queued, inFlight int64) { return b.Queued, b.InFlight }

// CompletedTasks is Completed and the counter it comes from (the scaler's
// processed-task counter).
func (b Backlog) CompletedTasks() (source string, total int64) {
	return b.CompletedSource, b.Completed
}
