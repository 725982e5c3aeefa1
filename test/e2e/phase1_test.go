//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/montage/montage-scaler/test/servers"
)

// phase1NS is the CPU scenario's namespace.
const phase1NS = "phase1"

// scenarioPhase1 (issue 23, 2): resource metrics from KWOK through
// metrics-server, under the real HPA controller.
//
//  1. ADR-0002's phase 1 (docs/adr-0002.md; deploy/overlays/phase1-hpa: a plain CPU HPA, 1–4
//     at 65 %; its default 300 s scale-down window compressed to 75 s): 20
//     renders of 45 s at 150m each keep busy worker slots (5 on a pod:
//     770m, 154 % of 500m), the HPA scales on CPU alone to its maximum 4,
//     and back to 1 once the renders are done.
//  2. The ADR ScaledObject in its place (time compressed 4 times), its cpu
//     and memory triggers beside the external one: 5 renders of 45 s at
//     200m each on one pod. The scaler asks for 1 replica (5 tasks / 5),
//     the CPU (204 %) for 4: the HPA takes the max and scales up; every pod
//     reports cpu and memory, so it comes back down to 1 afterwards.
func scenarioPhase1(t *testing.T, e *env, _ *live) {
	s := e.scenario(t, phase1NS)
	r := servers.StartRedis(t)
	b := startBridge(t, s, r.URL(0))
	e.c.apply(t, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: montage-broker, namespace: %s}\nstringData: {url: %q}\n", s.ns, r.URL(0)))
	dep := kustomizeOne(t, e.c, filepath.Join(liveOverlays, "phase1-hpa"), "Deployment")
	hpa := kustomizeOne(t, e.c, filepath.Join(liveOverlays, "phase1-hpa"), "HorizontalPodAutoscaler")
	for _, o := range []map[string]any{dep, hpa} {
		o["metadata"].(map[string]any)["namespace"] = s.ns
	}
	e.c.apply(t, toJSON(t, dep))
	tr := recordReplicas(t, e.c.client, s.ns, "montage")
	b.waitUntil(t, 3*time.Minute, "the first pod serves", func(b *bridge) bool { return b.serving() == 1 })
	e.c.apply(t, toJSON(t, hpa))
	phase1 := recordHPA(t, e.c, s.ns, "montage")
	phase1.waitUntil(t, 2*time.Minute, "the HPA reads the pod's CPU from metrics-server", func(h hpaSample) bool { return h.cpu >= 0 })

	// 1. Phase 1: CPU alone.
	from := time.Now()
	sendRenders(t, r, "cpu", 20, 45*time.Second, 150)
	tr.waitFor(t, 4*time.Minute, "reach the HPA's maximum 4 on CPU", eq(4))
	b.waitUntil(t, 4*time.Minute, "the 20 renders end", func(b *bridge) bool { return b.ended() == 20 })
	tr.waitFor(t, 4*time.Minute, "return to 1 with the renders done", eq(1))
	b.waitUntil(t, 3*time.Minute, "the removed pods are gone", func(b *bridge) bool { return b.existing() == 1 })
	b.check(t)
	_, renders := b.snapshot()
	renderFates(t, renders, 20)
	t.Logf("phase 1 (CPU HPA 1–4 at 65 %%), 20 renders of 45 s at 150m: replicas %v\nthe HPA at each change: %s\ntrajectory: %s",
		values(tr.since(from)), phase1.changes(from), tr)
	for _, h := range phase1.samples(from) {
		if h.desired > h.replicas && h.cpu <= 65 {
			t.Fatalf("the phase-1 HPA asked for %d replicas (from %d) with the CPU at %d %%, at or under its 65 %% target: %s", h.desired, h.replicas, h.cpu, phase1.changes(from))
		}
	}

	// 2. The ADR ScaledObject, its cpu and memory triggers beside the
	// external one.
	e.c.kubectl(t, "", "-n", s.ns, "delete", "hpa", "montage")
	sc := s.startScaler(t, "scaler")
	so := kustomizeOne(t, e.c, filepath.Join(liveOverlays, "autoscale"), "ScaledObject")
	so["metadata"].(map[string]any)["namespace"] = s.ns
	md := externalTrigger(t, so)
	md["scalerAddress"] = fmt.Sprintf("127.0.0.1:%d", sc.port())
	// The latency component is not what this scenario is about (and has
	// no Prometheus here).
	for _, k := range []string{"prometheusURL", "latencyQuery", "latencyTarget"} {
		delete(md, k)
	}
	e.c.apply(t, toJSON(t, so))
	s.waitScaledObject(t, "montage")
	adr := recordHPA(t, e.c, s.ns, "keda-hpa-montage")
	adr.waitUntil(t, 2*time.Minute, "KEDA's HPA reads all three metrics", func(h hpaSample) bool {
		return h.cpu >= 0 && h.memory >= 0 && h.external >= 0
	})
	from = time.Now()
	sendRenders(t, r, "adr", 5, 45*time.Second, 200)
	up := tr.waitFor(t, 3*time.Minute, "rise on CPU beside the queue's 1", func(v int32) bool { return v >= 3 })
	b.waitUntil(t, 3*time.Minute, "the 5 renders end", func(b *bridge) bool { return b.ended() == 25 })
	tr.waitFor(t, 4*time.Minute, "return to 1 with every pod's cpu and memory", eq(1))
	b.waitUntil(t, 3*time.Minute, "the removed pods are gone", func(b *bridge) bool { return b.existing() == 1 })
	b.check(t)
	_, renders = b.snapshot()
	renderFates(t, renders, 25)
	t.Logf("the ADR ScaledObject (external + cpu 65 %% + memory 70 %%), 5 renders of 45 s at 200m on one pod: replicas %v\nKEDA's HPA at each change: %s\ntrajectory: %s",
		values(tr.since(from)), adr.changes(from), tr)
	// The rise came from the CPU: when the HPA first asked for 3 or more,
	// the scaler's metric asked for at most 1.
	var rise *hpaSample
	for _, h := range adr.samples(from) {
		if h.desired >= 3 {
			rise = &h
			break
		}
	}
	switch {
	case rise == nil:
		t.Fatalf("the replicas reached 3 at %s but no HPA sample asked for 3: %s", up.UTC().Format(time.TimeOnly), adr.changes(from))
	case rise.externalAsk() > 1 || rise.cpu <= 65 || rise.memory < 0:
		t.Fatalf("when KEDA's HPA first asked for %d replicas, the scaler asked for %d (%s), cpu %d %%, memory %d %%: want the CPU above 65 %% to make the difference beside the queue's 1",
			rise.desired, rise.externalAsk(), rise.externalRaw, rise.cpu, rise.memory)
	}
}

