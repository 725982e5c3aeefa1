package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/montage/montage-scaler/test/servers"
)

// printedDecision is what check and explain print, as far as this test
// reads it.
type printedDecision struct {
	Desired    *float64 `json:"desiredReplicas"`
	Components []struct {
		Name    string   `json:"name"`
		Desired *float64 `json:"desiredReplicas"`
		Error   string   `json:"error"`
	} `json:"components"`
}

// A real Prometheus answers the P95 a latency-only trigger without
// maxReplicas (allowed: it is the default) reads. Before the ceiling, 1e308
// gave metricValueFloat +Inf (KEDA 2.21 reads it as 0: a P95 far above
// target scaled the Deployment down), metricValue -9223372036854775808,
// "+Inf" on /metrics, and check exited 1 with "print: json: unsupported
// value: +Inf". A finite P95, however large, says "far above target": the
// decision is the ceiling. A non-finite one is not a reading: Unavailable
// naming latency, and KEDA's fallback holds the replicas.
func TestAnAbsurdP95IsTheCeilingOrUnavailableEndToEnd(t *testing.T) {
	prom := servers.StartPrometheus(t, nil, time.Second)
	p := startServe(t)
	dir := t.TempDir()
	tests := []struct {
		name, p95 string
		want      float64 // the decision; NaN: none
		wantErr   string  // GetMetrics' Unavailable message and the component's error
	}{
		{name: "a P95 of 1e308 s is the ceiling", p95: "1e308", want: 10000},
		{name: "a P95 of 1e300 s is the ceiling, not 2.5e301", p95: "1e300", want: 10000},
		{name: "a P95 of 5e15 s is the ceiling, not 1.25e17", p95: "5e15", want: 10000},
		{name: "a P95 of +Inf is Unavailable naming latency", p95: "+Inf", want: math.NaN(),
			wantErr: `latency: latencyQuery "vector(+Inf)": P95 +Inf s is not a latency (want seconds ≥ 0, or NaN when nothing was served)`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"prometheusURL": prom.URL, "latencyQuery": "vector(" + tc.p95 + ")", "replicasQuery": "vector(4)"}
			r := &pb.ScaledObjectRef{Namespace: "prod", Name: fmt.Sprintf("api%d", i), ScalerMetadata: md}
			eventually(t, "GetMetrics answers from the first read", func() error {
				resp, err := p.ks.GetMetrics(ctxT(t), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
				if tc.wantErr != "" {
					if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), tc.wantErr) {
						return fmt.Errorf("GetMetrics = %v, %v; want Unavailable naming %q", resp, err, tc.wantErr)
					}
					return nil
				}
				if err != nil {
					return err
				}
				v := resp.GetMetricValues()[0]
				if v.GetMetricValueFloat() != tc.want || v.GetMetricValue() != int64(tc.want) {
					t.Fatalf("metricValueFloat %g metricValue %d, want both %g", v.GetMetricValueFloat(), v.GetMetricValue(), tc.want)
				}
				return nil
			})
			if _, body := p.get(t, "/metrics"); strings.Contains(body, "Inf\n") || strings.Contains(body, "NaN\n") {
				t.Errorf("/metrics shows a non-finite value:\n%s", grepLines(body, "Inf", "NaN"))
			}

			file := filepath.Join(dir, fmt.Sprintf("md%d.yaml", i))
			var y strings.Builder
			for k, v := range md {
				fmt.Fprintf(&y, "%s: %q\n", k, v)
			}
			writeFile(t, file, y.String())
			for _, cmd := range [][]string{{"check", "--metadata", file}, {"explain", "--addr", p.grpcAddr, "--metadata", file, "--name", r.Name, "--namespace", r.Namespace}} {
				code, out, stderr := runWith(t, nil, cmd...)
				var d printedDecision
				if err := json.Unmarshal([]byte(out), &d); err != nil {
					t.Fatalf("%s exit %d printed no JSON (%v):\n%s\nstderr: %s", cmd[0], code, err, out, stderr)
				}
				if tc.wantErr != "" {
					if code != 1 || d.Desired != nil || len(d.Components) != 1 || d.Components[0].Error != tc.wantErr {
						t.Fatalf("%s exit %d, want 1 with the latency error %q:\n%s", cmd[0], code, tc.wantErr, out)
					}
					continue
				}
				if code != 0 || d.Desired == nil || *d.Desired != tc.want || d.Components[0].Desired == nil || *d.Components[0].Desired != tc.want {
					t.Fatalf("%s exit %d, want 0 and %g:\n%s\nstderr: %s", cmd[0], code, tc.want, out, stderr)
				}
			}
		})
	}
}

// grepLines returns the lines of s that contain any of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// --current-replicas went through int32: 4294967299 read as 3.
func TestCheckRefusesCurrentReplicasThatAreNotAReplicaCount(t *testing.T) {
	file := filepath.Join(t.TempDir(), "md.yaml")
	writeFile(t, file, "prometheusURL: http://127.0.0.1:1\nlatencyQuery: vector(1)\n")
	for _, n := range []string{"4294967299", "10001"} {
		code, _, stderr := runWith(t, nil, "check", "--metadata", file, "--current-replicas", n)
		want := "montage-scaler check: --current-replicas " + n + " is not a replica count from 0 to 10000\n"
		if code != 2 || stderr != want {
			t.Errorf("--current-replicas %s: exit %d, stderr %q; want 2, %q", n, code, stderr, want)
		}
	}
}
