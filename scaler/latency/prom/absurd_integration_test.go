package prom_test

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency/prom"
	"github.com/montage/montage-scaler/test/servers"
)

// A real Prometheus evaluates each query, so the numbers arrive exactly as
// its JSON writes them ("1e+308", "+Inf"). A finite P95, however absurd,
// is a reading that says "above target", and asks for at most the ceiling;
// one that is not finite or is negative, and a replica count that is not
// one, fail the read naming the query (the staleness rule then holds the
// last good reading).
func TestAbsurdNumbersFromARealPrometheusAreCappedOrRefusedWhereTheyEnter(t *testing.T) {
	promServer := servers.StartPrometheus(t, nil, time.Second)
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour})
	t.Cleanup(hub.Close)
	tests := []struct {
		name, query, replicas string
		p95                   float64
		desired               *float64
		warning               string
		wantErr               string
	}{
		{name: "A P95 of 1e308 s asks for the ceiling", query: "vector(1e308)", replicas: "vector(2)",
			p95: 1e308, desired: decide.Ptr(decide.Ceiling), warning: "P95 1e+308 s over target 80ms on 2 replicas asks for more than the ceiling: 10000"},
		{name: "A P95 of 5e15 s asks for the ceiling", query: "vector(5e15)", replicas: "vector(2)",
			p95: 5e15, desired: decide.Ptr(decide.Ceiling), warning: "P95 5e+15 s over target 80ms on 2 replicas asks for more than the ceiling: 10000"},
		{name: "A P95 of 0.2 s on 2 replicas asks for 5", query: "vector(0.2)", replicas: "vector(2)",
			p95: 0.2, desired: decide.Ptr(5)},
		{name: "A NaN P95 (nothing served) is no opinion", query: "vector(NaN)", replicas: "vector(2)", p95: math.NaN()},
		{name: "A P95 of +Inf fails the read naming the query", query: "vector(+Inf)", replicas: "vector(2)",
			wantErr: `latency: latencyQuery "vector(+Inf)": P95 +Inf s is not a latency (want seconds ≥ 0, or NaN when nothing was served)`},
		{name: "A P95 of -Inf fails the read naming the query", query: "vector(-Inf)", replicas: "vector(2)",
			wantErr: `latency: latencyQuery "vector(-Inf)": P95 -Inf s is not a latency (want seconds ≥ 0, or NaN when nothing was served)`},
		{name: "A negative P95 fails the read naming the query", query: "vector(-0.3)", replicas: "vector(2)",
			wantErr: `latency: latencyQuery "vector(-0.3)": P95 -0.3 s is not a latency (want seconds ≥ 0, or NaN when nothing was served)`},
		{name: "Current replicas of 1e12 fail the read naming replicasQuery", query: "vector(0.2)", replicas: "vector(1e12)",
			wantErr: `latency: replicasQuery "vector(1e12)": 1e+12 is not a replica count from 0 to 10000`},
		{name: "Current replicas of +Inf fail the read naming replicasQuery", query: "vector(0.2)", replicas: "vector(+Inf)",
			wantErr: `latency: replicasQuery "vector(+Inf)": +Inf is not a replica count from 0 to 10000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, map[string]string{"prometheusURL": promServer.URL, "latencyQuery": tt.query, "replicasQuery": tt.replicas, "latencyTimeout": "5s"}, false)
			w := hub.Watch("ns", "api", c)
			defer w.Close()
			s, err := w.First(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				if s.Err == nil || s.Err.Error() != tt.wantErr || !s.GoodAt.IsZero() {
					t.Fatalf("snapshot err %v goodAt %v, want %q and no reading", s.Err, s.GoodAt, tt.wantErr)
				}
				return
			}
			if s.Err != nil {
				t.Fatal(s.Err)
			}
			if got := s.Value.P95; got != tt.p95 && !(math.IsNaN(got) && math.IsNaN(tt.p95)) {
				t.Errorf("P95 = %g, want %g", got, tt.p95)
			}
			o := mustOpinion(t, s.Value)
			if (o.Desired == nil) != (tt.desired == nil) || o.Desired != nil && *o.Desired != *tt.desired {
				t.Errorf("opinion %v, want %v", o.Desired, tt.desired)
			}
			if tt.warning != "" && !slices.Contains(o.Warnings, tt.warning) {
				t.Errorf("warnings %q lack %q", o.Warnings, tt.warning)
			}
			if _, err := json.Marshal(s.Value); err != nil {
				t.Errorf("the reading does not write as JSON: %v", err)
			}
		})
	}
}
