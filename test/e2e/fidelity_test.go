//go:build e2e

package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/simulate"
)

// fidelityNS is the longer trace's namespace.
const fidelityNS = "fidelity"

// The longer trace: examples/traces/long-renders.csv from its 31st minute
// for 20 minutes (the last ten of its steady load, 12 one-minute renders a
// minute, then ten idle), compressed 4 times as the live loop's overlays
// are: a step every 15 s, renders of 15 s.
const (
	fidelityTrace    = "long-renders.csv"
	fidelityFrom     = 30
	fidelityRows     = 20
	fidelityCompress = 4
)

// kedaPolling is the ScaledObject's pollingInterval (deploy/ sets none:
// KEDA's default).
const kedaPolling = 30 * time.Second

// fidelityTail is how long a run is followed after its end (back at one
// replica, the removed pods gone), so that a model a little slower to
// return to the minimum returns within the window compared.
const fidelityTail = 45 * time.Second

// scenarioFidelityTrace (issue 24) replays the longer trace's arrivals
// through the live loop, step by step as the trace says, then through
// simulate with the live loop's parameters, and compares the two.
func scenarioFidelityTrace(t *testing.T, e *env, l *live) {
	tr := readExampleTrace(t, fidelityTrace)
	rows := tr.Rows[fidelityFrom : fidelityFrom+fidelityRows]
	step := tr.Step / fidelityCompress
	a := startLiveApp(t, e, l, fidelityNS, appOptions{})

	work := recordWork(t, a.sc.httpAddr)
	start := time.Now()
	var arrivals []arrival
	total := 0
	for i, row := range rows {
		time.Sleep(time.Until(start.Add(time.Duration(i) * step)))
		if row.Tasks > 0 {
			arrivals = append(arrivals, a.send(t, fmt.Sprintf("step%02d", i), row.Tasks, row.Service/fidelityCompress))
			total += row.Tasks
		}
	}
	traceEnd := start.Add(time.Duration(len(rows)) * step)
	a.b.waitUntil(t, 6*time.Minute, "every render ends", func(b *bridge) bool { return b.ended() == total })
	a.tr.waitFor(t, 5*time.Minute, "return to 1", eq(1))
	a.b.waitUntil(t, 3*time.Minute, "the removed pods are gone", func(b *bridge) bool { return b.existing() == 1 })
	a.b.check(t)
	_, renders := a.b.snapshot()
	fs := renderFates(t, renders, total)
	var run, most time.Duration
	for _, f := range fs {
		run += f.end.Sub(f.start)
		most = max(most, f.end.Sub(f.start))
	}
	t.Logf("renders of %s ran %s on average, %s at most (their own start and end records)", rows[0].Service/fidelityCompress,
		(run / time.Duration(len(fs))).Round(time.Millisecond), most.Round(time.Millisecond))
	time.Sleep(time.Until(traceEnd))
	time.Sleep(fidelityTail)
	compareWithSimulate(t, e, fidelityRun{name: fmt.Sprintf("%s, minutes %d–%d, ÷%d", fidelityTrace, fidelityFrom, fidelityFrom+fidelityRows, fidelityCompress),
		app: a, start: start, end: time.Now(), arrivals: arrivals, work: work})
}

// readExampleTrace reads one of examples/traces.
func readExampleTrace(t *testing.T, name string) simulate.Trace {
	t.Helper()
	f, err := os.Open(filepath.Join(repoDir, "examples", "traces", name))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	defer f.Close()
	tr, err := simulate.ReadTrace(f)
	if err != nil {
		t.Fatalf("e2e: %s: %v", name, err)
	}
	return tr
}

// fidelityRun is a live run to compare: the app, the window and the
// arrivals in it.
type fidelityRun struct {
	name       string
	app        *liveApp
	start, end time.Time
	arrivals   []arrival
	// work is what the scaler saw, printed beside the model's.
	work *workRecorder
	// strict: the criteria fail the test; otherwise they are printed.
	strict bool
}

