//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// scenarioFallback (issue 7, 2c). 7 tasks give 2 replicas. Then:
//
//   - The scaler's source fails (its Redis killed): past --stale-after the
//     scaler answers Unavailable, and after failureThreshold failures KEDA
//     asks for the fallback's 3 replicas. Redis back (empty: it keeps no
//     data) and the 7 tasks sent again: 2 replicas again.
//   - The scaler killed: KEDA 2.21 cannot apply its fallback then, because
//     it asks the external scaler for its metric spec (GetMetricSpec, an RPC)
//     before every metric read, and with no spec there is no metric to fall
//     back for. The HPA keeps its last decision: the replicas hold at 2,
//     never 0. The scaler back on the same address: 5 more tasks (12) give
//     3 replicas, so KEDA follows the scaler again.
func scenarioFallback(t *testing.T, e *env) {
	s := e.scenario(t, "fallback")
	r := servers.StartRedis(t)
	scalerArgs := []string{"--stale-after", "10s"}
	sc := s.startScaler(t, "scaler", scalerArgs...)
	port := sc.port()
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

	// The source fails.
	failed := time.Now()
	r.Stop()
	tr.waitFor(t, 5*time.Minute, "reach the fallback's 3 with Redis down", eq(3))
	if got := values(tr.since(failed)); !equal(got, []int32{2, 3}) {
		t.Fatalf("with Redis down the replicas went %v, want [2 3] (KEDA's fallback); trajectory: %s", got, tr)
	}
	back := time.Now()
	r.Restart(t)
	sendBlocks(t, r, "c2", 7, "celery")
	tr.waitFor(t, 5*time.Minute, "return to 2 with Redis back", eq(2))
	// Redis comes back empty (it keeps nothing on disk): a poll that lands
	// between its restart and the new tasks rightly reads an empty queue, and
	// the HPA (no scale-down window here) may take 1 on the way to 2.
	if got := values(tr.since(back)); !equal(got, []int32{3, 2}) && !equal(got, []int32{3, 1, 2}) {
		t.Fatalf("with Redis back the replicas went %v, want [3 2] (or [3 1 2], an empty queue read first); trajectory: %s", got, tr)
	}

	// The scaler dies.
	sc.kill()
	tr.holds(t, 60*time.Second, 2)
	restarted := time.Now()
	// On the same port: the ScaledObject names it. The port was the
	// scaler's until it died; if another process took it meanwhile, the
	// scaler's own output says so and the test stops here.
	if _, err := s.launchScaler(t, "scaler", sc.grpcAddr, scalerArgs...); err != nil {
		t.Fatalf("e2e: the scaler again on %s: %v", sc.grpcAddr, err)
	}
	sendBlocks(t, r, "c3", 5, "celery")
	tr.waitFor(t, 5*time.Minute, "reach 3 (ceil(12/5)) with the scaler back", eq(3))
	if got := values(tr.since(restarted)); !equal(got, []int32{2, 3}) {
		t.Fatalf("with the scaler back the replicas went %v, want [2 3]; trajectory: %s", got, tr)
	}
	t.Logf("trajectory: %s", tr)
}
