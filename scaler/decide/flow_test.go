package decide

import (
	"math"
	"testing"
	"time"
)

func TestCeleryFlowAsk(t *testing.T) {
	measured := func(lambda, s float64) CeleryFlow {
		return CeleryFlow{Measured: true, ArrivalsPerSecond: lambda, ServiceSeconds: s, PodStartup: 45 * time.Second}
	}
	tests := []struct {
		name     string
		b        CeleryBacklog
		target   time.Duration
		f        CeleryFlow
		want     float64
		rule     string
		fallback string
	}{
		{"no target: the depth ask, whatever was measured", CeleryBacklog{Queued: 50, InFlight: 5, Workers: 1}, 0, measured(0, 2), 11, RuleDepth, ""},
		{"no heartbeats: the depth ask, and why", CeleryBacklog{Queued: 50, InFlight: 5, Workers: 0}, time.Minute,
			CeleryFlow{Why: "no worker heartbeats"}, 11, RuleDepthFallback, "no worker heartbeats"},
		{"no completion yet: the depth ask and its age rule", CeleryBacklog{Queued: 3, InFlight: 10, Workers: 2, OldestWait: 90 * time.Second}, time.Minute,
			CeleryFlow{Why: "no task completed in the window yet"}, 3, RuleDepthFallback, "no task completed in the window yet"},
		{"a cold start from 0: the depth ask wakes a replica", CeleryBacklog{Queued: 4}, time.Minute, measured(0.1, 2), 0.8, RuleDepthFallback,
			"no worker at work (a cold start): the depth ask wakes one"},
		{"a service time that is not a number falls back", CeleryBacklog{Queued: 4, Workers: 1}, time.Minute, measured(0, math.Inf(1)), 0.8, RuleDepthFallback,
			"the measured flow is not a number (service time or arrival rate)"},
		// 50 thumbnails of 2 s on one pod of 5 slots: 2.5 a second drain them
		// in 20 s; they need (50/60)·2/5 = 1/3 of a replica, not 10.
		{"50 short tasks one pod drains within the target buy no pod", CeleryBacklog{Queued: 45, InFlight: 5, Workers: 1}, time.Minute, measured(0, 2), 1, RuleInFlight, ""},
		{"the queue empty: the replicas that keep up", CeleryBacklog{InFlight: 4, Workers: 3}, time.Minute, measured(1, 10), 2, RuleKeepUp, ""},
		{"never below the work in flight", CeleryBacklog{InFlight: 10, Workers: 2}, time.Minute, measured(0.1, 10), 2, RuleInFlight, ""},
		// 40 renders of 60 s queued behind one busy pod: it drains 5 a minute,
		// the 35 left need 35·60/(5·30) = 14 more pods (half a target of work
		// each after a 45 s start), capped at a slot for every task: 9.
		{"long renders: capped at a slot for every task present", CeleryBacklog{Queued: 40, InFlight: 5, Workers: 1}, time.Minute, measured(0, 60), 9, RuleSlots, ""},
		// 20 tasks of 10 s behind 2 pods: the surplus 1 − 0.2 drains 48 in
		// the 60 s: (0.2 + 20/60)·10/5 = 1.067 replicas.
		{"a queue the pods at work drain in time", CeleryBacklog{Queued: 20, InFlight: 5, Workers: 2}, time.Minute, measured(0.2, 10), 1.0666666666666667, RuleDrain, ""},
		// The same 20 with a head 50 s old: H = max(10, 30) = 30 s:
		// (0.2 + 20/30)·10/5 = 1.733.
		{"an old head shortens the horizon (the age rule, folded in)", CeleryBacklog{Queued: 20, InFlight: 5, Workers: 2, OldestWait: 50 * time.Second}, time.Minute, measured(0.2, 10), 1.7333333333333334, RuleDrain, ""},
		// 100 of 10 s behind 2 pods: their surplus 0.8 drains 48 in 60 s;
		// 52 left, a new pod drains 0.5/s for max(60 − 45, 30) = 30 s:
		// 2 + 52/15 = 5.467.
		{"new pods for what the pods at work cannot drain", CeleryBacklog{Queued: 100, InFlight: 10, Workers: 2}, time.Minute, measured(0.2, 10), 5.466666666666667, RuleDrain, ""},
		// 3 renders waited 90 s behind 2 busy workers whose 10 slots the
		// flow says suffice (a tasksPerReplica above the workers' real
		// concurrency): the age rule asks 2 × 90/60.
		{"a task waiting past the target: the age rule is the floor", CeleryBacklog{Queued: 3, InFlight: 10, Workers: 2, OldestWait: 90 * time.Second}, time.Minute, measured(0, 60), 3, RuleAge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, d := CeleryFlowAsk(tt.b, 5, tt.target, tt.f)
			if o.Desired == nil || math.Abs(*o.Desired-tt.want) > 1e-9 || d.Rule != tt.rule || d.Fallback != tt.fallback {
				t.Errorf("got %v rule %q fallback %q, want %g rule %q fallback %q", o.Desired, d.Rule, d.Fallback, tt.want, tt.rule, tt.fallback)
			}
			if d.Ask == nil || *d.Ask != *o.Desired {
				t.Errorf("detail ask %v, opinion %v: want them equal", d.Ask, *o.Desired)
			}
		})
	}
}

// TestCeleryFlowAskHasNoStepWhenTheQueueEmpties drains a queue task by task
// at a steady arrival rate: the ask never rises as the queue shrinks, and
// the last queued task's ask and the empty queue's differ by less than one
// task's share, so the HPA sees no dip and no bounce.
func TestCeleryFlowAskHasNoStepWhenTheQueueEmpties(t *testing.T) {
	f := CeleryFlow{Measured: true, ArrivalsPerSecond: 0.5, ServiceSeconds: 10, PodStartup: 45 * time.Second}
	prev := math.Inf(1)
	for q := int64(30); q >= 0; q-- {
		o, _ := CeleryFlowAsk(CeleryBacklog{Queued: q, InFlight: 5, Workers: 2}, 5, time.Minute, f)
		if *o.Desired > prev+1e-9 {
			t.Fatalf("queued %d: ask %g rose from %g as the queue shrank", q, *o.Desired, prev)
		}
		if q == 0 && prev-*o.Desired > 1.0/5+1e-9 {
			t.Fatalf("the queue emptied: ask %g fell by more than one task's share from %g", *o.Desired, prev)
		}
		prev = *o.Desired
	}
	if prev != 1 {
		t.Errorf("empty queue asks %g, want the keep-up 0.5·10/5 = 1", prev)
	}
}
