//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/montage/montage-scaler/test/servers"
)

// The pod-cost scenarios (issue 25) run in these namespaces side by side:
// the same scale-down with the writer and without it.
const (
	podCostOnNS  = "podcost-on"
	podCostOffNS = "podcost-off"
)

// podCostHigh is how long the calendar asks for 6 replicas from the start;
// then it asks for 2 and the HPA scales 6 → 2 in one step (the podcost
// overlay). podCostAfter is how long the two long renders go on after that
// ask drops.
const (
	podCostHigh  = 200 * time.Second
	podCostAfter = 60 * time.Second
)

// podCostRun is what one run measured.
type podCostRun struct {
	writer          bool
	busy            []string // the pods given a long render
	victims         []string // the pods the ReplicaSet deleted at the scale-down
	busyChosen      int
	linger          []time.Duration // busy victims: deletion to gone
	scaleDown       time.Time       // 6 → 2
	chosenIn        time.Duration   // scale-down → the last victim's deletionTimestamp seen
	toTwo           time.Duration   // scale-down → 2 pods hold a node
	podSeconds      float64         // after the scale-down, Terminating included
	writes          float64         // the writer's patches
	minutes         float64         // from the ScaledObject's start to the end
	explainedBusy   int             // pods explain showed with a cost
	checkedPodCosts bool            // check --pod-costs printed the plan, with the 2 busy pods' costs
}

// scenarioPodCost (issue 25): 6 replicas, two of them (the two most
// recently Ready: the ReplicaSet's first victims) rendering long tasks and
// four idle, then a scale-down to 2 in one step; with the writer the
// ReplicaSet removes the four idle pods, without it the busy ones linger in
// Terminating while idle pods run on.
func scenarioPodCost(t *testing.T, e *env, l *live) {
	var on, off podCostRun
	t.Run("runs", func(t *testing.T) {
		t.Run("with the writer", func(t *testing.T) { t.Parallel(); on = runPodCost(t, e, l, podCostOnNS, true) })
		t.Run("without it", func(t *testing.T) { t.Parallel(); off = runPodCost(t, e, l, podCostOffNS, false) })
	})
	if t.Failed() {
		return
	}
	t.Logf("a scale-down from 6 to 2 replicas with 2 pods rendering and 4 idle:\n"+
		"| run | busy pods chosen | busy pods' time Terminating | scale-down → victims chosen | scale-down → 2 pods hold a node | pod-seconds after the scale-down | writer's patches per minute |\n"+
		"|---|---|---|---|---|---|---|\n"+
		"| with --pod-deletion-cost | %d of 2 | %v | %.1f s | %.1f s | %.0f | %.1f (%g in %.1f min) |\n"+
		"| without | %d of 2 | %v | %.1f s | %.1f s | %.0f | – |",
		on.busyChosen, on.linger, on.chosenIn.Seconds(), on.toTwo.Seconds(), on.podSeconds, on.writes/on.minutes, on.writes, on.minutes,
		off.busyChosen, off.linger, off.chosenIn.Seconds(), off.toTwo.Seconds(), off.podSeconds)
	if on.busyChosen != 0 {
		t.Errorf("with the writer the ReplicaSet chose %d busy pods (victims %v, busy %v), want 0", on.busyChosen, on.victims, on.busy)
	}
	if on.chosenIn > hpaSyncPeriod || on.toTwo > hpaSyncPeriod+idleExit {
		t.Errorf("with the writer the victims were marked for deletion within %s of the scale-down and the pods that hold a node reached 2 after %s: "+
			"want within one HPA sync (%s), and that plus an idle worker's exit (%s)", on.chosenIn, on.toTwo, hpaSyncPeriod, idleExit)
	}
	if on.explainedBusy != 2 || !on.checkedPodCosts {
		t.Errorf("explain showed %d pods with a cost (want 2), check --pod-costs printed the plan: %t", on.explainedBusy, on.checkedPodCosts)
	}
	if perMin := on.writes / on.minutes; on.writes == 0 || perMin > 2*float64(len(on.busy)+4)*60/15 {
		t.Errorf("the writer patched %g times (%.1f per minute): want some, and at most one patch per pod per 15 s per replica", on.writes, perMin)
	}
}

// idleExit bounds an idle worker's warm shutdown (a Python process's exit
// on a busy 2-core machine) and the bridge's removal of its finalizer (a
// kubelet's part here): the time an idle victim still holds its node.
const idleExit = 10 * time.Second

