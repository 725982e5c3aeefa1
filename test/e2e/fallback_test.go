//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// scenarioFallback (issue 7, 2c): 7 tasks give 2 replicas; the scaler killed
// mid-run gives KEDA's fallback replicas (3); the scaler back on the same
// address gives 2 again.
func scenarioFallback(t *testing.T, e *env) {
	s := e.scenario(t, "fallback")
	r := servers.StartRedis(t)
	port := freePort(t, "127.0.0.1")
	sc := s.startScaler(t, "scaler", port)
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
  fallback:
    failureThreshold: 3
    replicas: 3
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 0
  triggers:
    - type: external-push
      metadata:
        scalerAddress: 127.0.0.1:%d
        brokerURL: %s
        queues: celery
        tasksPerReplica: "5"
`, s.ns, port, r.URL(0)))
	tr := recordReplicas(t, e.c.client, s.ns, "montage")
	s.waitScaledObject(t, "montage")
	sendBlocks(t, r, "c", 7, "celery")
	tr.waitFor(t, 3*time.Minute, "reach 2 (ceil(7/5))", eq(2))

	killed := time.Now()
	sc.kill()
	tr.waitFor(t, 5*time.Minute, "reach the fallback's 3", eq(3))
	if got := values(tr.since(killed)); !equal(got, []int32{2, 3}) {
		t.Fatalf("with the scaler dead the replicas went %v, want [2 3] (KEDA's fallback); trajectory: %s", got, tr)
	}

	back := time.Now()
	s.startScaler(t, "scaler", port)
	tr.waitFor(t, 5*time.Minute, "return to 2 with the scaler back", eq(2))
	if got := values(tr.since(back)); !equal(got, []int32{3, 2}) {
		t.Fatalf("with the scaler back the replicas went %v, want [3 2]; trajectory: %s", got, tr)
	}
	t.Logf("trajectory: %s", tr)
}
