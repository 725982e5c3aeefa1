package simulate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// burstTrace is two quiet minutes, then 100 tasks of 60 s (and, with
// requests, that many API requests a minute from then on) in the third
// minute, then quiet again for twenty minutes.
func burstTrace(t *testing.T, requests int) Trace {
	t.Helper()
	var b strings.Builder
	b.WriteString("time,tasks,requests,service_seconds\n")
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for i := range 23 {
		tasks, req := 0, 0
		if i == 2 {
			tasks = 100
		}
		if i >= 2 {
			req = requests
		}
		fmt.Fprintf(&b, "%s,%d,%d,60\n", start.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), tasks, req)
	}
	tr, err := ReadTrace(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// loopObject is a ScaledObject of 1–10 replicas whose HPA scales up at once
// (no window, 4 pods or 100 % per 15 s) and down after downWindow seconds;
// trigger is external or external-push, extra more triggers.
func loopObject(trigger string, min, downWindow int, extra string) string {
	return fmt.Sprintf(`apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: loop, namespace: test}
spec:
  minReplicaCount: %d
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp: {stabilizationWindowSeconds: 0}
        scaleDown: {stabilizationWindowSeconds: %d}
  triggers:
    - type: %s
      metadata: {tasksPerReplica: "5", minReplicas: "%d", maxReplicas: "10"}
%s`, min, downWindow, trigger, min, extra)
}

// runLoop runs one policy on tr under md, w and l, sampled every second.
func runLoop(t *testing.T, md string, tr Trace, policy string, w Workload, l Loop) Result {
	t.Helper()
	s, err := prepare([]byte(md), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tr, s, Options{Workload: w, Loop: l, Policies: []string{policy}, SampleEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r.Results[0]
}

// firstSecond is the first second whose sample satisfies ok; -1 if none.
func firstSecond(r Result, ok func(Sample) bool) int {
	for i, s := range r.Samples {
		if ok(s) {
			return i
		}
	}
	return -1
}

func scaledUp(from int32) func(Sample) bool {
	return func(s Sample) bool { return s.Replicas > from }
}

func TestTheHPASyncPeriodDelaysTheFirstScaleUpToItsNextSync(t *testing.T) {
	// The one pod's five slots are full, and a task queued, from 123.3 s
	// (the sixth task); the HPA acts at its first sync after that.
	tr := burstTrace(t, 0)
	md := loopObject("external-push", 1, 300, "")
	for _, tc := range []struct {
		name string
		sync time.Duration
		want int
	}{
		{"the default, 15 s: at 135 s", 0, 135},
		{"15 s written out: the same", 15 * time.Second, 135},
		{"the live loop's 2 s: at 124 s", 2 * time.Second, 124},
		{"60 s: at 180 s", time.Minute, 180},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runLoop(t, md, tr, MontageScaler, DefaultWorkload(), Loop{HPASync: tc.sync})
			if got := firstSecond(r, scaledUp(1)); got != tc.want {
				t.Errorf("first scale-up at %d s, want %d s", got, tc.want)
			}
		})
	}
}

func TestThePollingIntervalDelaysAWakeFromZeroWithoutPush(t *testing.T) {
	// At zero replicas only KEDA's poll wakes the Deployment: the first
	// poll at or after 121 s.
	tr := burstTrace(t, 0)
	md := loopObject("external", 0, 300, "")
	for _, tc := range []struct {
		name    string
		polling time.Duration
		want    int
	}{
		{"the file's, 30 s (KEDA's default): at 150 s", 0, 150},
		{"5 s: at 125 s", 5 * time.Second, 125},
		{"60 s: at 180 s", time.Minute, 180},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runLoop(t, md, tr, MontageScaler, DefaultWorkload(), Loop{Polling: tc.polling})
			if got := firstSecond(r, scaledUp(0)); got != tc.want {
				t.Errorf("woken at %d s, want %d s", got, tc.want)
			}
		})
	}
}