// fidelity is one side's figures over the window, times in seconds from
// its start (NaN: never).
type fidelity struct {
	replicas        []int32 // at each second
	work            string  // the model's queued + running every 5 s
	firstUp, backAt float64
	podSeconds      float64
	eventsPerHour   float64
	peak            int32
}

// compareWithSimulate runs `montage-scaler simulate` over the run's
// arrivals with the live loop's parameters (its pods' start-up as measured
// in the run) and compares it with what the live loop did, sampled every
// 5 s: replicas within ±1 on at least 95 % of the samples, the first
// scale-up and the return to the minimum within one HPA sync plus one
// scaler poll; pod-seconds and scale events per hour side by side.
func compareWithSimulate(t *testing.T, e *env, run fidelityRun) {
	t0 := run.start.Truncate(time.Second)
	secs := int(math.Ceil(run.end.Sub(t0).Seconds()))
	pods, _ := run.app.b.snapshot()
	startups := measuredStartups(t, pods, t0)
	argv := simulateArgs(t, run, t0, secs, startups)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := runStdout(ctx, append([]string{e.scalerBin}, argv...)...)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	sim := readSimulated(t, out, argv[len(argv)-1], secs)
	live := liveFidelity(run.app.tr.snapshot(), pods, t0, secs)

	within, n := 0, 0
	for k := 0; k < secs; k += 5 {
		n++
		if d := live.replicas[k] - sim.replicas[k]; d >= -1 && d <= 1 {
			within++
		}
	}
	share := float64(within) / float64(n)
	tol := (hpaSyncPeriod + kedaPolling).Seconds()
	t.Logf("simulate, as run: montage-scaler %s", strings.Join(argv, " "))
	t.Logf("fidelity of simulate against the live loop (%s, %d s from the first arrival's second, the pods' own start-ups):\n"+
		"| run | samples (5 s) | replicas within ±1 | first scale-up s, live / model | back to min s, live / model | peak, live / model | pod-seconds, live / model | scale ev/h, live / model |\n"+
		"|---|---|---|---|---|---|---|---|\n"+
		"| %s | %d | %.0f %% | %s / %s | %s / %s | %d / %d | %.0f / %.0f | %.0f / %.0f |\n"+
		"live:  %s\nmodel: %s",
		run.name, secs, run.name, n, 100*share, sec1(live.firstUp), sec1(sim.firstUp), sec1(live.backAt), sec1(sim.backAt),
		live.peak, sim.peak, live.podSeconds, sim.podSeconds, live.eventsPerHour, sim.eventsPerHour, every5(live.replicas), every5(sim.replicas))
	if run.work != nil {
		t.Logf("queued + in flight every 5 s:\nlive:  %s\nmodel: %s", run.work.every5(t0, secs), sim.work)
	}
	// The criteria: asserted for the burst; printed for the longer trace,
	// on which the model is known to fall short (README: "How close
	// simulate is to a real cluster").
	fail := t.Errorf
	if !run.strict {
		fail = func(format string, args ...any) { t.Logf("NOT MET (reported, not asserted): "+format, args...) }
	}
	if share < 0.95 {
		fail("replicas within ±1 on %.1f %% of the samples, want at least 95 %%", 100*share)
	}
	for _, c := range []struct {
		what       string
		live, simv float64
	}{{"the first scale-up", live.firstUp, sim.firstUp}, {"the return to the minimum", live.backAt, sim.backAt}} {
		if math.IsNaN(c.live) || math.IsNaN(c.simv) || math.Abs(c.live-c.simv) > tol {
			fail("%s: live +%s s, model +%s s: want both, within %.0f s (one HPA sync plus one KEDA poll)", c.what, sec1(c.live), sec1(c.simv), tol)
		}
	}
}

