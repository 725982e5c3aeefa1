package simulate

import (
	"slices"
	"testing"
	"time"
)

func TestGoalSaysByHowMuchItIsMissed(t *testing.T) {
	r := &Report{QueueWaitTarget: time.Minute, WaitTargetSet: true, Results: []Result{
		{Policy: KEDABuiltin, PodHours: 5, QueueWaitP95Seconds: 70},
		{Policy: MontageDepth, PodHours: 6, QueueWaitP95Seconds: 40},
		{Policy: MontageScaler, PodHours: 5.5, QueueWaitP95Seconds: 50},
	}}
	want := []string{
		"goal (queueWaitTarget 60s): wait P95 ≤ the target: met (montage-scaler 50.0 s vs 60.0 s)",
		"goal (queueWaitTarget 60s): wait P95 ≤ montage-scaler-depth's: NOT met (montage-scaler 50.0 s vs 40.0 s), over by 10.0 s (25 %)",
		"goal (queueWaitTarget 60s): pod-hours ≤ keda-builtin's: NOT met (montage-scaler 5.500 vs 5.000), over by 0.500 (10 %)",
		"goal (queueWaitTarget 60s): pod-hours ≤ montage-scaler-depth's: met (montage-scaler 5.500 vs 6.000)",
	}
	if got := Goal(r); !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	r.WaitTargetSet = false
	if got := Goal(r); got != nil {
		t.Errorf("without a queueWaitTarget: %q, want nothing", got)
	}
	r.WaitTargetSet, r.Results = true, r.Results[1:]
	if got := Goal(r); got != nil {
		t.Errorf("without keda-builtin: %q, want nothing", got)
	}
}
