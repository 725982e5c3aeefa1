package hpa

import (
	"math"
	"time"
)

type timestamped struct {
	at       time.Time
	replicas int32
}

type scaleEvent struct {
	at     time.Time
	change int32
}

// Controller is one HPA's controller state: its recommendations and scale
// events, as kube-controller-manager keeps them in memory.
type Controller struct {
	spec  Spec
	recs  []timestamped
	ups   []scaleEvent
	downs []scaleEvent
}

// New returns a Controller for s.
func New(s Spec) (*Controller, error) {
	if s.Tolerance == 0 {
		s.Tolerance = DefaultTolerance
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &Controller{spec: s}, nil
}

// Spec returns the controller's spec, defaults filled in.
func (c *Controller) Spec() Spec { return c.spec }

// Result is one sync's outcome.
type Result struct {
	// Desired is the replica count the controller sets.
	Desired int32
	// Metric is the largest proposal of the metrics, before behavior.
	Metric int32
	// Reason names what limited the result, as the HPA's conditions do.
	Reason string
	// Errors name metrics that could not be used.
	Errors []error
}

// Sync is one reconcile at now with the scale target at current replicas.
// At zero replicas with minReplicas above zero scaling is disabled (KEDA's
// activation handles zero).
func (c *Controller) Sync(now time.Time, current int32, metrics []Metric) Result {
	switch {
	case current == 0:
		return Result{Desired: 0, Reason: "ScalingDisabled"}
	case current > c.spec.MaxReplicas:
		c.record(now, current, c.spec.MaxReplicas)
		return Result{Desired: c.spec.MaxReplicas, Reason: "TooManyReplicas"}
	case current < c.spec.MinReplicas:
		c.record(now, current, c.spec.MinReplicas)
		return Result{Desired: c.spec.MinReplicas, Reason: "TooFewReplicas"}
	}
	r := Result{Metric: -1}
	for _, m := range metrics {
		p, err := m.Proposal(current, c.spec.Tolerance)
		if err != nil {
			r.Errors = append(r.Errors, err)
			continue
		}
		if p > r.Metric {
			r.Metric = p
		}
	}
	if r.Metric < 0 {
		// All metrics failed: the HPA keeps the current scale.
		r.Desired, r.Reason = current, "FailedGetMetrics"
		return r
	}
	proposed := r.Metric
	if len(r.Errors) > 0 && proposed < current {
		// Some metric is missing: the controller does not scale down on
		// the others alone.
		proposed = current
	}
	r.Desired, r.Reason = c.normalize(now, current, proposed)
	if r.Desired != current {
		c.record(now, current, r.Desired)
	}
	return r
}

// normalize is normalizeDesiredReplicasWithBehaviors: stabilize, then apply
// the rate policies and the min/max clamp.
func (c *Controller) normalize(now time.Time, current, proposed int32) (int32, string) {
	stabilized, reason := c.stabilize(now, current, proposed)
	b := c.spec.Behavior
	lo, hi := c.spec.MinReplicas, c.spec.MaxReplicas
	switch {
	case stabilized > current:
		limit := upLimit(now, current, c.ups, c.downs, b.ScaleUp)
		if limit < current {
			limit = current
		}
		max := hi
		why := "TooManyReplicas"
		if max > limit {
			max, why = limit, "ScaleUpLimit"
		}
		if stabilized > max {
			return max, why
		}
		return stabilized, reason
	case stabilized < current:
		limit := downLimit(now, current, c.ups, c.downs, b.ScaleDown)
		if limit > current {
			limit = current
		}
		min := lo
		why := "TooFewReplicas"
		if min < limit {
			min, why = limit, "ScaleDownLimit"
		}
		if stabilized < min {
			return min, why
		}
		return stabilized, reason
	}
	if stabilized < lo {
		return lo, "TooFewReplicas"
	}
	if stabilized > hi {
		return hi, "TooManyReplicas"
	}
	return stabilized, reason
}

// stabilize is stabilizeRecommendationWithBehaviors: up to the smallest
// recommendation of the scale-up window, down to the largest of the
// scale-down window.
func (c *Controller) stabilize(now time.Time, current, proposed int32) (int32, string) {
	up, down := proposed, proposed
	upCut := now.Add(-c.spec.Behavior.ScaleUp.StabilizationWindow)
	downCut := now.Add(-c.spec.Behavior.ScaleDown.StabilizationWindow)
	longest := max(c.spec.Behavior.ScaleUp.StabilizationWindow, c.spec.Behavior.ScaleDown.StabilizationWindow)
	kept := c.recs[:0]
	for _, r := range c.recs {
		if r.at.After(upCut) {
			up = min(up, r.replicas)
		}
		if r.at.After(downCut) {
			down = max(down, r.replicas)
		}
		if r.at.After(now.Add(-longest)) {
			kept = append(kept, r)
		}
	}
	c.recs = append(kept, timestamped{now, proposed})
	rec, reason := current, "ScaleWithinLimits"
	if rec < up {
		rec = up
	}
	if rec > down {
		rec = down
	}
	if rec != proposed {
		reason = "ScaleStabilized"
	}
	return rec, reason
}

func changeIn(now time.Time, period time.Duration, evs []scaleEvent) int32 {
	var n int32
	cut := now.Add(-period)
	for _, e := range evs {
		if e.at.After(cut) {
			n += e.change
		}
	}
	return n
}

func upLimit(now time.Time, current int32, ups, downs []scaleEvent, r Rules) int32 {
	if r.Select == SelectDisabled {
		return current
	}
	result := int32(math.MinInt32)
	pick := func(a, b int32) int32 { return max(a, b) }
	if r.Select == SelectMin {
		result = math.MaxInt32
		pick = func(a, b int32) int32 { return min(a, b) }
	}
	for _, p := range r.Policies {
		start := current - changeIn(now, p.Period, ups) + changeIn(now, p.Period, downs)
		var proposed int32
		if p.Type == Pods {
			proposed = start + p.Value
		} else {
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

func downLimit(now time.Time, current int32, ups, downs []scaleEvent, r Rules) int32 {
	if r.Select == SelectDisabled {
		return current
	}
	result := int32(math.MaxInt32)
	pick := func(a, b int32) int32 { return min(a, b) }
	if r.Select == SelectMin {
		result = math.MinInt32
		pick = func(a, b int32) int32 { return max(a, b) }
	}
	for _, p := range r.Policies {
		start := current - changeIn(now, p.Period, ups) + changeIn(now, p.Period, downs)
		var proposed int32
		if p.Type == Pods {
			proposed = start - p.Value
		} else {
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// record is storeScaleEvent: events older than the longest policy period of
// their direction are dropped.
func (c *Controller) record(now time.Time, from, to int32) {
	if to > from {
		c.ups = append(prune(now, c.ups, c.spec.Behavior.ScaleUp), scaleEvent{now, to - from})
	} else {
		c.downs = append(prune(now, c.downs, c.spec.Behavior.ScaleDown), scaleEvent{now, from - to})
	}
}

func prune(now time.Time, evs []scaleEvent, r Rules) []scaleEvent {
	var longest time.Duration
	for _, p := range r.Policies {
		longest = max(longest, p.Period)
	}
	kept := evs[:0]
	for _, e := range evs {
		if e.at.After(now.Add(-longest)) {
			kept = append(kept, e)
		}
	}
	return kept
}
