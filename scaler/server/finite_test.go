package server_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/spec"
)

// noMax is a ScaledObject without maxReplicas: allowed, and the default.
func noMax(name string) *pb.ScaledObjectRef {
	r := ref(name)
	delete(r.ScalerMetadata, "maxReplicas")
	return r
}

// KEDA 2.21 reads a metricValueFloat of +Inf as 0 and overflows the
// milli-value of 1.25e17 to a negative number: both scale a Deployment
// down while its evidence says far up. What leaves GetMetrics is a number
// from 0 to the ceiling whose two fields agree, or Unavailable naming the
// component.
func TestGetMetricsIsAFiniteNumberWhoseTwoFieldsAgreeOrUnavailable(t *testing.T) {
	tests := []struct {
		name     string
		ref      *pb.ScaledObjectRef
		ask      float64
		want     float64
		wantCode codes.Code
		wantErr  string
	}{
		{name: "an ask of 1e308 without maxReplicas is the ceiling", ref: noMax("huge"), ask: 1e308, want: decide.Ceiling},
		{name: "an ask of 1.25e17 without maxReplicas is the ceiling", ref: noMax("overflow"), ask: 1.25e17, want: decide.Ceiling},
		{name: "an ask of 2.5e301 with maxReplicas 8 is 8", ref: ref("max"), ask: 2.5e301, want: 8},
		{name: "an ask just above the ceiling is the ceiling", ref: noMax("above"), ask: decide.Ceiling + 0.5, want: decide.Ceiling},
		{name: "an ask of 2.4 is 2.4 with 3 in the integer field", ref: noMax("small"), ask: 2.4, want: 2.4},
		{name: "an infinite ask is Unavailable naming the component", ref: noMax("inf"), ask: math.Inf(1),
			wantCode: codes.Unavailable, wantErr: "no decision: celery: asks for +Inf replicas: not a finite number ≥ 0"},
		{name: "a NaN ask is Unavailable naming the component", ref: noMax("nan"), ask: math.NaN(),
			wantCode: codes.Unavailable, wantErr: "no decision: celery: asks for NaN replicas: not a finite number ≥ 0"},
		{name: "a negative ask is Unavailable, never minReplicas", ref: noMax("negative"), ask: -4,
			wantCode: codes.Unavailable, wantErr: "no decision: celery: asks for -4 replicas: not a finite number ≥ 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.source(t, tc.ref, "celery").Set(opinion(tc.ask, true), t0, nil)
			m, err := f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: tc.ref, MetricName: spec.DefaultMetricName})
			if tc.wantCode != codes.OK {
				if status.Code(err) != tc.wantCode || status.Convert(err).Message() != tc.wantErr {
					t.Fatalf("GetMetrics = %v, want %s %q", err, tc.wantCode, tc.wantErr)
				}
				if n, err := testutil.GatherAndCount(f.prom, "montage_scaler_decision_replicas"); err != nil || n != 0 {
					t.Errorf("montage_scaler_decision_replicas: %d series (%v), want none while unavailable", n, err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				v := m.GetMetricValues()[0]
				if v.GetMetricValueFloat() != tc.want || v.GetMetricValue() != int64(math.Ceil(tc.want)) {
					t.Fatalf("metricValueFloat %g metricValue %d, want %g and %d", v.GetMetricValueFloat(), v.GetMetricValue(), tc.want, int64(math.Ceil(tc.want)))
				}
				if got := gaugeValue(t, f, "montage_scaler_decision_replicas"); got != tc.want {
					t.Errorf("montage_scaler_decision_replicas = %g, want %g", got, tc.want)
				}
			}
			e, err := f.insp.Explain(t.Context(), &scalerv1.ExplainRequest{Namespace: tc.ref.Namespace, Name: tc.ref.Name, ScalerMetadata: tc.ref.ScalerMetadata})
			if err != nil {
				t.Fatalf("Explain: %v", err)
			}
			if _, err := json.Marshal(server.FromProto(e)); err != nil {
				t.Fatalf("the explanation does not write as JSON: %v", err)
			}
		})
	}
}

// gaugeValue is the value of a metric family's one series.
func gaugeValue(t *testing.T, f *fixture, name string) float64 {
	t.Helper()
	mfs, err := f.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series of %s", name)
	return 0
}

// A component that let a non-finite number into its detail costs the
// detail, not the explanation: check and explain still print the decision.
func TestExplainLeavesOutADetailJSONCannotWriteAndSaysWhy(t *testing.T) {
	d := decide.Decision{Desired: decide.Ptr(2), Components: []decide.ComponentResult{{
		Name: "latency", Desired: decide.Ptr(2), Warnings: []string{}, Detail: map[string]float64{"p95Seconds": math.Inf(1)},
	}}, Warnings: []string{}}
	got := server.FromProto(server.ToProto(d))
	if _, err := json.Marshal(got); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	c := got.Components[0]
	if c.Detail != nil || len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "detail not shown: json: unsupported value: +Inf") {
		t.Fatalf("component = %+v, want no detail and a warning saying why", c)
	}
}
