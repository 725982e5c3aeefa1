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
	NewReplay:  newReplay,
}

// replay is the opinion on the simulator's queue with no memory: its
// head's age as a publish stamp gives it, and one live worker per ready
// pod; with a queueWaitTarget, no flow measured (the depth fallback).
func replay(c component.Config, w component.World) (decide.Opinion, error) {
	return c.(*Config).Opinion(worldBacklog(w), w.Now)
}

// newReplay is the opinion of one simulated policy: the same Flow a
// server's watch keeps, fed each simulated second.
func newReplay(c component.Config) func(component.World) (decide.Opinion, error) {
	f := NewFlow(c.(*Config))
	return func(w component.World) (decide.Opinion, error) { return f.Opinion(worldBacklog(w), w.Now) }
}

// worldBacklog is the simulator's world as a broker's poll would read it:
// the head's age a publish stamp gives, one live worker per ready pod,
// the completions their heartbeats count, judged at the simulated clock.
func worldBacklog(w component.World) Backlog {
	wait := w.OldestWait.Seconds()
	return Backlog{Queued: int64(w.Queued), InFlight: int64(w.Running), HeartbeatWorkers: w.Ready,
		Completed: int64(w.Completed), CompletedSource: "simulated", BrokerTime: w.Now,
		Queues: []QueueBacklog{{Name: DefaultQueue, OldestWaitSeconds: &wait, WaitMethod: WaitStamp}}}
}

// orNil turns a typed nil config into an untyped nil: "not configured".
func orNil(c *Config, err error) (component.Config, error) {
	if c == nil || err != nil {
		return nil, err
	}
	return c, nil
}
