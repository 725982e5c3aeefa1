package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/podcost"
	"github.com/montage/montage-scaler/scaler/server"
)

// TestTextRoundsEveryReplicaCountOneWayAndJSONKeepsThemWhole: a P95 of
// 242.5 ms against 80 ms with 2 replicas asks for exactly 6.0625 replicas,
// clamped to 5. People see 6.063 wherever that number appears; JSON has
// 6.0625.
func TestTextRoundsEveryReplicaCountOneWayAndJSONKeepsThemWhole(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	r := latency.Reading{Mode: latency.ModePromQL, P95: 0.2425, Target: 80 * time.Millisecond, CurrentReplicas: 2, ReplicasSource: "--current-replicas"}
	o, err := r.Opinion()
	if err != nil {
		t.Fatal(err)
	}
	d := decide.Decide(now, decide.Policy{Max: decide.Ptr(5), StaleAfter: time.Minute},
		[]decide.Reading{{Name: "latency", Opinion: o, GoodAt: now}})

	var text bytes.Buffer
	if err := writeText(&text, d); err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile(`6\.06\d*`).FindAllString(text.String(), -1)
	if len(shown) != 2 || strings.Join(shown, " ") != "6.063 6.063" {
		t.Fatalf("6.0625 shown as %q (want 6.063 in the clamp warning and the ask):\n%s", shown, text.String())
	}

	var js bytes.Buffer
	if err := writeJSON(&js, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"desiredReplicas": 6.0625,`) {
		t.Fatalf("JSON lost precision:\n%s", js.String())
	}
}

// TestTextShowsEachComponentsEvidenceAsWords: --format text shows a
// component's evidence as short key=value words (never its JSON), its
// error and warnings on lines of their own without the component's name
// said again, and prints the same for check's decision and explain's
// (which comes through the Inspector's proto).
func TestTextShowsEachComponentsEvidenceAsWords(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	wait, target, ask := 75.25, 60.0, 4.0
	backlog := celery.Backlog{Queued: 23, InFlight: 4, Stale: 1, HeartbeatWorkers: 2, HeartbeatActive: 4, Completed: 17,
		Queues:       []celery.QueueBacklog{{Name: "celery", Ready: 20, Unacked: 4, Stale: 1}, {Name: "video", Ready: 2}},
		UnackedTotal: 4, UnackedSampled: 4, AttributedAt: now, BrokerTime: now,
		OldestWaitSeconds: &wait, WaitMethod: celery.WaitStamp, QueueWaitTargetSeconds: &target, WaitAsk: &ask}
	lat := latency.Reading{Mode: latency.ModePromQL, P95: 0.0612, Target: 80 * time.Millisecond, CurrentReplicas: 3, ReplicasSource: "replicasQuery"}
	latOpinion, err := lat.Opinion()
	if err != nil {
		t.Fatal(err)
	}
	cal := decide.CalendarOpinion(now, []decide.CalendarWindow{{Summary: "Live stream", From: now.Add(-time.Hour), Until: now.Add(time.Hour), Replicas: 4},
		{Summary: "Launch", From: now.Add(24 * time.Hour), Until: now.Add(26 * time.Hour), Replicas: 6}}, 42*time.Second)
	d := decide.Decide(now, decide.Policy{Min: 1, Max: decide.Ptr(8), StaleAfter: time.Minute}, []decide.Reading{
		{Name: "celery", Opinion: decide.Opinion{Desired: decide.Ptr(5.4), Active: true, Detail: backlog}, GoodAt: now.Add(-time.Minute),
			Err: errors.New("celery: poll redis://127.0.0.1:6379/0: i/o timeout")},
		{Name: "latency", Opinion: latOpinion, GoodAt: now},
		{Name: "calendar", Opinion: cal, GoodAt: now},
	})

	var local, remote bytes.Buffer
	if err := writeText(&local, d); err != nil {
		t.Fatal(err)
	}
	if err := writeText(&remote, server.FromProto(server.ToProto(d))); err != nil {
		t.Fatal(err)
	}
	text := local.String()
	if remote.String() != text {
		t.Fatalf("check and explain print different text:\ncheck:\n%s\nexplain:\n%s", text, remote.String())
	}
	for _, want := range []string{
		"queued=23 inFlight=4 stale=1 celery.queued=21 celery.inFlight=4 video.queued=2 workers=2 running=4 completed=17 oldestWait=1m15s(publish-stamp) waitTarget=1m0s waitAsk=4\n",
		"\n" + strings.Repeat(" ", len("COMPONENT  ")) + "error: poll redis://127.0.0.1:6379/0: i/o timeout\n",
		"mode=promql p95=61.2ms target=80ms replicas=3(replicasQuery)\n",
		`event="Live stream" replicas=4 until=2026-12-05T19:00:00Z next="Launch" from=2026-12-06T18:00:00Z feedAge=42s` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	t.Logf("text:\n%s", text)
	if strings.ContainsAny(text, "{}") || strings.Contains(text, "celery: poll") {
		t.Errorf("text shows JSON or says the component's name twice:\n%s", text)
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 240 {
			t.Errorf("a line of %d characters is not for people: %s", len(line), line)
		}
	}
}

// The pod-cost plan prints, in text, under the components: a row per pod
// with its cost (- for none), its running tasks and why; JSON keeps it
// through the Inspector's wire form.
func TestTextAndJSONShowThePodCosts(t *testing.T) {
	one, three := int64(1), int64(3)
	zero := int64(0)
	plan := podcost.Report{Target: "deployments/montage", Plan: podcost.Plan{Below: true, Desired: 2, Current: 6, Pods: []podcost.Want{
		{Pod: "montage-a", Cost: &three, Active: &three, Why: "busy: 3 running tasks, cost 3"},
		{Pod: "montage-b", Active: &zero, Why: "idle: no cost, among the first to go"},
		{Pod: "montage-c", Cost: &one, Active: &one, Why: "busy: 1 running tasks, cost 1"},
	}}}
	d := decide.Decision{Desired: decide.Ptr(2.0), Bounds: decide.Bounds{Min: 1}, PodCosts: plan, Components: []decide.ComponentResult{}}
	var text, js bytes.Buffer
	if err := writeText(&text, server.FromProto(server.ToProto(d))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pod costs: deployments/montage, decision 2 of 6 replicas, below the current replicas: costs kept\n",
		"  montage-a  3     3       busy: 3 running tasks, cost 3\n",
		"  montage-b  -     0       idle: no cost, among the first to go\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if err := writeJSON(&js, d); err != nil {
		t.Fatal(err)
	}
	var back struct {
		PodCosts podcost.Report `json:"podCosts"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.PodCosts.Pods) != 3 || *back.PodCosts.Pods[0].Cost != 3 || back.PodCosts.Pods[1].Cost != nil {
		t.Errorf("json: %v\n%s", err, js.String())
	}
}

