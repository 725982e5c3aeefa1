package decide

import (
	"math"
	"time"
)

// Which rule set the celery component's ask (CeleryFlowDetail.Rule).
const (
	// RuleDepth: (queued + inFlight) / tasksPerReplica, no target set.
	RuleDepth = "depth"
	// RuleDepthFallback: a target is set but the flow could not be measured
	// (CeleryFlowDetail.Fallback says why): today's depth ask and its age rule.
	RuleDepthFallback = "depth (fallback)"
	// RuleKeepUp: the replicas that keep up with the arrivals.
	RuleKeepUp = "keep-up"
	// RuleDrain: keep-up plus the replicas that drain the queue in time.
	RuleDrain = "drain"
	// RuleInFlight: the replicas the tasks in flight occupy.
	RuleInFlight = "in-flight"
	// RuleSlots: capped at a slot for every task present.
	RuleSlots = "slots"
	// RuleAge: the queue-wait age rule (CeleryWaitAsk): some task has
	// waited past the target, and the workers at work × wait / target is
	// more than the rest asks for.
	RuleAge = "age"
)

// CeleryFlow is what the wait-based ask measures of the workers, over a
// recent window: how fast tasks arrive and how long one runs.
type CeleryFlow struct {
	// Measured says the window had what the rule needs: completions from the
	// workers' heartbeats, so a service time. When false, Why says what was
	// missing (no heartbeats, no completion yet).
	Measured bool
	Why      string
	// ArrivalsPerSecond is the tasks that arrived per second over the
	// window and are not still queued: Δ(queued + inFlight) + completed,
	// less the queue's growth, over its span (a burst that is still queued
	// is the drain's to count, not a rate to keep up with).
	ArrivalsPerSecond float64
	// ServiceSeconds is the mean service time by Little's law: the mean
	// tasks in flight × span / completions.
	ServiceSeconds float64
	// PodStartup is how long a rise of the ask takes to give a new worker:
	// learned from heartbeats, or the configured default.
	PodStartup time.Duration
}

// CeleryFlowDetail is how the wait-based ask came about, for Explain.
type CeleryFlowDetail struct {
	Rule string `json:"rule"`
	// Fallback says why the flow could not be used ("" when it was).
	Fallback          string   `json:"fallback,omitempty"`
	ArrivalsPerSecond *float64 `json:"arrivalsPerSecond"`
	ServiceSeconds    *float64 `json:"serviceSeconds"`
	PodStartupSeconds float64  `json:"podStartupSeconds"`
	// DrainSeconds is how long the workers at work would take to empty the
	// queue while keeping up with the arrivals; null when they cannot (no
	// surplus) or nothing was measured; 0 with an empty queue.
	DrainSeconds *float64 `json:"drainSeconds"`
	KeepUp       *float64 `json:"keepUp"`
	Drain        *float64 `json:"drain"`
	Ask          *float64 `json:"ask"`
}

// CeleryFlowAsk is the wait-based ask of the celery component with a
// queue-wait target. With c slots per replica (tasksPerReplica), arrivals
// λ, a service time S, W workers at work, Q tasks queued whose oldest has
// waited w, and D for a new pod to start:
//
//	keep-up = λ·S / c          (Little's law: the slots the arrivals fill)
//	H       = max(target − w, target/2)  (when the queue must be empty)
//	a replica drains c/S tasks a second; the W at work have a surplus of
//	W·c/S − λ, and a new one helps only from D on, for E = max(H − D, target/2)
//	ask     = (λ + Q/H)·S/c                        when that is ≤ W (no new pod)
//	        = W + (Q − (W·c/S − λ)·H)·S/(c·E)       otherwise
//
// never below the replicas the tasks in flight occupy (inFlight / c), and
// never above a slot for every task present or the keep-up (a pod more
// cannot start any task sooner). Once some task has waited past the
// target, the age rule (CeleryWaitAsk) is its floor: the wait rule of
// CeleryWaitOpinion with this ask in the place of the depth ask. E's floor of half a target keeps the ask
// finite once the head has waited past target − D: the target cannot be
// kept by pods that are not there yet, and the ask is then the pods that
// drain the rest within half a target of their start. With nothing queued
// the ask is max(keep-up, inFlight/c), which moves only as fast as the
// measured window: no step to 0 when the queue empties.
//
// Without a measured flow (no heartbeats, no completion yet) or with nobody
// at work (a cold start from 0) it is CeleryWaitOpinion: the depth ask and
// its age rule, and the detail says why.
func CeleryFlowAsk(b CeleryBacklog, tasksPerReplica float64, target time.Duration, f CeleryFlow) (Opinion, CeleryFlowDetail) {
	d := CeleryFlowDetail{PodStartupSeconds: f.PodStartup.Seconds()}
	fallback := func(why string) (Opinion, CeleryFlowDetail) {
		o := CeleryWaitOpinion(b, tasksPerReplica, target, nil)
		d.Rule, d.Fallback = RuleDepthFallback, why
		d.Ask = o.Desired
		return o, d
	}
	if target <= 0 {
		o := CeleryWaitOpinion(b, tasksPerReplica, 0, nil)
		d.Rule, d.Ask = RuleDepth, o.Desired
		return o, d
	}
	if !f.Measured {
		return fallback(f.Why)
	}
	lambda, s, c := f.ArrivalsPerSecond, f.ServiceSeconds, tasksPerReplica
	d.ArrivalsPerSecond, d.ServiceSeconds = Ptr(lambda), Ptr(s)
	if !(s > 0) || math.IsInf(s, 0) || !(lambda >= 0) || math.IsInf(lambda, 0) || !(c > 0) {
		return fallback("the measured flow is not a number (service time or arrival rate)")
	}
	w := float64(b.Workers)
	if w == 0 {
		return fallback("no worker at work (a cold start): the depth ask wakes one")
	}
	q := float64(b.Queued)
	surplus := w*c/s - lambda
	switch {
	case q == 0:
		d.DrainSeconds = Ptr(0)
	case surplus > 0:
		d.DrainSeconds = Ptr(q / surplus)
	}
	keepUp := lambda * s / c
	d.KeepUp = Ptr(keepUp)
	ask, rule := keepUp, RuleKeepUp
	if q > 0 {
		tgt := target.Seconds()
		h := math.Max(tgt-b.OldestWait.Seconds(), tgt/2)
		ask, rule = (lambda+q/h)*s/c, RuleDrain
		if ask > w {
			e := math.Max(h-f.PodStartup.Seconds(), tgt/2)
			ask = w + (q-surplus*h)*s/(c*e)
		}
		d.Drain = Ptr(ask - keepUp)
	}
	work := q + float64(b.InFlight)
	if inFlight := float64(b.InFlight) / c; ask < inFlight {
		ask, rule = inFlight, RuleInFlight
	}
	if slots := math.Max(work/c, keepUp); ask > slots {
		ask, rule = slots, RuleSlots
	}
	if age, ok := CeleryWaitAsk(b, c, target); ok && age > ask {
		ask, rule = age, RuleAge
	}
	d.Rule, d.Ask = rule, Ptr(ask)
	return Opinion{Desired: Ptr(ask), Active: work > 0}, d
}
