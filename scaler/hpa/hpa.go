// Package hpa models the Kubernetes HorizontalPodAutoscaler controller
// (autoscaling/v2, kube-controller-manager's podautoscaler) for one
// Deployment: External AverageValue and Resource Utilization metrics, the
// tolerance, min/max, the behavior algorithm (stabilization windows, Pods and
// Percent policies, selectPolicy, periodSeconds), and KEDA's activation and
// cooldown for scaling to and from zero. It does no I/O: time and readings are
// parameters, so a simulator can replay days in milliseconds.
package hpa

import (
	"fmt"
	"math"
	"time"
)

// SyncPeriod is the controller's --horizontal-pod-autoscaler-sync-period default.
const SyncPeriod = 15 * time.Second

// DefaultTolerance is the controller's --horizontal-pod-autoscaler-tolerance default.
const DefaultTolerance = 0.1

// PolicyType is a scaling policy's unit.
type PolicyType string

// Policy types of autoscaling/v2 HPAScalingPolicy.
const (
	Pods    PolicyType = "Pods"
	Percent PolicyType = "Percent"
)

// Select says how the policies of one direction combine.
type Select string

// SelectPolicy values of autoscaling/v2.
const (
	SelectMax      Select = "Max"
	SelectMin      Select = "Min"
	SelectDisabled Select = "Disabled"
)

// Policy is one HPAScalingPolicy: change at most Value (pods or percent) per Period.
type Policy struct {
	Type   PolicyType
	Value  int32
	Period time.Duration
}

// Rules are one direction's HPAScalingRules, defaults already filled in.
type Rules struct {
	StabilizationWindow time.Duration
	Select              Select
	Policies            []Policy
}

// Behavior is an HPA's spec.behavior with Kubernetes' defaults filled in.
type Behavior struct {
	ScaleUp, ScaleDown Rules
}

// DefaultScaleUp is Kubernetes' scaleUp default: no stabilization, the larger
// of 4 pods or 100 % per 15 s.
func DefaultScaleUp() Rules {
	return Rules{Select: SelectMax, Policies: []Policy{
		{Type: Pods, Value: 4, Period: 15 * time.Second},
		{Type: Percent, Value: 100, Period: 15 * time.Second},
	}}
}

// DefaultScaleDown is Kubernetes' scaleDown default: 300 s stabilization, 100 % per 15 s.
func DefaultScaleDown() Rules {
	return Rules{StabilizationWindow: 300 * time.Second, Select: SelectMax, Policies: []Policy{
		{Type: Percent, Value: 100, Period: 15 * time.Second},
	}}
}

// DefaultBehavior is the behavior of an HPA that sets none.
func DefaultBehavior() Behavior {
	return Behavior{ScaleUp: DefaultScaleUp(), ScaleDown: DefaultScaleDown()}
}

// Spec is the part of an HPA the controller acts on.
type Spec struct {
	MinReplicas, MaxReplicas int32
	// Tolerance is the controller flag; zero means DefaultTolerance.
	Tolerance float64
	Behavior  Behavior
}

// Validate reports a Spec the API server would refuse.
func (s Spec) Validate() error {
	if s.MinReplicas < 1 {
		return fmt.Errorf("hpa: minReplicas %d: must be at least 1 (KEDA scales to zero, not the HPA)", s.MinReplicas)
	}
	if s.MaxReplicas < s.MinReplicas {
		return fmt.Errorf("hpa: maxReplicas %d: must not be below minReplicas %d", s.MaxReplicas, s.MinReplicas)
	}
	if s.Tolerance < 0 || s.Tolerance >= 1 {
		return fmt.Errorf("hpa: tolerance %g: must be in [0, 1)", s.Tolerance)
	}
	for _, d := range []struct {
		name string
		r    Rules
	}{{"scaleUp", s.Behavior.ScaleUp}, {"scaleDown", s.Behavior.ScaleDown}} {
		if err := d.r.validate(d.name); err != nil {
			return err
		}
	}
	return nil
}

