package celery

import (
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Name is the component's name.
const Name = "celery"

// Component describes the celery component: the broker's queued and
// running tasks, over the queue layout kombu writes.
var Component = component.Component{
	Name:       Name,
	Keys:       Keys(),
	Parse:      func(m *meta.Map, _ component.Context) (component.Config, error) { return orNil(ParseConfig(m)) },
	Configures: "brokerURL (or brokerURLFromEnv)",
	Replay:     replay,
}

// replay is the opinion on the simulator's queue: its head's age as a
// publish stamp gives it, and one live worker per ready pod.
func replay(c component.Config, w component.World) (decide.Opinion, error) {
	cfg := c.(*Config)
	b := decide.CeleryBacklog{Queued: int64(w.Queued), InFlight: int64(w.Running), OldestWait: w.OldestWait, Workers: w.Ready}
	return decide.CeleryWaitOpinion(b, cfg.TasksPerReplica, cfg.QueueWaitTarget, nil), nil
}

// orNil turns a typed nil config into an untyped nil: "not configured".
func orNil(c *Config, err error) (component.Config, error) {
	if c == nil || err != nil {
		return nil, err
	}
	return c, nil
}
