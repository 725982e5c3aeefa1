package hpa

import (
	"fmt"
	"time"
)

// BehaviorSpec is spec.behavior as written in YAML/JSON (autoscaling/v2
// HorizontalPodAutoscalerBehavior, also KEDA's
// advanced.horizontalPodAutoscalerConfig.behavior).
type BehaviorSpec struct {
	ScaleUp   *RulesSpec `json:"scaleUp,omitempty"`
	ScaleDown *RulesSpec `json:"scaleDown,omitempty"`
}

// RulesSpec is HPAScalingRules as written.
type RulesSpec struct {
	StabilizationWindowSeconds *int32       `json:"stabilizationWindowSeconds,omitempty"`
	SelectPolicy               *string      `json:"selectPolicy,omitempty"`
	Policies                   []PolicySpec `json:"policies,omitempty"`
}

// PolicySpec is HPAScalingPolicy as written.
type PolicySpec struct {
	Type          string `json:"type"`
	Value         int32  `json:"value"`
	PeriodSeconds int32  `json:"periodSeconds"`
}

// Behavior fills in Kubernetes' defaults field by field, as the API server
// does, and validates the result.
func (b *BehaviorSpec) Behavior() (Behavior, error) {
	out := DefaultBehavior()
	if b == nil {
		return out, nil
	}
	var err error
	if out.ScaleUp, err = b.ScaleUp.rules("scaleUp", DefaultScaleUp()); err != nil {
		return Behavior{}, err
	}
	if out.ScaleDown, err = b.ScaleDown.rules("scaleDown", DefaultScaleDown()); err != nil {
		return Behavior{}, err
	}
	return out, nil
}

func (r *RulesSpec) rules(dir string, def Rules) (Rules, error) {
	if r == nil {
		return def, nil
	}
	out := def
	if r.StabilizationWindowSeconds != nil {
		out.StabilizationWindow = time.Duration(*r.StabilizationWindowSeconds) * time.Second
	}
	if r.SelectPolicy != nil {
		out.Select = Select(*r.SelectPolicy)
	}
	if r.Policies != nil {
		out.Policies = nil
		for _, p := range r.Policies {
			out.Policies = append(out.Policies, Policy{Type: PolicyType(p.Type), Value: p.Value, Period: time.Duration(p.PeriodSeconds) * time.Second})
		}
	}
	if err := out.validate(dir); err != nil {
		return Rules{}, err
	}
	return out, nil
}

// KEDA models KEDA's scale loop for a ScaledObject: it scales the target from
// zero when a trigger becomes active and to minReplicaCount after
// cooldownPeriod without activity; the HPA it owns does the rest, with
// minReplicas max(minReplicaCount, 1).
type KEDA struct {
	MinReplicaCount, MaxReplicaCount int32
	Cooldown                         time.Duration
	lastActive                       time.Time
}

// HPASpec is the HPA KEDA creates for the ScaledObject.
func (k *KEDA) HPASpec(b Behavior) Spec {
	return Spec{MinReplicas: max(k.MinReplicaCount, 1), MaxReplicas: k.MaxReplicaCount, Behavior: b}
}

// Validate reports counts KEDA's webhook would refuse.
func (k *KEDA) Validate() error {
	if k.MinReplicaCount < 0 {
		return fmt.Errorf("keda: minReplicaCount %d: must not be negative", k.MinReplicaCount)
	}
	if k.MaxReplicaCount < max(k.MinReplicaCount, 1) {
		return fmt.Errorf("keda: maxReplicaCount %d: must be at least minReplicaCount and 1", k.MaxReplicaCount)
	}
	if k.Cooldown < 0 {
		return fmt.Errorf("keda: cooldownPeriod %s: must not be negative", k.Cooldown)
	}
	return nil
}

// Start sets the instant the cooldown counts from before any activity (the
// ScaledObject's creation).
func (k *KEDA) Start(now time.Time) { k.lastActive = now }

// Scale is one pass of KEDA's scale loop at now: it returns the replicas KEDA
// sets and whether it set them. Active with zero replicas wakes the target to
// max(minReplicaCount, 1); inactive past the cooldown takes it down to
// minReplicaCount when that is zero; otherwise the HPA owns the count.
func (k *KEDA) Scale(now time.Time, active bool, current int32) (int32, bool) {
	if active {
		k.lastActive = now
		if current == 0 {
			return max(k.MinReplicaCount, 1), true
		}
		return current, false
	}
	if k.MinReplicaCount == 0 && current > 0 && now.Sub(k.lastActive) >= k.Cooldown {
		return 0, true
	}
	if current < k.MinReplicaCount {
		return k.MinReplicaCount, true
	}
	return current, false
}
