package decide

import (
	"fmt"
	"math"
	"time"
)

// LatencyEvidence is the latency component's evidence in plain numbers, so
// that decide stays free of the latency source's I/O packages.
type LatencyEvidence struct {
	// P95 in seconds; NaN when there were no requests or no series.
	P95 float64
	// AtLeast marks a P95 that fell in the +Inf bucket: the true value is at
	// least P95 (the highest finite bound).
	AtLeast bool
	// CurrentReplicas is the scale target's replica count now.
	CurrentReplicas float64
	// Warnings travel into the opinion whatever it says.
	Warnings []string
}

// LatencyOpinion asks for current × p95 / target while p95 is above target
// (ADR-0002: scale up on latency) and is active then; otherwise it has no
// opinion. A P95 above target with zero current replicas still asks for the
// ratio of one replica: requests are being served slowly by someone.
func LatencyOpinion(e LatencyEvidence, target time.Duration, detail any) Opinion {
	o := Opinion{Warnings: append([]string{}, e.Warnings...), Detail: detail}
	t := target.Seconds()
	switch {
	case t <= 0:
		o.Warnings = append(o.Warnings, fmt.Sprintf("latency target %s is not positive: no opinion", target))
		return o
	case math.IsNaN(e.P95):
		return o
	case math.IsInf(e.P95, 0) || e.P95 < 0:
		o.Warnings = append(o.Warnings, fmt.Sprintf("P95 %g s is not a usable latency: no opinion", e.P95))
		return o
	case math.IsNaN(e.CurrentReplicas) || math.IsInf(e.CurrentReplicas, 0) || e.CurrentReplicas < 0:
		o.Warnings = append(o.Warnings, fmt.Sprintf("current replicas %g unknown: no opinion", e.CurrentReplicas))
		return o
	case e.P95 <= t:
		return o
	}
	current := e.CurrentReplicas
	if current < 1 {
		o.Warnings = append(o.Warnings, fmt.Sprintf("P95 above target with %s current replicas: counted as 1", FormatReplicas(current)))
		current = 1
	}
	o.Desired = Ptr(current * e.P95 / t)
	o.Active = true
	if e.AtLeast {
		o.Warnings = append(o.Warnings, fmt.Sprintf("P95 is in the +Inf bucket: at least %g s, so %s replicas is a lower bound", e.P95, FormatReplicas(*o.Desired)))
	}
	return o
}