// sendRenders queues n renders of d at cpuMillis each on queue video.
func sendRenders(t *testing.T, r *servers.Redis, prefix string, n int, d time.Duration, cpuMillis int) {
	t.Helper()
	tasks := make([]servers.Task, n)
	for i := range tasks {
		tasks[i] = servers.Render(fmt.Sprintf("%s-%02d", prefix, i), "video", d, cpuMillis)
	}
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: r.URL(0)}, tasks...)
}

// hpaSample is one reading of an HPA's status: current and desired
// replicas and each metric's current value (-1: not reported).
type hpaSample struct {
	at                time.Time
	replicas, desired int32
	cpu, memory       int32   // average utilization, % of requests
	external          float64 // the external metric's current average value
	externalRaw       string
}

// externalAsk is what the external metric asks for: its average value times
// the current replicas (target 1 per replica), rounded up.
func (h hpaSample) externalAsk() int {
	if h.external < 0 {
		return -1
	}
	return int(math.Ceil(h.external*float64(h.replicas) - 1e-9))
}

func (h hpaSample) String() string {
	var ms []string
	if h.cpu >= 0 {
		ms = append(ms, fmt.Sprintf("cpu %d %%", h.cpu))
	}
	if h.memory >= 0 {
		ms = append(ms, fmt.Sprintf("memory %d %%", h.memory))
	}
	if h.external >= 0 {
		ms = append(ms, "external "+h.externalRaw)
	}
	return fmt.Sprintf("%s %d→%d (%s)", h.at.UTC().Format("15:04:05"), h.replicas, h.desired, strings.Join(ms, ", "))
}

// hpaRecorder reads an HPA's status every second until the test ends.
type hpaRecorder struct {
	mu   sync.Mutex
	list []hpaSample
}

func recordHPA(t *testing.T, c *cluster, ns, name string) *hpaRecorder {
	t.Helper()
	h := &hpaRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if obj, err := c.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				h.mu.Lock()
				h.list = append(h.list, sampleOf(obj))
				h.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func sampleOf(obj *autoscalingv2.HorizontalPodAutoscaler) hpaSample {
	s := hpaSample{at: time.Now(), replicas: obj.Status.CurrentReplicas, desired: obj.Status.DesiredReplicas, cpu: -1, memory: -1, external: -1}
	for _, m := range obj.Status.CurrentMetrics {
		switch {
		case m.Resource != nil && m.Resource.Current.AverageUtilization != nil:
			switch m.Resource.Name {
			case "cpu":
				s.cpu = *m.Resource.Current.AverageUtilization
			case "memory":
				s.memory = *m.Resource.Current.AverageUtilization
			}
		case m.External != nil && m.External.Current.AverageValue != nil:
			s.external = m.External.Current.AverageValue.AsApproximateFloat64()
			s.externalRaw = m.External.Current.AverageValue.String()
		}
	}
	return s
}

// samples returns the readings from from on.
func (h *hpaRecorder) samples(from time.Time) []hpaSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hpaSample
	for _, s := range h.list {
		if !s.at.Before(from) {
			out = append(out, s)
		}
	}
	return out
}

// changes lists the readings from from on where the replicas or the
// desired replicas changed.
func (h *hpaRecorder) changes(from time.Time) string {
	var parts []string
	var prev *hpaSample
	for _, s := range h.samples(from) {
		if prev == nil || s.replicas != prev.replicas || s.desired != prev.desired {
			parts = append(parts, s.String())
		}
		prev = &s
	}
	if len(parts) == 0 {
		return "(no reading)"
	}
	return strings.Join(parts, "; ")
}

// waitUntil waits for a reading that satisfies ok, at most limit.
func (h *hpaRecorder) waitUntil(t *testing.T, limit time.Duration, what string, ok func(hpaSample) bool) {
	t.Helper()
	waitUntil(t, limit, time.Second, what, func() (bool, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if n := len(h.list); n > 0 {
			last := h.list[n-1]
			return ok(last), fmt.Errorf("last reading %s", last)
		}
		return false, fmt.Errorf("no reading of the HPA yet")
	})
}
