package hpa

import (
	"fmt"
	"math"
)

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
