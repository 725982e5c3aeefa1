//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/addrfile"
	"github.com/montage/montage-scaler/test/servers"
)

// TestE2E starts one control plane with KEDA and runs every scenario against
// it in parallel, each in its own namespace with its own scaler and Redis.
func TestE2E(t *testing.T) {
	c := startCluster(t)
	e := &env{c: c, scalerBin: buildScaler(t)}
	t.Run("queue wakes the deployment from zero and the HPA follows", func(t *testing.T) { t.Parallel(); scenarioQueue(t, e) })
	t.Run("the ADR's ScaledObject obeys its scaling policies", func(t *testing.T) { t.Parallel(); scenarioADR(t, e) })
	t.Run("a failed source gives KEDA's fallback and a killed scaler holds the replicas", func(t *testing.T) { t.Parallel(); scenarioFallback(t, e) })
	t.Run("a calendar event pre-warms the deployment", func(t *testing.T) { t.Parallel(); scenarioCalendar(t, e) })
	t.Run("latency from Prometheus scales up", func(t *testing.T) { t.Parallel(); scenarioLatency(t, e) })
	t.Run("mTLS through a TriggerAuthentication", func(t *testing.T) { t.Parallel(); scenarioMTLS(t, e) })
	t.Run("two scaler replicas behind one DNS name survive kills and a rolling restart", func(t *testing.T) { t.Parallel(); scenarioTwoReplicas(t, e) })
	// The live loop (kube-scheduler, KWOK, metrics-server,
	// kube-state-metrics, a Celery worker per Ready pod) runs its own
	// scenarios side by side with these.
	t.Run("live loop", func(t *testing.T) { t.Parallel(); scenarioLiveLoop(t, e) })
}

// env is what the scenarios share.
type env struct {
	c         *cluster
	scalerBin string
}

func buildScaler(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "montage-scaler")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/montage/montage-scaler/cmd/montage-scaler").CombinedOutput()
	if err != nil {
		t.Fatalf("e2e: build montage-scaler: %v\n%s", err, out)
	}
	return bin
}

// scenario is one namespace with its own scaler processes and logs.
type scenario struct {
	e    *env
	ns   string
	dir  string
	logs *logBook
}

func (e *env) scenario(t *testing.T, ns string) *scenario {
	t.Helper()
	s := &scenario{e: e, ns: ns, dir: t.TempDir(), logs: &logBook{}}
	s.logs.printOnFailure(t)
	e.c.kubectl(t, "", "create", "namespace", ns)
	return s
}

// scalerProc is a running `montage-scaler serve` and the addresses it bound.
type scalerProc struct {
	*proc
	grpcAddr, httpAddr string
}

// port is the gRPC port, the one a ScaledObject's scalerAddress names.
func (sc *scalerProc) port() int {
	_, p, _ := net.SplitHostPort(sc.grpcAddr)
	n, _ := strconv.Atoi(p)
	return n
}

// startScaler runs `montage-scaler serve` on loopback ports it binds itself
// (127.0.0.1:0), named in its --addr-file once it serves.
func (s *scenario) startScaler(t *testing.T, name string, extra ...string) *scalerProc {
	t.Helper()
	sc, err := s.launchScaler(t, name, "127.0.0.1:0", extra...)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return sc
}

