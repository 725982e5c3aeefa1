//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/montage/montage-scaler/test/servers"
)

// repoDir is the repository root, seen from this package.
const repoDir = "../.."

// scenarioADR (issue 7, 2b): the ADR's ScaledObject from deploy/ (1–8,
// scale-up at most +100 % or +2 pods a minute after a 60 s window,
// scale-down at most 25 % a minute after a 300 s window), with KEDA's and
// the HPA's real numbers. A burst of 60 tasks takes the Deployment 1 → 3 →
// 6 → 8; once the queue is drained nothing moves for the 300 s window, then
// every minute takes at most a quarter off. The test stops at 4 replicas
// (8 → 6 → 4) to bound its length.
//
// Changes to the kustomize output, each forced by the test's cluster: the
// cpu and memory triggers go (there is no kubelet, so no pod reports usage,
// and an HPA missing one of its metrics refuses to scale down); the scaler's
// and Prometheus' addresses are the test's own; and since the scaler runs
// outside the cluster, the latency component needs replicasQuery (served by
// a kube-state-metrics stand-in). The recording rule the ADR's latencyQuery
// names does not exist on the test's Prometheus: an empty result is no
// opinion, so the queue alone decides, as it should here.
func scenarioADR(t *testing.T, e *env) {
	s := e.scenario(t, "adr")
	r := servers.StartRedis(t)
	prom := servers.StartPrometheus(t, []string{kubeStateMetrics(t, e.c, s.ns, "montage")}, time.Second)
	port := s.startScaler(t, "scaler").port()

	so := kustomizeOne(t, e.c, filepath.Join(repoDir, "deploy", "autoscale"), "ScaledObject")
	so["metadata"].(map[string]any)["namespace"] = s.ns
	spec := so["spec"].(map[string]any)
	var kept []any
	for _, tr := range spec["triggers"].([]any) {
		trig := tr.(map[string]any)
		if trig["type"] != "external-push" {
			continue
		}
		md := trig["metadata"].(map[string]any)
		md["scalerAddress"] = fmt.Sprintf("127.0.0.1:%d", port)
		md["prometheusURL"] = prom.URL
		md["replicasQuery"] = fmt.Sprintf(`kube_deployment_spec_replicas{namespace=%q,deployment="montage"}`, s.ns)
		kept = append(kept, trig)
	}
	if len(kept) != 1 {
		t.Fatalf("deploy/autoscale's ScaledObject has %d external-push triggers, want 1", len(kept))
	}
	spec["triggers"] = kept
	dep := kustomizeOne(t, e.c, filepath.Join(repoDir, "deploy", "app"), "Deployment")
	dep["metadata"].(map[string]any)["namespace"] = s.ns
	name := so["metadata"].(map[string]any)["name"].(string)
	e.c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: montage-broker
  namespace: %s
stringData:
  url: %s
`, s.ns, r.URL(0)))
	e.c.apply(t, toJSON(t, dep))
	e.c.apply(t, toJSON(t, so))
	tr := recordReplicas(t, e.c.client, s.ns, dep["metadata"].(map[string]any)["name"].(string))
	s.waitScaledObject(t, name)
	tr.holds(t, 20*time.Second, 1)

	burst := time.Now()
	sendBlocks(t, r, "b", 60, "celery")
	tr.waitFor(t, 8*time.Minute, "reach 8", eq(8))
	up := tr.since(burst)
	if got := values(up); !equal(got, []int32{1, 3, 6, 8}) {
		t.Fatalf("after 60 tasks the replicas went %v, want [1 3 6 8] (max(+100 %%, +2 pods) a minute); trajectory: %s", got, tr)
	}
	// The 60 s scale-up window holds the first step back for about a minute.
	if first := up[1].at.Sub(burst); first < 45*time.Second {
		t.Fatalf("the first scale-up came %s after the burst, inside the 60 s stabilization window; trajectory: %s", first, tr)
	}
	for _, p := range up[1:] {
		// The HPA measures each policy against the replicas a period
		// (60 s) ago; reading them 55 s back is never stricter.
		ref := at(up, p.at.Add(-55*time.Second))
		if limit := max(2*ref, ref+2); p.replicas > limit {
			t.Fatalf("scale-up to %d at %s exceeds max(+100 %%, +2) of %d; trajectory: %s", p.replicas, p.at.UTC().Format(time.TimeOnly), ref, tr)
		}
	}

	drained := time.Now()
	drain(t, r)
	tr.waitFor(t, 12*time.Minute, "come down to 4", func(v int32) bool { return v <= 4 })
	down := tr.since(drained)
	if got := values(down); !equal(got, []int32{8, 6, 4}) {
		t.Fatalf("after the drain the replicas went %v, want [8 6 4] (25 %% a minute); trajectory: %s", got, tr)
	}
	if first := down[1].at.Sub(drained); first < 270*time.Second {
		t.Fatalf("the first scale-down came %s after the drain, inside the 300 s stabilization window; trajectory: %s", first, tr)
	}
	for _, p := range down[1:] {
		ref := at(down, p.at.Add(-55*time.Second))
		if limit := int32(math.Floor(float64(ref) * 0.75)); p.replicas < limit {
			t.Fatalf("scale-down to %d at %s takes more than 25 %% off %d; trajectory: %s", p.replicas, p.at.UTC().Format(time.TimeOnly), ref, tr)
		}
	}
	t.Logf("trajectory: %s", tr)
}

// kustomizeOne builds dir with kubectl's kustomize and returns its one
// object of kind.
func kustomizeOne(t *testing.T, c *cluster, dir, kind string) map[string]any {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("e2e: %s: %v", dir, err)
	}
	out := c.kubectl(t, "", "kustomize", dir)
	var found []map[string]any
	for _, doc := range splitYAML(out) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("e2e: kustomize %s: %v", dir, err)
		}
		if obj["kind"] == kind {
			found = append(found, obj)
		}
	}
	if len(found) != 1 {
		t.Fatalf("e2e: kustomize %s: %d objects of kind %s, want 1", dir, len(found), kind)
	}
	return found[0]
}

func toJSON(t *testing.T, obj map[string]any) string {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return string(b)
}
