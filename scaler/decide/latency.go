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

// CheckP95 says whether p95 is a latency reading: a finite number of seconds
// ≥ 0, or NaN (nothing was served: no opinion). An infinite or negative P95
// is not a reading (a division by zero in the query, a histogram with
// negative bounds): the latency source fails, under the staleness rule. A
// finite one is, however large: it says the P95 is above target, and the
// ask it gives is capped at Ceiling.
func CheckP95(p95 float64) error {
	if math.IsInf(p95, 0) || p95 < 0 {
		return fmt.Errorf("P95 %g s is not a latency (want seconds ≥ 0, or NaN when nothing was served)", p95)
	}
	return nil
}

// LatencyOpinion asks for current × p95 / target while p95 is above target
// (ADR-0002, docs/adr-0002.md: scale UP on latency) and is active then; otherwise it has no
// opinion. A P95 above target with zero current replicas still asks for the
// ratio of one replica: requests are being served slowly by someone. The
// ask is capped at Ceiling (a P95 of 1e308 s would overflow it to +Inf).
// Evidence that is not a reading (CheckP95, CheckReplicas) is an error:
// never a number, nor a silent "no opinion".
func LatencyOpinion(e LatencyEvidence, target time.Duration, detail any) (Opinion, error) {
	o := Opinion{Warnings: append([]string{}, e.Warnings...), Detail: detail}
	if err := CheckP95(e.P95); err != nil {
		return Opinion{}, err
	}
	if err := CheckReplicas(e.CurrentReplicas); err != nil {
		return Opinion{}, fmt.Errorf("current replicas %w", err)
	}
	t := target.Seconds()
	switch {
	case t <= 0:
		o.Warnings = append(o.Warnings, fmt.Sprintf("latency target %s is not positive: no opinion", target))
		return o, nil
	case math.IsNaN(e.P95), e.P95 <= t:
		return o, nil
	}
	current := e.CurrentReplicas
	if current < 1 {
		o.Warnings = append(o.Warnings, fmt.Sprintf("P95 above target with %s current replicas: counted as 1", FormatReplicas(current)))
		current = 1
	}
	ask := current * e.P95 / t
	if !(ask <= Ceiling) { // +Inf included
		o.Warnings = append(o.Warnings, fmt.Sprintf("P95 %g s over target %s on %s replicas asks for more than the ceiling: %d",
			e.P95, target, FormatReplicas(current), Ceiling))
		ask = Ceiling
	}
	o.Desired = Ptr(ask)
	o.Active = true
	if e.AtLeast {
		o.Warnings = append(o.Warnings, fmt.Sprintf("P95 is in the +Inf bucket: at least %g s, so %s replicas is a lower bound", e.P95, FormatReplicas(*o.Desired)))
	}
	return o, nil
}