// launchScaler runs `montage-scaler serve` with its gRPC server on grpcAddr
// (port 0, or the port a ScaledObject already names: a restart, two
// replicas on one port) and its HTTP server on 127.0.0.1:0, and waits until
// it serves. An error wrapping servers.ErrPortTaken says its own output
// reported the port taken.
func (s *scenario) launchScaler(t *testing.T, name, grpcAddr string, extra ...string) (*scalerProc, error) {
	t.Helper()
	addrPath := filepath.Join(s.dir, fmt.Sprintf("%s-%d.addrs.json", name, time.Now().UnixNano()))
	args := append([]string{s.e.scalerBin, "serve", "--grpc-addr", grpcAddr, "--http-addr", "127.0.0.1:0",
		"--addr-file", addrPath, "--log-format", "text", "--log-level", "debug"}, extra...)
	p := startProc(t, s.logs, s.dir, name, nil, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := addrfile.Wait(ctx, addrPath, p.done)
	if err != nil {
		out := p.output()
		p.stop()
		if strings.Contains(out, "address already in use") {
			return nil, fmt.Errorf("%s on %s: %w", name, grpcAddr, servers.ErrPortTaken)
		}
		return nil, fmt.Errorf("%s not serving: %v\n%s", name, err, lastLines(out, 40))
	}
	return &scalerProc{proc: p, grpcAddr: a.GRPC, httpAddr: a.HTTP}, nil
}

// waitScaledObject waits until KEDA has made the ScaledObject's HPA and
// reports the ScaledObject Ready.
func (s *scenario) waitScaledObject(t *testing.T, name string) {
	t.Helper()
	s.e.c.kubectlUntil(t, 3*time.Minute, "-n", s.ns, "wait", "--for", "condition=Ready", "--timeout", "10s", "scaledobject/"+name)
	s.e.c.kubectlUntil(t, 3*time.Minute, "-n", s.ns, "wait", "--for", "create", "--timeout", "10s", "hpa/keda-hpa-"+name)
}

// deployment is a Deployment named montage with the given replicas; its
// pods stay Pending (there is no kubelet), its spec.replicas is what the
// scenarios watch.
func deployment(ns string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: montage
  namespace: %s
spec:
  replicas: %d
  selector:
    matchLabels: {app: montage}
  template:
    metadata:
      labels: {app: montage}
    spec:
      containers:
        - name: montage
          image: montage
`, ns, replicas)
}

// sendBlocks queues n Celery tasks that nobody consumes.
func sendBlocks(t *testing.T, r *servers.Redis, prefix string, n int, queue string) {
	t.Helper()
	tasks := make([]servers.Task, n)
	for i := range tasks {
		tasks[i] = servers.Block(fmt.Sprintf("%s-%d", prefix, i), queue)
	}
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: r.URL(0)}, tasks...)
}

// drain empties the broker's database: every queue is empty.
func drain(t *testing.T, r *servers.Redis) {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("e2e: drain: %v", err)
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// scenarioQueue (issue 7, 2a): minReplicaCount 0 and an empty queue stay at
// 0; 17 tasks give 0 → 1 (KEDA's push) → 4 (the HPA: ceil(17/5)); an empty
// queue gives 0 after the cooldown.
func scenarioQueue(t *testing.T, e *env) {
	s := e.scenario(t, "queue")
	r := servers.StartRedis(t)
	port := s.startScaler(t, "scaler").port()
	const cooldown, polling = 20 * time.Second, 5 * time.Second
	e.c.apply(t, deployment(s.ns, 0)+fmt.Sprintf(`---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: montage
  namespace: %s
spec:
  scaleTargetRef: {name: montage}
  pollingInterval: %d
  cooldownPeriod: %d
  minReplicaCount: 0
  maxReplicaCount: 8
  triggers:
    - type: external-push
      metadata:
        scalerAddress: 127.0.0.1:%d
        brokerURL: %s
        queues: celery
        tasksPerReplica: "5"
`, s.ns, int(polling.Seconds()), int(cooldown.Seconds()), port, r.URL(0)))
	tr := recordReplicas(t, e.c.client, s.ns, "montage")
	s.waitScaledObject(t, "montage")
	tr.holds(t, 20*time.Second, 0)

	sent := time.Now()
	sendBlocks(t, r, "a", 17, "celery")
	tr.waitFor(t, 3*time.Minute, "reach 4", eq(4))
	if got := values(tr.since(sent)); !equal(got, []int32{0, 1, 4}) {
		t.Fatalf("after 17 tasks the replicas went %v, want [0 1 4] (KEDA's push to 1, then the HPA to ceil(17/5)); trajectory: %s", got, tr)
	}

	drained := time.Now()
	drain(t, r)
	zeroAt := tr.waitFor(t, 3*time.Minute, "return to 0", eq(0))
	down := values(tr.since(drained))
	for i := 1; i < len(down); i++ {
		if down[i] > down[i-1] {
			t.Fatalf("after the drain the replicas rose: %v; trajectory: %s", down, tr)
		}
	}
	// KEDA scales to zero cooldownPeriod after it last saw the trigger
	// active, which is at most one polling interval before the drain.
	if got, min := zeroAt.Sub(drained), cooldown-polling-2*time.Second; got < min {
		t.Fatalf("replicas reached 0 %s after the drain, before the %s cooldown allows (at least %s); trajectory: %s", got, cooldown, min, tr)
	}
	t.Logf("trajectory: %s", tr)
}
