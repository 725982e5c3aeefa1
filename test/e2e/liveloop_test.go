//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// liveOverlays are the live loop's test overlays of deploy/ (pods on KWOK's
// nodes with the bridge's finalizer; time compressed 4 times).
var liveOverlays = filepath.Join("testdata", "liveloop")

// scenarioLiveLoop starts what the live loop adds to the cluster
// (kube-scheduler, KWOK, metrics-server, kube-state-metrics) and runs its
// scenarios side by side; the other scenarios' pods name no running
// scheduler and stay Pending, as before.
func scenarioLiveLoop(t *testing.T, e *env) {
	l := startLive(t, e.c, burstNS, phase1NS, fidelityNS, podCostOnNS, podCostOffNS)
	t.Run("burst and drain", func(t *testing.T) { t.Parallel(); scenarioBurst(t, e, l) })
	t.Run("scale-in frees idle pods first", func(t *testing.T) { t.Parallel(); scenarioPodCost(t, e, l) })
	t.Run("simulate replays a longer trace's arrivals", func(t *testing.T) { t.Parallel(); scenarioFidelityTrace(t, e, l) })
	t.Run("phase 1 on CPU, then the ADR's cpu and memory triggers beside the queue", func(t *testing.T) {
		t.Parallel()
		scenarioPhase1(t, e, l)
	})
}

// burstNS is the burst's namespace: montage, the one deploy/'s rules and
// dashboard name.
const burstNS = "montage"

// The burst: 60 renders of 20 s, each using 50m of CPU while it runs (5 on
// a pod: 270m, 54 % of its 500m request, under the 65 % trigger: the queue
// decides here; the CPU trigger has its own scenario).
const (
	burstRenders   = 60
	burstRenderFor = 20 * time.Second
	burstRenderCPU = 50
)

// scenarioBurst (issue 23, 1): deploy/'s Montage Deployment and ADR
// ScaledObject (time compressed 4 times, cpu and memory triggers kept) on
// KWOK's nodes, a real Celery worker per Ready pod. A burst of 60 renders
// from one replica: the replicas rise, pods turn Ready after the start-up
// delay, their workers drain the queue, the replicas come back to 1, each
// removed pod's worker finishing its renders first. Every render runs
// exactly once and finishes. Printed: time to the first new Ready pod, to
// the empty queue and to the last render's end, peak replicas, pod-seconds.
// Then the KPIs from the real series of that run.
func scenarioBurst(t *testing.T, e *env, l *live) {
	a := startLiveApp(t, e, l, burstNS, appOptions{})
	s, b, sc, tr := a.s, a.b, a.sc, a.tr

	work := recordWork(t, sc.httpAddr)
	processed0, err := processedCounter(sc.httpAddr)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	burst := time.Now()
	arrivals := []arrival{a.send(t, "render", burstRenders, burstRenderFor)}
	b.waitUntil(t, 6*time.Minute, "every render ends", func(b *bridge) bool { return b.ended() == burstRenders })
	b.check(t)
	backAt := tr.waitFor(t, 5*time.Minute, "return to 1", eq(1))
	b.waitUntil(t, 3*time.Minute, "the removed pods are gone", func(b *bridge) bool { return b.existing() == 1 })
	end := time.Now()
	b.check(t)

	processed1, err := processedCounter(sc.httpAddr)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	t.Logf("the scaler's montage_scaler_celery_tasks_processed_total: %g before the burst, %g after", processed0, processed1)
	pods, renders := b.snapshot()
	fates := renderFates(t, renders, burstRenders)
	up := values(tr.since(burst))
	peak := slices.Max(up)
	if peak <= 1 || up[len(up)-1] != 1 {
		t.Fatalf("the replicas went %v after the burst, want a rise and a return to 1; trajectory: %s", up, tr)
	}
	var firstReady time.Time
	for _, p := range pods {
		if p.created.After(burst.Add(-time.Second)) && !p.readySeen.IsZero() && (firstReady.IsZero() || p.readySeen.Before(firstReady)) {
			firstReady = p.readySeen
		}
	}
	if firstReady.IsZero() {
		t.Fatalf("no pod created after the burst became Ready; bridge: %v", pods)
	}
	podSeconds := 0.0
	for _, p := range pods {
		podSeconds += p.until(end).Sub(p.created).Seconds()
	}
	hosts := map[string]int{}
	for _, f := range fates {
		hosts[f.host]++
	}
	t.Logf("burst of %d renders of %s from 1 replica: first new pod Ready +%.1f s, queue empty (last render started) +%.1f s, last render ended +%.1f s, "+
		"back to 1 replica +%.1f s; peak %d replicas; %d pods, %.0f pod-seconds (creation to gone, from the test's watch); renders per pod %v\ntrajectory: %s",
		burstRenders, burstRenderFor, firstReady.Sub(burst).Seconds(), fates.lastStart().Sub(burst).Seconds(), fates.lastEnd().Sub(burst).Seconds(),
		backAt.Sub(burst).Seconds(), peak, len(pods), podSeconds, hosts, tr)

	t.Run("the KPIs from real series", func(t *testing.T) {
		scenarioKPIs(t, e, kpiRun{s: s, prom: a.prom, tr: tr, pods: pods, renders: len(fates), from: burst, end: end})
	})
	t.Run("simulate replays the same arrivals", func(t *testing.T) {
		time.Sleep(fidelityTail)
		compareWithSimulate(t, e, fidelityRun{name: "burst and drain", app: a, start: burst, end: time.Now(), arrivals: arrivals, work: work, strict: true})
	})
}

