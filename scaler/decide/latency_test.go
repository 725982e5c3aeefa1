package decide

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestLatencyOpinion(t *testing.T) {
	tests := []struct {
		name     string
		e        LatencyEvidence
		target   time.Duration
		desired  *float64
		active   bool
		warnings []string
	}{
		{
			name:     "A P95 twice the target on three replicas asks for six",
			e:        LatencyEvidence{P95: 0.16, CurrentReplicas: 3},
			target:   80 * time.Millisecond,
			desired:  Ptr(6),
			active:   true,
			warnings: []string{},
		},
		{
			name:     "A P95 exactly at target has no opinion",
			e:        LatencyEvidence{P95: 0.08, CurrentReplicas: 3},
			target:   80 * time.Millisecond,
			warnings: []string{},
		},
		{
			name:     "A P95 below target has no opinion",
			e:        LatencyEvidence{P95: 0.02, CurrentReplicas: 5},
			target:   80 * time.Millisecond,
			warnings: []string{},
		},
		{
			name:     "No requests in the window (NaN) has no opinion and keeps the warnings",
			e:        LatencyEvidence{P95: math.NaN(), CurrentReplicas: 2, Warnings: []string{"no series: the query matched nothing (a typo, or no traffic yet)"}},
			target:   80 * time.Millisecond,
			warnings: []string{"no series: the query matched nothing (a typo, or no traffic yet)"},
		},
		{
			name:     "A slow P95 at zero replicas counts as one replica",
			e:        LatencyEvidence{P95: 0.2, CurrentReplicas: 0},
			target:   100 * time.Millisecond,
			desired:  Ptr(2),
			active:   true,
			warnings: []string{"P95 above target with 0 current replicas: counted as 1"},
		},
		{
			name:     "A P95 in the +Inf bucket says the answer is a lower bound",
			e:        LatencyEvidence{P95: 1, AtLeast: true, CurrentReplicas: 2},
			target:   500 * time.Millisecond,
			desired:  Ptr(4),
			active:   true,
			warnings: []string{"P95 is in the +Inf bucket: at least 1 s, so 4 replicas is a lower bound"},
		},
		{
			name:     "A P95 of 1e308 s asks for the ceiling, not +Inf, and says why",
			e:        LatencyEvidence{P95: 1e308, CurrentReplicas: 2},
			target:   80 * time.Millisecond,
			desired:  Ptr(Ceiling),
			active:   true,
			warnings: []string{"P95 1e+308 s over target 80ms on 2 replicas asks for more than the ceiling: 10000"},
		},
		{
			name:     "A P95 of 5e15 s asks for the ceiling, not 1.25e17",
			e:        LatencyEvidence{P95: 5e15, CurrentReplicas: 2},
			target:   80 * time.Millisecond,
			desired:  Ptr(Ceiling),
			active:   true,
			warnings: []string{"P95 5e+15 s over target 80ms on 2 replicas asks for more than the ceiling: 10000"},
		},
		{
			name:     "An ask of exactly the ceiling is not capped",
			e:        LatencyEvidence{P95: 400, CurrentReplicas: 2},
			target:   80 * time.Millisecond,
			desired:  Ptr(Ceiling),
			active:   true,
			warnings: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := LatencyOpinion(tt.e, tt.target, "detail")
			if err != nil {
				t.Fatalf("error %v, want an opinion", err)
			}
			if (o.Desired == nil) != (tt.desired == nil) || (o.Desired != nil && math.Abs(*o.Desired-*tt.desired) > 1e-9) {
				t.Errorf("Desired = %v, want %v", latencyShow(o.Desired), latencyShow(tt.desired))
			}
			if o.Active != tt.active {
				t.Errorf("Active = %v, want %v", o.Active, tt.active)
			}
			if !slices.Equal(o.Warnings, tt.warnings) {
				t.Errorf("Warnings = %q, want %q", o.Warnings, tt.warnings)
			}
			if o.Detail != "detail" {
				t.Errorf("Detail = %v, want carried through", o.Detail)
			}
		})
	}
}

func TestLatencyEvidenceThatIsNotAReadingIsAnError(t *testing.T) {
	tests := []struct {
		name    string
		e       LatencyEvidence
		wantErr string
	}{
		{"An infinite P95 is not a latency", LatencyEvidence{P95: math.Inf(1), CurrentReplicas: 1},
			"P95 +Inf s is not a latency (want seconds ≥ 0, or NaN when nothing was served)"},
		{"A negative P95 is not a latency", LatencyEvidence{P95: -0.5, CurrentReplicas: 1},
			"P95 -0.5 s is not a latency (want seconds ≥ 0, or NaN when nothing was served)"},
		{"Unknown current replicas are not a count", LatencyEvidence{P95: 1, CurrentReplicas: math.NaN()},
			"current replicas NaN is not a replica count from 0 to 10000"},
		{"Current replicas beyond the ceiling are not a count", LatencyEvidence{P95: 1, CurrentReplicas: 1e9},
			"current replicas 1000000000 is not a replica count from 0 to 10000"},
		{"Negative current replicas are not a count", LatencyEvidence{P95: 1, CurrentReplicas: -1},
			"current replicas -1 is not a replica count from 0 to 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := LatencyOpinion(tt.e, 500*time.Millisecond, nil)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v (opinion %+v), want %q", err, o, tt.wantErr)
			}
		})
	}
}

func latencyShow(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
