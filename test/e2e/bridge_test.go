//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/montage/montage-scaler/test/servers"
)

// bridge stands in for the kubelet of the live loop's Deployment: for each
// Ready pod it runs a real Celery worker named celery@<pod> (acks_late,
// prefetch 1, a pool of 5 threads: deploy/app's settings, with threads so
// that 8 pods cost 8 Python processes, not 48); when the pod gets a
// deletionTimestamp it sends SIGTERM (Celery's warm shutdown: running
// renders finish) and SIGKILL at the deadline (deletionTimestamp), and it
// removes the pod's finalizer once the worker has exited, so KWOK deletes
// the pod then and not before.
//
// It also writes each pod's CPU usage for KWOK (idle plus the CPU of the
// renders its worker runs, from the renders' own start and end records),
// keeps every render's fate, and serves, as the pods' API would, a request
// histogram per Ready pod (http_request_duration_seconds{namespace,pod})
// fed by a steady load spread evenly over the Ready pods.
type bridge struct {
	c      *cluster
	ns     string
	dir    string
	worker servers.WorkerOptions
	ctl    *redis.Client
	start  time.Time
	// apiAddr is host:port of the pods' API metrics.
	apiAddr string

	mu      sync.Mutex
	pods    map[string]*livePod
	renders []servers.RenderEvent
	errs    []string
	change  chan struct{}
}

// livePod is what the bridge saw of one pod.
type livePod struct {
	name    string
	created time.Time // metadata.creationTimestamp (1 s resolution)
	// readySeen is when the bridge's watch first saw the pod Ready (zero:
	// never).
	readySeen time.Time
	// deleting is when the watch first saw its deletionTimestamp; gone
	// when the watch saw it deleted.
	deleting, gone time.Time
	node           string // spec.nodeName
	worker         *servers.Worker
	workerReady    bool
	// workerReadyAt is when the bridge first saw the worker ready (its
	// "ready." line), polled every 100 ms.
	workerReadyAt time.Time
	cpuMillis     int // the usage last written to the pod
	// The pod's API histogram: bucket counts, sum, count.
	buckets    []float64
	sum, count float64
}

// apiBuckets are the API histogram's bucket bounds, in seconds.
var apiBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// startBridge watches the pods of Deployment montage in s's namespace until
// t ends; then it stops every worker.
func startBridge(t *testing.T, s *scenario, brokerURL string) *bridge {
	t.Helper()
	b := &bridge{c: s.e.c, ns: s.ns, dir: filepath.Join(s.dir, "workers"), start: time.Now(),
		worker: servers.WorkerOptions{BrokerURL: brokerURL, Queues: []string{"celery", "video"},
			AcksLate: true, Prefetch: 1, Concurrency: 5, Pool: "threads", Name: "celery"},
		pods: map[string]*livePod{}, change: make(chan struct{}, 1)}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	opt, err := redis.ParseURL(brokerURL)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	b.ctl = redis.NewClient(opt)
	api := httptest.NewServer(http.HandlerFunc(b.serveAPIMetrics))
	b.apiAddr = strings.TrimPrefix(api.URL, "http://")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){b.watchPods, b.followRenders, b.load} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		api.Close()
		b.mu.Lock()
		var ws []*servers.Worker
		for _, p := range b.pods {
			if p.worker != nil {
				ws = append(ws, p.worker)
			}
		}
		b.mu.Unlock()
		for _, w := range ws {
			w.Kill()
		}
		b.ctl.Close()
	})
	return b
}

// failf records a failure of a background loop; check reports them.
func (b *bridge) failf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
}

// check fails the test with what went wrong in the bridge's loops.
func (b *bridge) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Fatalf("e2e: worker bridge: %s", strings.Join(b.errs, "; "))
	}
}

func (b *bridge) notify() {
	select {
	case b.change <- struct{}{}:
	default:
	}
}

// watchPods lists and watches the Deployment's pods and acts on each.
func (b *bridge) watchPods(ctx context.Context) {
	pods := b.c.client.CoreV1().Pods(b.ns)
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=montage"}
	for ctx.Err() == nil {
		list, err := pods.List(ctx, sel)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for i := range list.Items {
			b.see(ctx, &list.Items[i], false)
		}
		opts := sel
		opts.ResourceVersion = list.ResourceVersion
		w, err := pods.Watch(ctx, opts)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				b.see(ctx, p, ev.Type == watch.Deleted)
			}
		}
		w.Stop()
	}
}

