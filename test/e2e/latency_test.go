//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/montage/montage-scaler/test/servers"
)

// scenarioLatency (issue 7, 2e): a real Prometheus scrapes a test process
// whose request latency the test drives. While it is fast (20 ms, under the
// 80 ms target) the replicas stay at the minimum 1; once it turns slow
// (400 ms) the latency component asks for current × p95 / target and the
// replicas rise to the maximum 8. Current replicas come from replicasQuery:
// Prometheus also scrapes a stand-in for kube-state-metrics that the test
// serves from the Deployment itself (the scaler runs outside the cluster).
func scenarioLatency(t *testing.T, e *env) {
	s := e.scenario(t, "latency")
	hist := servers.StartHistProc(t, servers.BuildHistProc(t), "montage_http_request_duration_seconds",
		[]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})
	ksm := kubeStateMetrics(t, e.c, s.ns, "montage")
	prom := servers.StartPrometheus(t, []string{hist.Addr, ksm}, time.Second)

	// The load: 20 requests every 250 ms at the current latency.
	var latency atomic.Value
	latency.Store(0.02)
	ctx, cancel := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	t.Cleanup(func() { cancel(); <-loadDone })
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				// Errors are ignored: the load is best effort, the replicas
				// are what the test asserts.
				resp, err := http.PostForm("http://"+hist.Addr+"/observe", url.Values{
					"v": {strconv.FormatFloat(latency.Load().(float64), 'g', -1, 64)}, "n": {"20"}})
				if err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	p95 := `histogram_quantile(0.95, sum by (le) (rate(montage_http_request_duration_seconds_bucket[10s])))`
	prom.WaitFor(t, p95, 2*time.Minute, func(v float64) bool { return v > 0 && v < 0.08 })

	port := s.startScaler(t, "scaler", "--latency-interval", "2s").port()
	e.c.apply(t, deployment(s.ns, 1)+fmt.Sprintf(`---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: montage
  namespace: %s
spec:
  scaleTargetRef: {name: montage}
  pollingInterval: 5
  minReplicaCount: 1
  maxReplicaCount: 8
  triggers:
    - type: external-push
      metadata:
        scalerAddress: 127.0.0.1:%d
        prometheusURL: %s
        latencyQuery: %s
        latencyTarget: 80ms
        replicasQuery: kube_deployment_spec_replicas{namespace="%s",deployment="montage"}
        minReplicas: "1"
        maxReplicas: "8"
`, s.ns, port, prom.URL, yamlQuote(p95), s.ns))
	tr := recordReplicas(t, e.c.client, s.ns, "montage")
	s.waitScaledObject(t, "montage")
	tr.holds(t, 30*time.Second, 1)

	slow := time.Now()
	latency.Store(0.4)
	tr.waitFor(t, 4*time.Minute, "reach 8 with a slow API", eq(8))
	up := values(tr.since(slow))
	if up[0] != 1 || len(up) < 2 {
		t.Fatalf("with a slow API the replicas went %v, want 1 then up to 8; trajectory: %s", up, tr)
	}
	for i := 1; i < len(up); i++ {
		if up[i] <= up[i-1] {
			t.Fatalf("with a slow API the replicas did not only rise: %v; trajectory: %s", up, tr)
		}
	}
	t.Logf("trajectory: %s", tr)
}

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// kubeStateMetrics serves, for Prometheus to scrape, the one series of
// kube-state-metrics that replicasQuery needs,
// kube_deployment_spec_replicas{namespace, deployment}, read from the
// Deployment at each scrape; it returns host:port. The scaler runs outside
// the cluster, so its latency component takes the current replicas from
// replicasQuery, as the README says.
func kubeStateMetrics(t *testing.T, c *cluster, ns, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := c.client.AppsV1().Deployments(ns).Get(r.Context(), name, metav1.GetOptions{})
		if err != nil {
			http.Error(w, fmt.Sprint("no deployment: ", err), http.StatusServiceUnavailable)
			return
		}
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		fmt.Fprintf(w, "# TYPE kube_deployment_spec_replicas gauge\nkube_deployment_spec_replicas{namespace=%q,deployment=%q} %d\n", ns, name, replicas)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