// liveApp is deploy/'s Montage Deployment and the ADR's ScaledObject (the
// live loop's overlays) in one namespace: its own redis, worker bridge,
// scaler and Prometheus, the Deployment's replicas recorded from before
// the ScaledObject exists.
type liveApp struct {
	s    *scenario
	r    *servers.Redis
	b    *bridge
	sc   *scalerProc
	prom *servers.Prometheus
	tr   *trajectory
	// so is the ScaledObject as applied (its trigger pointed at sc).
	so map[string]any
}

// startLiveApp starts the app in namespace ns and returns once its first
// pod serves, KEDA has made the ScaledObject's HPA and the scaler hears the
// first worker's heartbeats.
func startLiveApp(t *testing.T, e *env, l *live, ns string, o appOptions) *liveApp {
	s := e.scenario(t, ns)
	r := servers.StartRedis(t)
	b := startBridge(t, s, r.URL(0))
	if o.events == nil {
		// A calendar event over the whole run asking for 1 replica (the
		// minimum): the calendar component takes part, and its dashboard
		// annotation has data, without moving the decision.
		now := time.Now()
		o.events = []calEvent{{now.Add(-time.Minute), now.Add(2 * time.Hour), 1}}
	}
	feed := calendarFeed(t, o.events...)
	args := append([]string{"--calendar-allow-private"}, o.scalerArgs...)
	if o.scalerArgsFor != nil {
		args = append(args, o.scalerArgsFor(s)...)
	}
	sc := s.startScaler(t, "scaler", args...)
	groups := servers.ReadPrometheusRule(t, filepath.Join(repoDir, "deploy", "monitoring", "prometheusrule.yaml"))
	prom := servers.StartPrometheusJobs(t, []servers.ScrapeJob{
		{Name: "kube-state-metrics", Targets: []string{l.ksm}, Interval: time.Second, HonorLabels: true},
		{Name: "montage-scaler", Targets: []string{sc.httpAddr}, Interval: time.Second, HonorLabels: true},
		{Name: "montage", Targets: []string{b.apiAddr}, Interval: time.Second, HonorLabels: true},
	}, 15*time.Second, servers.WriteRuleFile(t, s.dir, groups))

	e.c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: montage-broker, namespace: %[1]s}
