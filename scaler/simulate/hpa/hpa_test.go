package hpa

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)

func ext(value float64) []Metric {
	return []Metric{{Name: "s0-montage-desired-replicas", Kind: External, Target: 1, Value: value}}
}

func mustNew(t *testing.T, s Spec) *Controller {
	t.Helper()
	c, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run syncs every 15 s from t0 for len(values) syncs, applying each result,
// and returns the replicas after each sync.
func run(t *testing.T, c *Controller, current int32, values []float64) []int32 {
	t.Helper()
	var got []int32
	for i, v := range values {
		r := c.Sync(t0.Add(time.Duration(i)*SyncPeriod), current, ext(v))
		current = r.Desired
		got = append(got, current)
	}
	return got
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Each case is a worked example of the Kubernetes documentation
// ("Horizontal Pod Autoscaling": algorithm details, scaling policies,
// stabilization window, default behavior) or a rule stated there.
func TestControllerFollowsTheDocumentedExamples(t *testing.T) {
	down := func(sel Select) Behavior {
		b := DefaultBehavior()
		b.ScaleDown.Select = sel
		b.ScaleDown.Policies = []Policy{{Pods, 4, time.Minute}, {Percent, 10, time.Minute}}
		return b
	}
	upWindow := DefaultBehavior()
	upWindow.ScaleUp.StabilizationWindow = time.Minute
	cases := []struct {
		name    string
		spec    Spec
		current int32
		values  []float64
		want    []int32
	}{
		{
			name:    "scale-down policies Pods 4 and Percent 10 per minute with selectPolicy Max remove 8 of 80, then 8 of 72, and 4 at a time below 40",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: down(SelectMax)},
			current: 80,
			values:  repeat(10, 4*14+1),
			want:    []int32{72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10},
			// sampled once a minute below
		},
		{
			name:    "selectPolicy Min picks the policy that changes least",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: down(SelectMin)},
			current: 80,
			values:  repeat(10, 4*3+1),
			want:    []int32{76, 72, 68, 64},
		},
		{
			name:    "selectPolicy Disabled never scales down",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: down(SelectDisabled)},
			current: 80,
			values:  repeat(10, 4*3+1),
			want:    []int32{80, 80, 80, 80},
		},
		{
			name:    "the default scale-up adds the larger of 4 pods or 100 % every 15 s",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: DefaultBehavior()},
			current: 1,
			values:  []float64{20, 20, 20, 20},
			want:    []int32{5, 10, 20, 20},
		},
		{
			name:    "a scale-up stabilization window of 60 s waits until every recommendation of the last minute asks for more",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: upWindow},
			current: 2,
			values:  []float64{2, 6, 6, 6, 6, 6, 6},
			want:    []int32{2, 2, 2, 2, 6, 6, 6},
		},
		{
			name:    "the default 300 s scale-down window keeps the highest recommendation of the last five minutes",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: DefaultBehavior()},
			current: 5,
			values:  append([]float64{5}, repeat(2, 21)...),
			want:    append(slices.Repeat([]int32{5}, 20), 2, 2),
		},
		{
			name:    "a ratio within the 10 % tolerance keeps the replicas",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: DefaultBehavior()},
			current: 10,
			values:  []float64{10.9, 9.1},
			want:    []int32{10, 10},
		},
		{
			name:    "a ratio just past the tolerance scales to the ceiling of value over target",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 100, Behavior: DefaultBehavior()},
			current: 10,
			values:  []float64{11.2},
			want:    []int32{12},
		},
		{
			name:    "maxReplicas caps the scale-up",
			spec:    Spec{MinReplicas: 1, MaxReplicas: 4, Behavior: DefaultBehavior()},
			current: 2,
			values:  []float64{9},
			want:    []int32{4},
		},
		{
			name:    "minReplicas floors the scale-down",
			spec:    Spec{MinReplicas: 2, MaxReplicas: 8, Behavior: Behavior{ScaleUp: DefaultScaleUp(), ScaleDown: Rules{Select: SelectMax, Policies: []Policy{{Percent, 100, 15 * time.Second}}}}},
			current: 6,
			values:  []float64{0},
			want:    []int32{2},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, mustNew(t, tc.spec), tc.current, tc.values)
			if len(got) != len(tc.want) {
				// Policies with a 60 s period: look once a minute.
				var sampled []int32
				for i := 0; i < len(got); i += 4 {
					sampled = append(sampled, got[i])
				}
				got = sampled
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("replicas = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUtilizationFollowsTheDocumentedAlgorithm(t *testing.T) {
	cases := []struct {
		name           string
		current        int32
		util, target   float64
		ready, unready int32
		want           int32
	}{
		{"200m against a target of 100m doubles the replicas", 4, 200, 100, 4, 0, 8},
		{"50m against a target of 100m halves them", 4, 50, 100, 4, 0, 2},
		{"CPU at 105 % of target is within the tolerance", 4, 68.25, 65, 4, 0, 4},
		{"unready pods count as 0 % when scaling up and can cancel it", 4, 75, 50, 2, 2, 4},
		{"unready pods count as 0 % and bring the ratio within the tolerance", 3, 75, 50, 2, 1, 3},
		{"unready pods at 0 % still leave a scale-up when the ready ones are hot enough", 3, 100, 50, 2, 1, 4},
		{"unready pods are left out when scaling down", 4, 20, 50, 2, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Metric{Name: "cpu", Kind: Utilization, Target: tc.target, Utilization: tc.util, ReadyPods: tc.ready, UnreadyPods: tc.unready}
			got, err := m.Proposal(tc.current, DefaultTolerance)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("proposal = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTheLargestMetricWinsAndAMissingOneBlocksScaleDown(t *testing.T) {
	c := mustNew(t, Spec{MinReplicas: 1, MaxReplicas: 10, Behavior: Behavior{ScaleUp: DefaultScaleUp(),
		ScaleDown: Rules{Select: SelectMax, Policies: []Policy{{Percent, 100, 15 * time.Second}}}}})
	r := c.Sync(t0, 2, []Metric{
		{Name: "ext", Kind: External, Target: 1, Value: 3},
		{Name: "cpu", Kind: Utilization, Target: 65, Utilization: 130, ReadyPods: 2},
	})
	if r.Desired != 4 || r.Metric != 4 {
		t.Errorf("desired %d metric %d, want 4 and 4 (cpu asks 4, external 3)", r.Desired, r.Metric)
	}
	r = c.Sync(t0.Add(SyncPeriod), 4, []Metric{
		{Name: "ext", Kind: External, Target: 1, Value: 1},
		{Name: "cpu", Kind: Utilization, Target: 65, ReadyPods: 0},
	})
	if r.Desired != 4 || len(r.Errors) != 1 {
		t.Errorf("desired %d with %d errors, want 4 held with 1 error", r.Desired, len(r.Errors))
	}
}

func TestZeroReplicasDisableTheHPAAndOutOfRangeCountsAreClamped(t *testing.T) {
	c := mustNew(t, Spec{MinReplicas: 2, MaxReplicas: 5, Behavior: DefaultBehavior()})
	if r := c.Sync(t0, 0, ext(9)); r.Desired != 0 || r.Reason != "ScalingDisabled" {
		t.Errorf("at zero: %d %s, want 0 ScalingDisabled", r.Desired, r.Reason)
	}
	if r := c.Sync(t0, 7, ext(9)); r.Desired != 5 || r.Reason != "TooManyReplicas" {
		t.Errorf("above max: %d %s, want 5 TooManyReplicas", r.Desired, r.Reason)
	}
	if r := c.Sync(t0, 1, ext(0)); r.Desired != 2 || r.Reason != "TooFewReplicas" {
		t.Errorf("below min: %d %s, want 2 TooFewReplicas", r.Desired, r.Reason)
	}
}

func TestKEDAWakesFromZeroAndReturnsThereAfterTheCooldown(t *testing.T) {
	k := &KEDA{MinReplicaCount: 0, MaxReplicaCount: 8, Cooldown: 300 * time.Second}
	k.Start(t0)
	steps := []struct {
		at      time.Duration
		active  bool
		current int32
		want    int32
		changed bool
	}{
		{0, false, 0, 0, false},
		{30 * time.Second, true, 0, 1, true},
		{60 * time.Second, true, 3, 3, false},
		{90 * time.Second, false, 3, 3, false},
		{329 * time.Second, false, 3, 3, false},
		{360 * time.Second, false, 3, 0, true},
	}
	for _, s := range steps {
		got, changed := k.Scale(t0.Add(s.at), s.active, s.current)
		if got != s.want || changed != s.changed {
			t.Errorf("at +%s active=%t current=%d: %d %t, want %d %t", s.at, s.active, s.current, got, changed, s.want, s.changed)
		}
	}
	k2 := &KEDA{MinReplicaCount: 2, MaxReplicaCount: 8, Cooldown: time.Minute}
	k2.Start(t0)
	if got, _ := k2.Scale(t0.Add(time.Hour), false, 2); got != 2 {
		t.Errorf("minReplicaCount 2 inactive: %d, want 2", got)
	}
	if got, _ := k2.Scale(t0.Add(time.Hour), true, 0); got != 2 {
		t.Errorf("minReplicaCount 2 woken from 0: %d, want 2", got)
	}
	if s := k2.HPASpec(DefaultBehavior()); s.MinReplicas != 2 || s.MaxReplicas != 8 {
		t.Errorf("HPA spec %d..%d, want 2..8", s.MinReplicas, s.MaxReplicas)
	}
}

func TestBehaviorSpecFillsDefaultsFieldByFieldAndNamesBadValues(t *testing.T) {
	w := int32(60)
	b, err := (&BehaviorSpec{ScaleUp: &RulesSpec{StabilizationWindowSeconds: &w}}).Behavior()
	if err != nil {
		t.Fatal(err)
	}
	if b.ScaleUp.StabilizationWindow != time.Minute || len(b.ScaleUp.Policies) != 2 || b.ScaleDown.StabilizationWindow != 5*time.Minute {
		t.Errorf("behavior %+v: want scaleUp window 60s with the 2 default policies and the default scaleDown", b)
	}
	sel := "Maximum"
	_, err = (&BehaviorSpec{ScaleDown: &RulesSpec{SelectPolicy: &sel}}).Behavior()
	if err == nil || err.Error() != `hpa: scaleDown.selectPolicy "Maximum": want Max, Min or Disabled` {
		t.Errorf("error %v", err)
	}
	_, err = (&BehaviorSpec{ScaleUp: &RulesSpec{Policies: []PolicySpec{{Type: "Pods", Value: 0, PeriodSeconds: 60}}}}).Behavior()
	if err == nil || err.Error() != "hpa: scaleUp.policies[0].value 0: must be positive" {
		t.Errorf("error %v", err)
	}
}