// see acts on one pod's latest state: a worker for a Ready pod, a warm
// shutdown for a deleted one, its finalizer removed once no worker runs.
func (b *bridge) see(ctx context.Context, pod *corev1.Pod, deleted bool) {
	now := time.Now()
	b.mu.Lock()
	p := b.pods[pod.Name]
	if p == nil {
		p = &livePod{name: pod.Name, created: pod.CreationTimestamp.Time, buckets: make([]float64, len(apiBuckets))}
		b.pods[pod.Name] = p
	}
	defer b.notify()
	if deleted {
		if p.gone.IsZero() {
			p.gone = now
		}
		b.mu.Unlock()
		return
	}
	if pod.DeletionTimestamp != nil {
		first := p.deleting.IsZero()
		if first {
			p.deleting = now
		}
		w := p.worker
		b.mu.Unlock()
		switch {
		case w == nil:
			b.removeFinalizer(ctx, pod.Name)
		case first:
			w.Terminate()
			deadline := pod.DeletionTimestamp.Time
			go func() {
				select {
				case <-w.Done():
				case <-time.After(time.Until(deadline)):
					w.Kill() // the grace period is over, as a kubelet would
				case <-ctx.Done():
				}
			}()
		}
		return
	}
	p.node = pod.Spec.NodeName
	start := p.worker == nil && podReady(pod)
	if start && p.readySeen.IsZero() {
		p.readySeen = now
	}
	b.mu.Unlock()
	if start {
		b.startWorker(ctx, pod.Name)
	}
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// startWorker runs the pod's Celery worker; when it exits, the pod's
// finalizer goes (a worker that exits while its pod is not being deleted
// is a failure).
func (b *bridge) startWorker(ctx context.Context, pod string) {
	dir := filepath.Join(b.dir, pod)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.failf("%s: %v", pod, err)
		return
	}
	o := b.worker
	o.Host = pod
	o.Queues = append(slices.Clone(o.Queues), podQueue(pod))
	w, err := servers.LaunchCeleryWorker(dir, o)
	if err != nil {
		b.failf("%s: %v", pod, err)
		return
	}
	b.mu.Lock()
	b.pods[pod].worker = w
	b.mu.Unlock()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.Done():
				b.mu.Lock()
				deleting := !b.pods[pod].deleting.IsZero()
				b.mu.Unlock()
				if !deleting && ctx.Err() == nil {
					b.failf("the worker of pod %s exited while the pod was not being deleted: %s", pod, lastLines(w.Log(), 20))
				}
				b.removeFinalizer(ctx, pod)
				return
			case <-tick.C:
				b.mu.Lock()
				if !b.pods[pod].workerReady && w.Ready() {
					b.pods[pod].workerReady, b.pods[pod].workerReadyAt = true, time.Now()
					b.notify()
				}
				b.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
}

func (b *bridge) removeFinalizer(ctx context.Context, pod string) {
	if ctx.Err() != nil {
		return
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	_, err := b.c.client.CoreV1().Pods(b.ns).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "not found") {
		b.failf("removing the finalizer of %s: %v", pod, err)
	}
}