// measuredStartups are the start-up delays of the pods created after t0,
// from their creation (whole seconds) to their worker's "ready.", in order
// of creation (ties: the faster first), as simulate --pod-startups takes
// them: the model's k-th new pod starts as the run's k-th did.
func measuredStartups(t *testing.T, pods []livePod, t0 time.Time) []time.Duration {
	var ps []livePod
	for _, p := range pods {
		if !p.created.Before(t0) && !p.workerReadyAt.IsZero() {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(x, y livePod) int {
		if c := x.created.Compare(y.created); c != 0 {
			return c
		}
		return x.workerReadyAt.Compare(y.workerReadyAt)
	})
	var ds []time.Duration
	for _, p := range ps {
		ds = append(ds, p.workerReadyAt.Sub(p.created).Round(100*time.Millisecond))
	}
	t.Logf("pods' start-up, creation to worker ready, in order of creation: %v", ds)
	return ds
}

// simulateArgs writes the run's arrivals as a trace of 1 s steps and the
// ScaledObject as applied, and returns simulate's arguments: the live
// loop's timing, its pods' CPU and memory, samples every second (the last
// argument is the samples file).
func simulateArgs(t *testing.T, run fidelityRun, t0 time.Time, secs int, startups []time.Duration) []string {
	dir := t.TempDir()
	tasks := make([]int, secs)
	service := make([]float64, secs)
	for i := range service {
		service[i] = run.arrivals[0].service.Seconds()
	}
	for _, a := range run.arrivals {
		k := min(int(a.at.Sub(t0)/time.Second), secs-1)
		tasks[k] += a.n
		service[k] = a.service.Seconds()
	}
	var b strings.Builder
	b.WriteString("time,tasks,requests,service_seconds\n")
	for k := range secs {
		fmt.Fprintf(&b, "%s,%d,0,%g\n", t0.Add(time.Duration(k)*time.Second).UTC().Format(time.RFC3339), tasks[k], service[k])
	}
	trace, so, samples := filepath.Join(dir, "trace.csv"), filepath.Join(dir, "scaledobject.json"), filepath.Join(dir, "samples.csv")
	writeFile(t, trace, []byte(b.String()))
	writeFile(t, so, []byte(toJSON(t, run.app.so)))
	cpuReq, taskCPU, idleCPU := 0.5, float64(burstRenderCPU)/1000, float64(idleCPUMillis)/1000
	return []string{"simulate", "--trace", trace, "--metadata", so, "--policies", simulate.MontageScaler, "--format", "json",
		"--concurrency", "5", "--hpa-sync-period", hpaSyncPeriod.String(), "--resource-metrics-lag", metricResolution.String(),
		"--pod-startup", startupMin.String(), "--pod-startup-jitter", (startupMax - startupMin).String(), "--seed", "1",
		"--pod-startups", joinDurations(startups),
		"--cpu-request", fmt.Sprint(cpuReq), "--task-cpu", fmt.Sprint(taskCPU), "--idle-cpu", fmt.Sprint(idleCPU),
		"--memory-base", fmt.Sprintf("%.1f", 100*300.0/1024), "--memory-per-task", "0",
		"--sample-every", "1s", "--samples", samples}
}

// readSimulated reads simulate's JSON and its samples.
func readSimulated(t *testing.T, out, samplesFile string, secs int) fidelity {
	var rep []struct {
		PodHours           float64 `json:"podHours"`
		ScaleEventsPerHour float64 `json:"scaleEventsPerHour"`
		PeakReplicas       int32   `json:"peakReplicas"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep) != 1 {
		t.Fatalf("e2e: simulate's JSON: %v\n%s", err, out)
	}
	f, err := os.Open(samplesFile)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != secs+1 {
		t.Fatalf("e2e: simulate's samples: %v, %d rows, want %d", err, len(recs)-1, secs)
	}
	fi := fidelity{podSeconds: rep[0].PodHours * 3600, eventsPerHour: rep[0].ScaleEventsPerHour, peak: rep[0].PeakReplicas}
	var work strings.Builder
	for i, r := range recs[1:] {
		if i%5 == 0 {
			q, _ := strconv.Atoi(r[5])
			n, _ := strconv.Atoi(r[6])
			fmt.Fprintf(&work, "%d ", q+n)
		}
		n, err := strconv.Atoi(r[3])
		if err != nil {
			t.Fatalf("e2e: simulate's samples: %q: %v", r, err)
		}
		fi.replicas = append(fi.replicas, int32(n))
	}
	fi.firstUp, fi.backAt = turns(fi.replicas, func(k int) float64 { return float64(k) })
	fi.work = strings.TrimSpace(work.String())
	return fi
}

// liveFidelity is what the live loop did in the window of secs seconds from
// t0: replicas from the Deployment's trajectory, pod-seconds from the
// bridge's pods (creation to gone, Terminating included).
func liveFidelity(ps []point, pods []livePod, t0 time.Time, secs int) fidelity {
	end := t0.Add(time.Duration(secs) * time.Second)
	var fi fidelity
	for k := range secs {
		fi.replicas = append(fi.replicas, at(ps, t0.Add(time.Duration(k)*time.Second)))
	}
	// The exact times of the changes in the window, after the value at t0.
	rs, times := []int32{fi.replicas[0]}, []float64{0}
	for _, p := range ps {
		if p.at.After(t0) && !p.at.After(end) {
			rs, times = append(rs, p.replicas), append(times, p.at.Sub(t0).Seconds())
		}
	}
	events := len(rs) - 1
	fi.firstUp, fi.backAt = turns(rs, func(k int) float64 { return times[k] })
	fi.peak = slices.Max(rs)
	for _, p := range pods {
		from, to := p.created, p.until(end)
		if from.Before(t0) {
			from = t0
		}
		if to.After(end) {
			to = end
		}
		if to.After(from) {
			fi.podSeconds += to.Sub(from).Seconds()
		}
	}
	fi.eventsPerHour = float64(events) / (float64(secs) / 3600)
	return fi
}

// turns finds, in a series of replicas, when (at) it first rose above its
// first value and when it was first back at it after that (NaN: never).
func turns(rs []int32, at func(k int) float64) (up, back float64) {
	up, back = math.NaN(), math.NaN()
	for k, r := range rs {
		switch {
		case math.IsNaN(up) && r > rs[0]:
			up = at(k)
		case !math.IsNaN(up) && r == rs[0]:
			return up, at(k)
		}
	}
	return up, back
}

func sec1(s float64) string {
	if math.IsNaN(s) {
		return "never"
	}
	return strconv.FormatFloat(s, 'f', 1, 64)
}

// every5 prints replicas every 5 s, as the comparison samples them.
func every5(rs []int32) string {
	var b strings.Builder
	for k := 0; k < len(rs); k += 5 {
		fmt.Fprintf(&b, "%d ", rs[k])
	}
	return strings.TrimSpace(b.String())
}

func joinDurations(ds []time.Duration) string {
	if len(ds) == 0 {
		return startupMin.String()
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return strings.Join(out, ",")
}

// workRecorder reads, every second until t ends, the work the scaler sees
// for the ScaledObject montage: queued plus in flight, from its /metrics.
type workRecorder struct {
	mu     sync.Mutex
	points []workPoint
}

type workPoint struct {
	at     time.Time
	queued float64
	flight float64
}

func recordWork(t *testing.T, httpAddr string) *workRecorder {
	w := &workRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			q, f, err := scalerWork(httpAddr)
			if err == nil {
				w.mu.Lock()
				w.points = append(w.points, workPoint{time.Now(), q, f})
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// every5 prints queued+in flight every 5 s of secs from t0.
func (w *workRecorder) every5(t0 time.Time, secs int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	k := 0
	for s := 0; s < secs; s += 5 {
		x := t0.Add(time.Duration(s) * time.Second)
		for k+1 < len(w.points) && !w.points[k+1].at.After(x) {
			k++
		}
		if len(w.points) == 0 || w.points[k].at.After(x) {
			b.WriteString("? ")
			continue
		}
		fmt.Fprintf(&b, "%g ", w.points[k].queued+w.points[k].flight)
	}
	return strings.TrimSpace(b.String())
}

// scalerWork sums the scaler's queued and in-flight gauges of montage.
func scalerWork(httpAddr string) (queued, flight float64, err error) {
	const q, f = "montage_scaler_celery_queued_tasks", "montage_scaler_celery_in_flight_tasks"
	sums, err := scalerSums(httpAddr, "montage", q, f)
	return sums[q], sums[f], err
}