func TestTheReportSaysThePollingIntervalThatRan(t *testing.T) {
	tr := burstTrace(t, 0)
	s, err := prepare([]byte(loopObject("external", 0, 300, "")), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tr, s, Options{Workload: DefaultWorkload(), Loop: Loop{Polling: 5 * time.Second}, Policies: []string{MontageScaler}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Settings.PollingInterval != 5*time.Second || s.KEDA.PollingInterval != 30*time.Second {
		t.Errorf("report says polling %s (setup %s), want 5s and the setup's 30s untouched", r.Settings.PollingInterval, s.KEDA.PollingInterval)
	}
}

func TestCachedMetricsMakeASyncBetweenPollsReadTheLastPoll(t *testing.T) {
	// Polls at 120 s (before the burst) and 150 s; syncs every 15 s. With
	// the cache the sync at 135 s reads the poll of 120 s: no work yet.
	tr := burstTrace(t, 0)
	md := loopObject("external-push", 1, 300, "")
	for _, tc := range []struct {
		name   string
		cached bool
		want   int
	}{
		{"fresh metrics at every sync: at 135 s", false, 135},
		{"cached metrics: at the next poll, 150 s", true, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runLoop(t, md, tr, MontageScaler, DefaultWorkload(), Loop{CachedMetrics: tc.cached})
			if got := firstSecond(r, scaledUp(1)); got != tc.want {
				t.Errorf("first scale-up at %d s, want %d s", got, tc.want)
			}
		})
	}
}

func TestAResourceMetricsLagDelaysTheCPUScaleUp(t *testing.T) {
	// phase1-hpa scales on CPU alone: 50 % from the requests from 120 s,
	// 110 % once the pod runs five tasks (122.7 s); the sync at 135 s is
	// the first to see it without lag.
	tr := burstTrace(t, 3000)
	md := loopObject("external-push", 1, 300, "")
	for _, tc := range []struct {
		name string
		lag  time.Duration
		want int
	}{
		{"no lag: at 135 s", 0, 135},
		{"10 s, less than the wait for that sync: the same sync", 10 * time.Second, 135},
		{"30 s: two syncs later", 30 * time.Second, 165},
		{"60 s: four syncs later", time.Minute, 195},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runLoop(t, md, tr, Phase1HPA, DefaultWorkload(), Loop{ResourceLag: tc.lag})
			if got := firstSecond(r, scaledUp(1)); got != tc.want {
				t.Errorf("first scale-up at %d s, want %d s", got, tc.want)
			}
		})
	}
}

func TestThePodStartUpShiftsWhenNewPodsAreReady(t *testing.T) {
	tr := burstTrace(t, 0)
	md := loopObject("external-push", 1, 300, "")
	for _, startup := range []time.Duration{0, 8 * time.Second, 45 * time.Second, 2 * time.Minute} {
		t.Run(startup.String(), func(t *testing.T) {
			w := DefaultWorkload()
			w.PodStartup = startup
			r := runLoop(t, md, tr, MontageScaler, w, Loop{})
			up := firstSecond(r, scaledUp(1))
			ready := firstSecond(r, func(s Sample) bool { return s.Ready > 1 })
			if up != 135 || ready != up+int(startup/time.Second) {
				t.Errorf("scaled up at %d s, a new pod ready at %d s; want 135 s and %s later", up, ready, startup)
			}
		})
	}
}

