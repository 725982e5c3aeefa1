package decide

import (
	"math"
	"time"
)

// MaxWaitFactor bounds the queue-wait rule: one decision asks for at most
// twice the replicas at work, as ADR-0002's scale-up policy (docs/adr-0002.md) adds at most
// 100 % a minute anyway. A wait many times the target says more about a
// stuck task than about throughput.
const MaxWaitFactor = 2

// CeleryWaitAsk is the queue-wait rule. While the oldest task has waited
// longer than target it asks for the replicas at work × wait / target (at
// most MaxWaitFactor times them): by Little's law a queue's wait is its
// length over its throughput, and throughput grows with the replicas at
// work, so wait / target more of them bring the wait back to the target.
// The replicas at work are the live workers (heartbeats), or without
// heartbeats the tasks in flight over tasksPerReplica, rounded up. ok says
// the rule applies (something waited over target); with nobody at work
// its ask is 0 and the depth ask stands (it already wakes a replica).
// target 0 means no target: the rule never applies.
func CeleryWaitAsk(b CeleryBacklog, tasksPerReplica float64, target time.Duration) (ask float64, ok bool) {
	if target <= 0 || b.OldestWait <= target {
		return 0, false
	}
	working := float64(b.Workers)
	if working == 0 && tasksPerReplica > 0 {
		working = math.Ceil(float64(b.InFlight) / tasksPerReplica)
	}
	return working * math.Min(b.OldestWait.Seconds()/target.Seconds(), MaxWaitFactor), true
}

// CeleryWaitOpinion is CeleryOpinion with the queue-wait rule: the larger
// of the depth ask and CeleryWaitAsk (never below the depth ask), active
// while any task has waited longer than target.
func CeleryWaitOpinion(b CeleryBacklog, tasksPerReplica float64, target time.Duration, detail any) Opinion {
	o := CeleryOpinion(b, tasksPerReplica, detail)
	if ask, ok := CeleryWaitAsk(b, tasksPerReplica, target); ok {
		o.Active = true
		if ask > *o.Desired {
			o.Desired = Ptr(ask)
		}
	}
	return o
}