func (r Rules) validate(dir string) error {
	if r.StabilizationWindow < 0 || r.StabilizationWindow > time.Hour {
		return fmt.Errorf("hpa: %s.stabilizationWindowSeconds %g: must be 0 to 3600", dir, r.StabilizationWindow.Seconds())
	}
	switch r.Select {
	case SelectMax, SelectMin, SelectDisabled:
	default:
		return fmt.Errorf("hpa: %s.selectPolicy %q: want Max, Min or Disabled", dir, r.Select)
	}
	if len(r.Policies) == 0 && r.Select != SelectDisabled {
		return fmt.Errorf("hpa: %s.policies: at least one policy unless selectPolicy is Disabled", dir)
	}
	for i, p := range r.Policies {
		if p.Type != Pods && p.Type != Percent {
			return fmt.Errorf("hpa: %s.policies[%d].type %q: want Pods or Percent", dir, i, p.Type)
		}
		if p.Value <= 0 {
			return fmt.Errorf("hpa: %s.policies[%d].value %d: must be positive", dir, i, p.Value)
		}
		if p.Period <= 0 || p.Period > 30*time.Minute {
			return fmt.Errorf("hpa: %s.policies[%d].periodSeconds %g: must be 1 to 1800", dir, i, p.Period.Seconds())
		}
	}
	return nil
}

// MetricKind says how a metric turns into replicas.
type MetricKind int

// Metric kinds the model supports.
const (
	// External is an External metric with an AverageValue target (KEDA's
	// default): desired = ceil(Value / Target).
	External MetricKind = iota
	// Utilization is a Resource metric (cpu, memory) with a Utilization
	// target in percent of the pods' requests.
	Utilization
)

// Metric is one metric's reading at a sync.
type Metric struct {
	Name string
	Kind MetricKind
	// Target is the AverageValue (External) or the utilization percent.
	Target float64
	// Value is the metric's total (External).
	Value float64
	// Utilization is the mean utilization percent of the ready pods that
	// report (Utilization); ReadyPods of them, UnreadyPods not yet ready.
	Utilization float64
	ReadyPods   int32
	UnreadyPods int32
}

// Proposal is what one metric asks for.
func (m Metric) Proposal(current int32, tolerance float64) (int32, error) {
	switch m.Kind {
	case External:
		if m.Target <= 0 || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return 0, fmt.Errorf("hpa: metric %s: value %g, target %g: unusable", m.Name, m.Value, m.Target)
		}
		// GetExternalMetricReplicas with a target average value.
		ratio := m.Value / (m.Target * float64(current))
		if current > 0 && math.Abs(1-ratio) <= tolerance {
			return current, nil
		}
		return int32(math.Ceil(m.Value / m.Target)), nil
	case Utilization:
		if m.Target <= 0 || m.ReadyPods <= 0 || math.IsNaN(m.Utilization) {
			return 0, fmt.Errorf("hpa: metric %s: no ready pod reports it", m.Name)
		}
		return plainReplicas(current, m.Utilization/m.Target, m.ReadyPods, m.UnreadyPods, tolerance), nil
	}
	return 0, fmt.Errorf("hpa: metric %s: unknown kind %d", m.Name, m.Kind)
}

// plainReplicas is calcPlainMetricReplicas: unready pods are left out, and
// when the ready pods ask to scale up they are counted at 0 % so that
// starting pods do not double the scale-up.
func plainReplicas(current int32, ratio float64, ready, unready int32, tolerance float64) int32 {
	if unready == 0 || ratio <= 1 {
		if math.Abs(1-ratio) <= tolerance {
			return current
		}
		return int32(math.Ceil(ratio * float64(ready)))
	}
	total := ready + unready
	newRatio := ratio * float64(ready) / float64(total)
	if math.Abs(1-newRatio) <= tolerance || newRatio < 1 {
		return current
	}
	n := int32(math.Ceil(newRatio * float64(total)))
	if n < current {
		return current
	}
	return n
}

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