stringData: {url: %[2]q}
---
apiVersion: v1
kind: Secret
metadata: {name: montage-calendar, namespace: %[1]s}
stringData: {url: %[3]q}
`, s.ns, r.URL(0), feed))
	dep := kustomizeOne(t, e.c, filepath.Join(liveOverlays, "app"), "Deployment")
	if o.autoscale == "" {
		o.autoscale = "autoscale"
	}
	so := kustomizeOne(t, e.c, filepath.Join(liveOverlays, o.autoscale), "ScaledObject")
	// deploy/ names the namespace montage; a second app moves.
	dep["metadata"].(map[string]any)["namespace"] = s.ns
	so["metadata"].(map[string]any)["namespace"] = s.ns
	md := externalTrigger(t, so)
	md["scalerAddress"] = fmt.Sprintf("127.0.0.1:%d", sc.port())
	md["prometheusURL"] = prom.URL
	// The scaler runs outside the cluster: the latency component takes the
	// current replicas from kube-state-metrics.
	md["replicasQuery"] = fmt.Sprintf(`kube_deployment_spec_replicas{namespace=%q,deployment="montage"}`, s.ns)
	for k, v := range o.metadata {
		md[k] = v
	}
	e.c.apply(t, toJSON(t, dep))
	tr := recordReplicas(t, e.c.client, s.ns, "montage")
	b.waitUntil(t, 3*time.Minute, "the first pod serves", func(b *bridge) bool { return b.serving() == 1 })
	e.c.apply(t, toJSON(t, so))
	s.waitScaledObject(t, "montage")
	// The scaler counts the renders a worker starts from the first
	// heartbeat it hears from it (what a worker did before is not its to
	// count): a load waits until it has heard the first pod's.
	s.waitHeartbeats(t, sc, r.URL(0), 1)
	return &liveApp{s: s, r: r, b: b, sc: sc, prom: prom, tr: tr, so: so}
}

// appOptions vary a live app: the autoscale overlay (under
// testdata/liveloop; default autoscale), the scaler's extra flags, the
// calendar feed's events (default: one asking for 1 replica over the run)
// and trigger metadata set over the overlay's.
type appOptions struct {
	autoscale  string
	scalerArgs []string
	// scalerArgsFor gives more flags once the namespace exists.
	scalerArgsFor func(s *scenario) []string
	events        []calEvent
	metadata      map[string]string
}

// arrival is tasks published together: when the producer was done, how
// many, and how long each runs.
type arrival struct {
	at      time.Time
	n       int
	service time.Duration
}

// send publishes n renders of d (keys prefix-00, ...) with a real Celery
// producer and returns the arrival, timed when the producer is done.
func (a *liveApp) send(t *testing.T, prefix string, n int, d time.Duration) arrival {
	t.Helper()
	tasks := make([]servers.Task, n)
	for i := range tasks {
		tasks[i] = servers.Render(fmt.Sprintf("%s-%02d", prefix, i), "video", d, burstRenderCPU)
	}
	servers.SendTasks(t, servers.ProducerOptions{BrokerURL: a.r.URL(0)}, tasks...)
	return arrival{at: time.Now(), n: n, service: d}
}

// until is when the pod was gone, or end if it is still there.
func (p livePod) until(end time.Time) time.Time {
	if p.gone.IsZero() {
		return end
	}
	return p.gone
}

// fate is one render's start and end as its records say.
type fate struct {
	host       string
	start, end time.Time
}

type fates map[string]fate

func (fs fates) lastStart() time.Time {
	var last time.Time
	for _, f := range fs {
		if f.start.After(last) {
			last = f.start
		}
	}
	return last
}

func (fs fates) lastEnd() time.Time {
	var last time.Time
	for _, f := range fs {
		if f.end.After(last) {
			last = f.end
		}
	}
	return last
}

// renderFates checks that each of the n renders started exactly once and
// ended exactly once, on the worker it started on, and returns their fates.
func renderFates(t *testing.T, records []servers.RenderEvent, n int) fates {
	t.Helper()
	out := fates{}
	starts, ends := map[string]int{}, map[string]int{}
	var problems []string
	for _, ev := range records {
		at := time.Unix(0, int64(ev.At*float64(time.Second)))
		f := out[ev.Key]
		switch ev.Event {
		case "start":
			starts[ev.Key]++
			f.host, f.start = ev.Host, at
		case "end":
			ends[ev.Key]++
			if ev.Host != f.host {
				problems = append(problems, fmt.Sprintf("%s started on %s and ended on %s", ev.Key, f.host, ev.Host))
			}
			f.end = at
		}
		out[ev.Key] = f
	}
	for k := range out {
		if starts[k] != 1 || ends[k] != 1 {
			problems = append(problems, fmt.Sprintf("%s started %d times and ended %d times", k, starts[k], ends[k]))
		}
	}
	if len(out) != n {
		problems = append(problems, fmt.Sprintf("%d renders recorded, want %d", len(out), n))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("e2e: every render must run exactly once and finish: %s", strings.Join(problems, "; "))
	}
	return out
}

// externalTrigger returns the metadata of a ScaledObject's one external-push
// trigger.
func externalTrigger(t *testing.T, so map[string]any) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, tr := range so["spec"].(map[string]any)["triggers"].([]any) {
		trig := tr.(map[string]any)
		if trig["type"] == "external-push" {
			found = append(found, trig["metadata"].(map[string]any))
		}
	}
	if len(found) != 1 {
		t.Fatalf("e2e: the ScaledObject has %d external-push triggers, want 1", len(found))
	}
	return found[0]
}

// calEvent is one event of a test feed: from start to end, asking for
// replicas.
type calEvent struct {
	start, end time.Time
	replicas   int
}

// calendarFeed serves, until t ends, an iCalendar feed with the events; it
// returns the feed's URL.
func calendarFeed(t *testing.T, events ...calEvent) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//montage-scaler//e2e//EN\n")
	for i, ev := range events {
		fmt.Fprintf(&b, "BEGIN:VEVENT\nUID:e2e-live-%d@montage.test\nDTSTAMP:%s\nDTSTART:%s\nDTEND:%s\nSUMMARY:Rendering session\nX-MONTAGE-REPLICAS:%d\nEND:VEVENT\n",
			i, icsTime(time.Now()), icsTime(ev.start), icsTime(ev.end), ev.replicas)
	}
	b.WriteString("END:VCALENDAR\n")
	ics := strings.ReplaceAll(b.String(), "\n", "\r\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write([]byte(ics))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/montage.ics"
}

// waitHeartbeats waits until the scaler hears n workers' heartbeats on the
// broker (its explain's celery detail, heartbeatWorkers).
func (s *scenario) waitHeartbeats(t *testing.T, sc *scalerProc, brokerURL string, n int) {
	t.Helper()
	file := filepath.Join(s.dir, "heartbeats.yaml")
	writeFile(t, file, []byte(fmt.Sprintf("brokerURL: %s\nqueues: celery,video\n", brokerURL)))
	waitUntil(t, time.Minute, 500*time.Millisecond, fmt.Sprintf("the scaler hears %d workers' heartbeats", n), func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := runStdout(ctx, s.e.scalerBin, "explain", "--addr", sc.grpcAddr, "--metadata", file, "--format", "json")
		if err != nil {
			return false, err
		}
		var ex struct {
			Components []struct {
				Name   string `json:"name"`
				Detail struct {
					HeartbeatWorkers int `json:"heartbeatWorkers"`
				} `json:"detail"`
			} `json:"components"`
		}
		if err := json.Unmarshal([]byte(out), &ex); err != nil {
			return false, fmt.Errorf("explain: %v: %s", err, out)
		}
		for _, c := range ex.Components {
			if c.Name == "celery" {
				return c.Detail.HeartbeatWorkers == n, fmt.Errorf("%d workers heard", c.Detail.HeartbeatWorkers)
			}
		}
		return false, fmt.Errorf("no celery component: %s", out)
	})
}

// runStdout runs a command and returns its standard output alone (what it
// prints for people on stderr stays out of the JSON), with stderr in the
// error.
func runStdout(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, stderr.String())
	}
	return string(out), nil
}

// processedCounter reads the scaler's processed-task counter for the
// ScaledObject montage from its /metrics.
func processedCounter(httpAddr string) (float64, error) {
	sums, err := scalerSums(httpAddr, "montage", "montage_scaler_celery_tasks_processed_total")
	if err != nil {
		return 0, err
	}
	v, ok := sums["montage_scaler_celery_tasks_processed_total"]
	if !ok {
		return 0, fmt.Errorf("the scaler exports no montage_scaler_celery_tasks_processed_total for montage")
	}
	return v, nil
}

// scalerSums reads the scaler's /metrics and sums, per name, the samples of
// the series named there, of ScaledObject so ("": any); a name without a
// sample is absent.
func scalerSums(httpAddr, so string, names ...string) (map[string]float64, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	sums := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, _, ok := strings.Cut(line, "{")
		if !ok || !slices.Contains(names, name) || (so != "" && label(line, "scaledobject") != so) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", line, err)
		}
		sums[name] += v
	}
	return sums, nil
}

// median of xs (sorted in place); NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