// followRenders reads the renders' start and end records as they come and
// writes each pod's CPU usage for KWOK: idle plus the CPU of the renders
// its worker runs.
func (b *bridge) followRenders(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var next int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		raw, err := b.ctl.LRange(rctx, servers.RendersKey, next, -1).Result()
		cancel()
		if err != nil || len(raw) == 0 {
			continue
		}
		next += int64(len(raw))
		b.mu.Lock()
		for _, r := range raw {
			var ev servers.RenderEvent
			if err := json.Unmarshal([]byte(r), &ev); err != nil {
				b.errs = append(b.errs, fmt.Sprintf("render record %q: %v", r, err))
				continue
			}
			b.renders = append(b.renders, ev)
		}
		busy := map[string]int{}
		for _, ev := range b.running() {
			busy[podOf(ev.Host)] += ev.CPUMillis
		}
		type write struct {
			pod    string
			millis int
		}
		var writes []write
		for name, p := range b.pods {
			if cpu := idleCPUMillis + busy[name]; cpu != p.cpuMillis && p.gone.IsZero() {
				p.cpuMillis = cpu
				writes = append(writes, write{name, cpu})
			}
		}
		b.mu.Unlock()
		b.notify()
		for _, w := range writes {
			patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"kwok.x-k8s.io/usage-cpu":"%dm"}}}`, w.millis)
			_, err := b.c.client.CoreV1().Pods(b.ns).Patch(ctx, w.pod, types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "not found") {
				b.failf("usage of %s: %v", w.pod, err)
			}
		}
	}
}

// running returns the renders started and not ended. b.mu is held.
func (b *bridge) running() []servers.RenderEvent {
	started := map[string]servers.RenderEvent{}
	for _, ev := range b.renders {
		switch ev.Event {
		case "start":
			started[ev.Key] = ev
		case "end":
			delete(started, ev.Key)
		}
	}
	out := make([]servers.RenderEvent, 0, len(started))
	for _, ev := range started {
		out = append(out, ev)
	}
	return out
}

// podQueue is the queue only pod's worker consumes (besides the app's),
// for tasks a scenario sends to one pod; the scaler's queues leave it out.
func podQueue(pod string) string { return "pod." + pod }

// podOf is the pod of a worker's node name (celery@<pod>).
func podOf(host string) string {
	_, pod, _ := strings.Cut(host, "@")
	return pod
}

// load sends the pods' API a steady load: 8 requests every 250 ms to each
// Ready pod (an even spread, as a Service's), 20–30 ms each.
func (b *bridge) load(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b.mu.Lock()
		for _, p := range b.pods {
			if !p.workerReady || !p.deleting.IsZero() || !p.gone.IsZero() {
				continue
			}
			for range 8 {
				n++
				v := 0.02 + float64(n%11)/1000
				p.sum += v
				p.count++
				for i, le := range apiBuckets {
					if v <= le {
						p.buckets[i]++
					}
				}
			}
		}
		b.mu.Unlock()
	}
}

// serveAPIMetrics exposes each serving pod's request histogram with the
// labels a PodMonitor gives it (namespace, pod).
func (b *bridge) serveAPIMetrics(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.pods))
	for name, p := range b.pods {
		if p.workerReady && p.gone.IsZero() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out strings.Builder
	out.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for _, name := range names {
		p := b.pods[name]
		lbl := fmt.Sprintf(`namespace=%q,pod=%q`, b.ns, name)
		for i, le := range apiBuckets {
			fmt.Fprintf(&out, "http_request_duration_seconds_bucket{%s,le=%q} %g\n", lbl, strconv.FormatFloat(le, 'g', -1, 64), p.buckets[i])
		}
		fmt.Fprintf(&out, "http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %g\n", lbl, p.count)
		fmt.Fprintf(&out, "http_request_duration_seconds_sum{%s} %g\n", lbl, p.sum)
		fmt.Fprintf(&out, "http_request_duration_seconds_count{%s} %g\n", lbl, p.count)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(out.String()))
}

// waitUntil waits until cond holds over the bridge's state, at most limit;
// the test fails with what the bridge saw otherwise.
func (b *bridge) waitUntil(t *testing.T, limit time.Duration, what string, cond func(b *bridge) bool) time.Time {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond(b)
		b.mu.Unlock()
		if ok {
			return time.Now()
		}
		select {
		case <-b.change:
		case <-time.After(time.Second):
		case <-deadline.C:
			t.Fatalf("e2e: %s: not within %s; bridge: %s", what, limit, b)
		}
	}
}

// serving is how many pods have a ready worker and are not being deleted.
// b.mu is held.
func (b *bridge) serving() int {
	n := 0
	for _, p := range b.pods {
		if p.workerReady && p.deleting.IsZero() && p.gone.IsZero() {
			n++
		}
	}
	return n
}

// existing is how many pods exist (Terminating ones included). b.mu is held.
func (b *bridge) existing() int {
	n := 0
	for _, p := range b.pods {
		if p.gone.IsZero() {
			n++
		}
	}
	return n
}

// ended is how many renders have ended. b.mu is held.
func (b *bridge) ended() int {
	n := 0
	for _, ev := range b.renders {
		if ev.Event == "end" {
			n++
		}
	}
	return n
}

// String sums up the pods and renders for a failure message.
func (b *bridge) String() string {
	var parts []string
	names := make([]string, 0, len(b.pods))
	for name := range b.pods {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := b.pods[name]
		state := "pending"
		switch {
		case !p.gone.IsZero():
			state = "gone"
		case !p.deleting.IsZero():
			state = "terminating"
		case p.workerReady:
			state = "serving"
		case !p.readySeen.IsZero():
			state = "ready, worker starting"
		}
		parts = append(parts, fmt.Sprintf("%s %s", name, state))
	}
	return fmt.Sprintf("pods [%s]; renders: %d records, %d running, %d ended", strings.Join(parts, ", "), len(b.renders), len(b.running()), b.ended())
}

// snapshot returns copies of the pods and the render records.
func (b *bridge) snapshot() ([]livePod, []servers.RenderEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pods := make([]livePod, 0, len(b.pods))
	for _, p := range b.pods {
		pods = append(pods, *p)
	}
	slices.SortFunc(pods, func(x, y livePod) int { return x.created.Compare(y.created) })
	return pods, slices.Clone(b.renders)
}