func runPodCost(t *testing.T, e *env, l *live, ns string, writer bool) podCostRun {
	run := podCostRun{writer: writer}
	now := time.Now()
	high := now.Add(podCostHigh)
	o := appOptions{autoscale: "podcost",
		events:   []calEvent{{now.Add(-time.Minute), high, 6}, {high, now.Add(2 * time.Hour), 2}},
		metadata: map[string]string{"calendarLeadTime": "0s", "calendarHold": "0s"}}
	if writer {
		o.scalerArgsFor = func(s *scenario) []string {
			return []string{"--pod-deletion-cost", "--kubeconfig", podCostKubeconfig(t, e.c, s.ns)}
		}
	}
	a := startLiveApp(t, e, l, ns, o)
	started := time.Now()
	a.b.waitUntil(t, high.Sub(time.Now())-20*time.Second, "6 pods serve", func(b *bridge) bool { return b.serving() == 6 })

	// The two pods the ReplicaSet would remove first without costs render
	// until podCostAfter past the drop of the calendar's ask.
	pods, _ := a.b.snapshot()
	firstVictims(pods)
	d := time.Until(high.Add(podCostAfter)).Round(time.Second)
	for _, p := range pods[:2] {
		run.busy = append(run.busy, p.name)
		servers.SendTasks(t, servers.ProducerOptions{BrokerURL: a.r.URL(0)}, servers.Render("long-"+p.name, podQueue(p.name), d, burstRenderCPU))
	}
	a.b.waitUntil(t, time.Minute, "both long renders run", func(b *bridge) bool { return len(b.running()) == 2 })

	// The decision drops to 2 at high; while the HPA's window runs, the
	// writer (if on) sets the busy pods' costs, which explain shows.
	if writer {
		time.Sleep(time.Until(high.Add(8 * time.Second)))
		run.explainedBusy = explainedCosts(t, a)
		run.checkedPodCosts = checkPodCosts(t, e, a)
	}
	run.scaleDown = a.tr.waitFor(t, time.Until(high.Add(2*time.Minute)), "the scale-down to 2", eq(2))
	a.b.waitUntil(t, 3*time.Minute, "the long renders end", func(b *bridge) bool { return b.ended() == 2 })
	a.b.waitUntil(t, 2*time.Minute, "2 pods left", func(b *bridge) bool { return b.existing() == 2 })
	end := time.Now()
	a.b.check(t)
	pods, renders := a.b.snapshot()
	renderFates(t, renders, 2)
	run.measure(pods, end)
	run.minutes = end.Sub(started).Minutes()
	if writer {
		w, err := writerPatches(a.sc.httpAddr)
		if err != nil {
			t.Fatalf("e2e: %v", err)
		}
		run.writes = w
	}
	t.Logf("%s: busy %v, victims %v, scale-down at +%.1f s; trajectory %s", ns, run.busy, run.victims, run.scaleDown.Sub(started).Seconds(), a.tr)
	return run
}

// firstVictims sorts serving pods as the ReplicaSet ranks them for a
// scale-down when no pod has a deletion cost: pods sharing their node with
// more of its pods first, then the most recently Ready.
func firstVictims(pods []livePod) {
	onNode := map[string]int{}
	for _, p := range pods {
		onNode[p.node]++
	}
	slices.SortFunc(pods, func(x, y livePod) int {
		if c := onNode[y.node] - onNode[x.node]; c != 0 {
			return c
		}
		return y.readySeen.Compare(x.readySeen)
	})
}

// measure reads the victims and the time after the scale-down from the
// bridge's pods.
func (run *podCostRun) measure(pods []livePod, end time.Time) {
	var lastGone time.Time
	for _, p := range pods {
		if p.deleting.IsZero() || p.deleting.Before(run.scaleDown.Add(-time.Second)) {
			continue
		}
		run.victims = append(run.victims, p.name)
		run.chosenIn = max(run.chosenIn, p.deleting.Sub(run.scaleDown).Round(100*time.Millisecond))
		if slices.Contains(run.busy, p.name) {
			run.busyChosen++
			run.linger = append(run.linger, p.until(end).Sub(p.deleting).Round(100*time.Millisecond))
		}
		if p.until(end).After(lastGone) {
			lastGone = p.until(end)
		}
	}
	// The pods that hold a node reach 2 when the last victim is gone.
	run.toTwo = lastGone.Sub(run.scaleDown).Round(100 * time.Millisecond)
	for _, p := range pods {
		from, to := p.created, p.until(end)
		if from.Before(run.scaleDown) {
			from = run.scaleDown
		}
		if to.After(from) {
			run.podSeconds += to.Sub(from).Seconds()
		}
	}
}

