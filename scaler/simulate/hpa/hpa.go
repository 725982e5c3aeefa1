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
	"time"
)

// SyncPeriod is the controller's --horizontal-pod-autoscaler-sync-period
// default, and the simulator's unless its Loop.HPASync says otherwise (the
// Controller itself takes the instant of each sync, whatever the period).
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