func TestCheckPodCostsNeedsTheKubernetesAPI(t *testing.T) {
	md := tempFile(t, "md.yaml", "tasksPerReplica: \"5\"\nbrokerURL: redis://127.0.0.1:1/0\n")
	code, _, stderr := runWith(t, nil, "check", "--metadata", md, "--pod-costs")
	if code != exitUsage || !strings.Contains(stderr, "--pod-costs needs the Kubernetes API: run in a cluster or give --kubeconfig") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	code, _, stderr = runWith(t, nil, "check", "--metadata", md, "--pod-costs", "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	if code != exitUsage || !strings.Contains(stderr, "--kubeconfig: kubernetes client: kubeconfig ") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// The wait-based ask prints its rule and figures in text, and why it fell
// back when it did, the same from check and explain.
func TestTextShowsTheWaitBasedAsk(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	target := 60.0
	measured := &decide.CeleryFlowDetail{Rule: decide.RuleDrain, ArrivalsPerSecond: decide.Ptr(2.0 / 3), ServiceSeconds: decide.Ptr(2),
		DrainSeconds: decide.Ptr(30), PodStartupSeconds: 45, Ask: decide.Ptr(0.8)}
	fellBack := &decide.CeleryFlowDetail{Rule: decide.RuleDepthFallback, Fallback: "no task completed in the last 30 s yet: no service time", PodStartupSeconds: 45, Ask: decide.Ptr(1.8)}
	for _, tt := range []struct {
		flow *decide.CeleryFlowDetail
		want string
	}{
		{measured, "waitTarget=1m0s rule=drain service=2s arrivals=0.67/s drain=30s podStartup=45s\n"},
		{fellBack, "rule=depth(fallback) podStartup=45s\n" + strings.Repeat(" ", len("COMPONENT  ")) + "wait-based ask not used: no task completed in the last 30 s yet: no service time\n"},
	} {
		b := celery.Backlog{Queued: 4, InFlight: 5, HeartbeatWorkers: 1, BrokerTime: now, QueueWaitTargetSeconds: &target, Flow: tt.flow}
		d := decide.Decide(now, decide.Policy{StaleAfter: time.Minute}, []decide.Reading{
			{Name: "celery", Opinion: decide.Opinion{Desired: tt.flow.Ask, Active: true, Detail: b}, GoodAt: now}})
		var local, remote bytes.Buffer
		if err := writeText(&local, d); err != nil {
			t.Fatal(err)
		}
		if err := writeText(&remote, server.FromProto(server.ToProto(d))); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(local.String(), tt.want) || remote.String() != local.String() {
			t.Errorf("text lacks %q (or check and explain differ):\n%s\n%s", tt.want, local.String(), remote.String())
		}
	}
}