// metadataFile writes the app's trigger metadata as explain and check take
// it: its broker and queues, acks_late as its workers run.
func (a *liveApp) metadataFile(t *testing.T) string {
	file := filepath.Join(a.s.dir, "explain.yaml")
	writeFile(t, file, []byte(fmt.Sprintf("brokerURL: %s\nqueues: celery,video\nacksLate: \"true\"\n", a.r.URL(0))))
	return file
}

// explainedCosts asks the scaler's explain for the ScaledObject's decision
// and returns how many pods its pod costs give a cost.
func explainedCosts(t *testing.T, a *liveApp) int {
	t.Helper()
	file := a.metadataFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := runStdout(ctx, a.s.e.scalerBin, "explain", "--addr", a.sc.grpcAddr, "--metadata", file, "--namespace", a.s.ns, "--name", "montage", "--format", "json")
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	var ex struct {
		PodCosts struct {
			Below bool `json:"below"`
			Pods  []struct {
				Pod  string   `json:"pod"`
				Cost *float64 `json:"cost"`
				Why  string   `json:"why"`
			} `json:"pods"`
		} `json:"podCosts"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("e2e: explain: %v\n%s", err, out)
	}
	n := 0
	for _, p := range ex.PodCosts.Pods {
		if p.Cost != nil {
			n++
		}
	}
	t.Logf("explain's pod costs (below %t): %+v", ex.PodCosts.Below, ex.PodCosts.Pods)
	return n
}

// checkPodCosts runs check --pod-costs on the same metadata against the
// cluster and says whether it printed the plan.
func checkPodCosts(t *testing.T, e *env, a *liveApp) bool {
	t.Helper()
	file := a.metadataFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := runStdout(ctx, e.scalerBin, "check", "--metadata", file, "--namespace", a.s.ns, "--name", "montage", "--format", "text",
		"--pod-costs", "--kubeconfig", e.c.kubeconfig)
	t.Logf("check --pod-costs:\n%s", out)
	return strings.Contains(out, "pod costs: deployments/montage") && strings.Count(out, "busy: 1 running tasks, cost 1") == 2
}

// writerPatches is the sum of the scaler's montage_scaler_pod_cost_writes_total.
func writerPatches(httpAddr string) (float64, error) {
	sums, err := scalerSums(httpAddr, "", "montage_scaler_pod_cost_writes_total")
	return sums["montage_scaler_pod_cost_writes_total"], err
}

// podCostKubeconfig gives the scaler of namespace ns exactly the rights
// deploy/ ships for the writer: the base ClusterRole (the ScaledObject and
// the scale subresource, read) and the pod-cost overlay's Role (pods: list
// and patch, in the app's namespace), both bound to a ServiceAccount
// montage-scaler of ns; it returns a kubeconfig with that account's token.
func podCostKubeconfig(t *testing.T, c *cluster, ns string) string {
	t.Helper()
	overlay := filepath.Join(repoDir, "deploy", "overlays", "pod-cost")
	cr := kustomizeOne(t, c, overlay, "ClusterRole")
	crb := kustomizeOne(t, c, overlay, "ClusterRoleBinding")
	role := kustomizeOne(t, c, overlay, "Role")
	rb := kustomizeOne(t, c, overlay, "RoleBinding")
	// Cluster-wide names of this run's own; the Role and its binding move
	// into the run's namespace; every subject is the run's account.
	cr["metadata"] = map[string]any{"name": "montage-scaler-" + ns}
	crb["metadata"] = map[string]any{"name": "montage-scaler-" + ns}
	crb["roleRef"].(map[string]any)["name"] = "montage-scaler-" + ns
	role["metadata"].(map[string]any)["namespace"] = ns
	rb["metadata"].(map[string]any)["namespace"] = ns
	for _, b := range []map[string]any{crb, rb} {
		b["subjects"] = []any{map[string]any{"kind": "ServiceAccount", "name": "montage-scaler", "namespace": ns}}
	}
	c.apply(t, fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: montage-scaler, namespace: %s}\n", ns))
	for _, obj := range []map[string]any{cr, crb, role, rb} {
		c.apply(t, toJSON(t, obj))
	}
	exp := int64(3600)
	tok, err := c.client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "montage-scaler",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("e2e: a token for montage-scaler in %s: %v", ns, err)
	}
	path := filepath.Join(c.dir, ns+"-scaler.kubeconfig")
	writeFile(t, path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: %s, certificate-authority-data: %s}
users:
  - name: montage-scaler
    user: {token: %s}
contexts:
  - name: e2e
    context: {cluster: e2e, user: montage-scaler}
current-context: e2e
`, c.cfg.Host, base64(c.pki.caPEM), tok.Status.Token)))
	return path
}