func TestTheStartUpJitterIsDrawnFromTheSeed(t *testing.T) {
	readies := func(jitter time.Duration, seed uint64) []float64 {
		w := DefaultWorkload()
		w.StartupJitter, w.Seed = jitter, seed
		c := newCluster(w, nil, 1, 0)
		c.scale(0, 20)
		var out []float64
		for _, p := range c.pods {
			out = append(out, p.ready)
		}
		return out
	}
	none := readies(0, 7)
	for _, r := range none {
		if r != 45 {
			t.Fatalf("without jitter a pod is ready at %g s, want 45 s", r)
		}
	}
	a, b, other := readies(20*time.Second, 7), readies(20*time.Second, 7), readies(20*time.Second, 8)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("seed 7 drew %v, then %v: want the same", a, b)
	}
	if reflect.DeepEqual(a, other) {
		t.Errorf("seeds 7 and 8 drew the same delays %v", a)
	}
	lo, hi := a[0], a[0]
	for _, r := range a {
		if r < 45 || r >= 65 {
			t.Errorf("a pod ready at %g s, want 45 s to 65 s", r)
		}
		lo, hi = min(lo, r), max(hi, r)
	}
	if hi-lo < 5 {
		t.Errorf("20 pods ready between %g s and %g s: the jitter hardly spreads them", lo, hi)
	}
}

func TestAJitteredRunIsReproducible(t *testing.T) {
	tr := burstTrace(t, 0)
	md := loopObject("external-push", 1, 300, "")
	w := DefaultWorkload()
	w.StartupJitter, w.Seed = 30*time.Second, 42
	a := runLoop(t, md, tr, MontageScaler, w, Loop{})
	b := runLoop(t, md, tr, MontageScaler, w, Loop{})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two runs with seed 42 differ:\n%+v\n%+v", a, b)
	}
	plain := runLoop(t, md, tr, MontageScaler, DefaultWorkload(), Loop{})
	if reflect.DeepEqual(a.Samples, plain.Samples) {
		t.Errorf("30 s of jitter changed no sample")
	}
}

func TestTheScaledObjectsScaleDownWindowIsHonoured(t *testing.T) {
	// The same run until the first scale-down, which a window 240 s longer
	// holds back 240 s.
	tr := burstTrace(t, 0)
	first := func(window int) (down, peak int) {
		r := runLoop(t, loopObject("external-push", 1, window, ""), tr, MontageScaler, DefaultWorkload(), Loop{})
		top := firstSecond(r, func(s Sample) bool { return s.Replicas == r.PeakReplicas })
		return top + firstSecond(Result{Samples: r.Samples[top:]}, func(s Sample) bool { return s.Replicas < r.PeakReplicas }), int(r.PeakReplicas)
	}
	short, peakShort := first(60)
	long, peakLong := first(300)
	if peakShort != peakLong || long-short != 240 {
		t.Errorf("first scale-down at %d s (window 60 s, peak %d) and %d s (300 s, peak %d): want 240 s apart, same peak", short, peakShort, long, peakLong)
	}
}

func TestTheZeroLoopIsTheModelsDefaults(t *testing.T) {
	tr := burstTrace(t, 3000)
	md := loopObject("external", 0, 300, "    - type: cpu\n      metricType: Utilization\n      metadata: {value: \"65\"}\n")
	written := DefaultLoop()
	written.Polling = 30 * time.Second // the file's
	for _, p := range Policies() {
		zero, explicit := runLoop(t, md, tr, p, DefaultWorkload(), Loop{}), runLoop(t, md, tr, p, DefaultWorkload(), written)
		if !reflect.DeepEqual(zero, explicit) {
			t.Errorf("%s: the zero Loop and its defaults written out differ", p)
		}
	}
}

func TestLoopRefusesWhatTheModelCannotRun(t *testing.T) {
	for _, tc := range []struct {
		l    Loop
		want string
	}{
		{Loop{HPASync: 1500 * time.Millisecond}, "loop: HPA sync period 1.5s: want whole seconds from 0 to 10m0s"},
		{Loop{Polling: -time.Second}, "loop: polling interval -1s: want whole seconds from 0 to 1h0m0s"},
		{Loop{ResourceLag: 11 * time.Minute}, "loop: resource metrics lag 11m0s: want whole seconds from 0 to 10m0s"},
	} {
		if err := tc.l.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
}
