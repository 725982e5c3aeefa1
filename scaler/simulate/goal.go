package simulate

import (
	"fmt"
	"strings"
)

// Goal compares, in a run that has them side by side, the wait-based ask
// (MontageScaler with a queueWaitTarget) with the depth ask
// (MontageDepth) and KEDA's built-in triggers (KEDABuiltin): its wait P95
// against the target and against the depth ask's, its pod-hours against
// each. One line per comparison, saying met or by how much it is missed;
// nil when the run lacks one of the three or the metadata sets no target.
func Goal(r *Report) []string {
	by := map[string]*Result{}
	for i := range r.Results {
		by[r.Results[i].Policy] = &r.Results[i]
	}
	wait, depth, keda := by[MontageScaler], by[MontageDepth], by[KEDABuiltin]
	if wait == nil || depth == nil || keda == nil || r.QueueWaitTarget <= 0 || !r.WaitTargetSet {
		return nil
	}
	target := r.QueueWaitTarget.Seconds()
	lines := []string{
		verdict("wait P95 ≤ the target", wait.QueueWaitP95Seconds, target, "s"),
		verdict("wait P95 ≤ "+MontageDepth+"'s", wait.QueueWaitP95Seconds, depth.QueueWaitP95Seconds, "s"),
		verdict("pod-hours ≤ "+KEDABuiltin+"'s", wait.PodHours, keda.PodHours, ""),
		verdict("pod-hours ≤ "+MontageDepth+"'s", wait.PodHours, depth.PodHours, ""),
	}
	for i, l := range lines {
		lines[i] = fmt.Sprintf("goal (queueWaitTarget %s): %s", seconds(r.QueueWaitTarget), l)
	}
	return lines
}

// verdict says whether got ≤ bound, and by how much it is over when not.
func verdict(what string, got, bound float64, unit string) string {
	figures := fmt.Sprintf("%s %s vs %s", MontageScaler, figure(got, unit), figure(bound, unit))
	if got <= bound+1e-9 {
		return what + ": met (" + figures + ")"
	}
	over := fmt.Sprintf("over by %s", figure(got-bound, unit))
	if bound > 0 {
		over += fmt.Sprintf(" (%.0f %%)", (got-bound)/bound*100)
	}
	return what + ": NOT met (" + figures + "), " + over
}

func figure(v float64, unit string) string {
	if unit == "s" {
		return fmt.Sprintf("%.1f s", v)
	}
	return strings.TrimSpace(fmt.Sprintf("%.3f", v))
}
