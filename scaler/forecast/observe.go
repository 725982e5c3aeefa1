package forecast

import (
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// TaskCounter is the evidence of a component that counts tasks (the celery
// component's Backlog has it): the recorder estimates the demand from it
// (see EstimateDemand) instead of recording an ask.
type TaskCounter interface {
	// TaskCounts are the tasks queued and in flight.
	TaskCounts() (queued, inFlight int64)
	// CompletedTasks is a running count of the tasks completed, and the
	// counter it comes from.
	CompletedTasks() (source string, total int64)
}

// Observe is what the recorder samples at now from the readings of the
// ScaledObject's other components: a fresh reading whose evidence counts
// tasks gives the task counts; any other fresh reading of evidence that
// expires (a reactive component: the latency) gives its ask, recorded as
// asked under the component's name (a fresh reading without an opinion is
// a 0). Evidence that never expires (a calendar) is no demand. A failing
// or stale reading is left out: no invented 0.
func (c *Config) Observe(now time.Time, staleAfter time.Duration, rs []decide.Reading) Sample {
	s := Sample{Asks: Demand{}}
	for _, r := range rs {
		if r.Err != nil || r.GoodAt.IsZero() || now.Sub(r.GoodAt) > staleAfter || r.NoExpiry {
			continue
		}
		if tc, ok := r.Opinion.Detail.(TaskCounter); ok {
			queued, inFlight := tc.TaskCounts()
			_, completed := tc.CompletedTasks()
			s.Tasks = &TaskSample{At: now, Backlog: queued + inFlight, InFlight: inFlight, Completed: completed}
			s.TasksPerReplica = c.TasksPerReplica
			continue
		}
		s.Asks[r.Name] = 0
		if r.Opinion.Desired != nil {
			s.Asks[r.Name] = *r.Opinion.Desired
		}
	}
	return s
}
