package podcost

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/kube"
)

// Defaults of the writer's timing: a pass every Every; one pod patched at
// most once per MinGap by one scaler replica.
const (
	DefaultEvery  = 5 * time.Second
	DefaultMinGap = 15 * time.Second
)

// Target is one ScaledObject and its current decision.
type Target struct {
	Namespace, Name string
	Decision        decide.Decision
}

// Options configure a Writer.
type Options struct {
	Kube   *kube.Client
	MinGap time.Duration
	Logger *slog.Logger
	// Registerer takes the writer's metrics; nil: none.
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Writer keeps the pods' costs of every ScaledObject it is shown. Both
// replicas of the scaler run one: each computes the same costs from the
// same heartbeats and patches a pod only when its annotations differ from
// what it wants, at most once per MinGap, so that while their reads
// differ (a heartbeat apart) a pod takes at most two patches per MinGap.
type Writer struct {
	o      Options
	writes *prometheus.CounterVec
	errs   *prometheus.CounterVec
	mu     sync.Mutex
	plans  map[[2]string]Report
	last   map[[2]string]time.Time // namespace, pod → last patch
	dirty  map[[2]string]bool      // namespace, ScaledObject → costs of ours may be set
	warned map[[2]string]string    // the last warning logged per ScaledObject
}

// Report is the latest plan for one ScaledObject, for Explain.
type Report struct {
	Plan
	// Target is the scale target, such as deployments/montage.
	Target string `json:"target,omitempty"`
	// Error is why the pass failed (the API refused): scaling goes on as
	// without the writer.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
	// Postponed counts the pods whose patch waits for MinGap.
	Postponed int `json:"postponed,omitempty"`
}

// New returns a Writer.
func New(o Options) *Writer {
	if o.MinGap <= 0 {
		o.MinGap = DefaultMinGap
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{o: o, plans: map[[2]string]Report{}, last: map[[2]string]time.Time{}, dirty: map[[2]string]bool{}, warned: map[[2]string]string{},
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "montage_scaler_pod_cost_writes_total",
			Help: "Pod patches of the pod-cost writer, by action: set a cost, clear one."}, []string{"namespace", "scaledobject", "action"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "montage_scaler_pod_cost_errors_total",
			Help: "Kubernetes API calls of the pod-cost writer that failed (scaling goes on as without it), by operation."}, []string{"namespace", "scaledobject", "operation"})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(w.writes, w.errs)
	}
	return w
}

// Run makes a pass every every over the targets each returns, until ctx
// ends.
func (w *Writer) Run(ctx context.Context, every time.Duration, targets func() []Target) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Pass(ctx, targets())
		}
	}
}

// Pass brings every target's pod costs up to date once.
func (w *Writer) Pass(ctx context.Context, targets []Target) {
	for _, t := range targets {
		w.one(ctx, t)
	}
}

// Report returns the latest plan for namespace/name.
func (w *Writer) Report(namespace, name string) (Report, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.plans[[2]string{namespace, name}]
	return r, ok
}

func (w *Writer) one(ctx context.Context, t Target) {
	key := [2]string{t.Namespace, t.Name}
	if inapplicable(t) != "" {
		// Not a celery ScaledObject, or no decision now: nothing to act on,
		// and costs already written stay until a decision says otherwise.
		return
	}
	now := w.o.Now()
	w.mu.Lock()
	dirty, seen := w.dirty[key]
	w.mu.Unlock()
	// Not below, and no cost of ours left since the last look: no list (a
	// first look, after a start, clears what a previous life of the scaler
	// left).
	rep, op, err := look(ctx, w.o.Kube, t, !seen || dirty)
	rep.At = now
	defer func() {
		w.mu.Lock()
		w.plans[key] = rep
		w.mu.Unlock()
	}()
	if err != nil {
		w.fail(key, op, err, &rep)
		return
	}
	if rep.Warning != "" {
		w.warn(key, rep.Warning)
	}
	left := rep.Below // while below, costs of ours stay
	for _, p := range rep.Pods {
		if p.Write && !w.patch(ctx, t, p, now, &rep) {
			left = true // a clear postponed or refused
		}
	}
	w.mu.Lock()
	w.dirty[key] = left
	w.mu.Unlock()
}

// Look reads the scale target and its pods and plans their costs, writing
// nothing (check --pod-costs).
func Look(ctx context.Context, kc *kube.Client, t Target) Report {
	if why := inapplicable(t); why != "" {
		return Report{Plan: Plan{Warning: why}}
	}
	r, _, err := look(ctx, kc, t, true)
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// inapplicable says why t gets no pod costs; "" when it does.
func inapplicable(t Target) string {
	if _, ok := celeryBacklog(t.Decision); !ok {
		return "no celery component: pod costs follow Celery workers' heartbeats"
	}
	if t.Decision.Desired == nil {
		return "no decision: no pod costs"
	}
	return ""
}

// look reads the target's scale, then, when the decision is below its
// replicas or always is set, its pods, and plans their costs; a failed call
// is its error and the operation that failed. t is applicable.
func look(ctx context.Context, kc *kube.Client, t Target, always bool) (Report, string, error) {
	var rep Report
	sc, target, err := kc.ScaleOf(ctx, t.Namespace, t.Name)
	rep.Target = target
	if err != nil {
		return rep, "scale", err
	}
	desired := *t.Decision.Desired
	rep.Plan = Plan{Below: math.Ceil(desired) < float64(sc.Replicas), Desired: desired, Current: sc.Replicas}
	if !rep.Below && !always {
		return rep, "", nil
	}
	items, err := kc.ListPods(ctx, t.Namespace, sc.Selector)
	if err != nil {
		return rep, "list", err
	}
	backlog, _ := celeryBacklog(t.Decision)
	rep.Plan = Build(desired, sc.Replicas, backlog.Workers, podsOf(items))
	return rep, "", nil
}

// patch writes one pod's wanted cost; false when it did not (postponed by
// MinGap or refused).
func (w *Writer) patch(ctx context.Context, t Target, p Want, now time.Time, rep *Report) bool {
	pk := [2]string{t.Namespace, p.Pod}
	w.mu.Lock()
	last, ok := w.last[pk]
	w.mu.Unlock()
	if ok && now.Sub(last) < w.o.MinGap {
		rep.Postponed++
		return false
	}
	ann, action := map[string]*string{Annotation: nil, Marker: nil}, "clear"
	if p.Cost != nil {
		v, mark := strconv.FormatInt(*p.Cost, 10), "true"
		ann, action = map[string]*string{Annotation: &v, Marker: &mark}, "set"
	}
	if err := w.o.Kube.AnnotatePod(ctx, t.Namespace, p.Pod, ann); err != nil {
		w.fail([2]string{t.Namespace, t.Name}, "patch", err, rep)
		return false
	}
	w.mu.Lock()
	w.last[pk] = now
	w.mu.Unlock()
	w.writes.WithLabelValues(t.Namespace, t.Name, action).Inc()
	return true
}

// fail counts a refused call and logs it once per distinct error: the
// decision and scaling are untouched.
func (w *Writer) fail(key [2]string, op string, err error, rep *Report) {
	w.errs.WithLabelValues(key[0], key[1], op).Inc()
	rep.Error = err.Error()
	w.warn(key, "pod costs not written, scaling goes on without them: "+err.Error())
}

func (w *Writer) warn(key [2]string, msg string) {
	w.mu.Lock()
	same := w.warned[key] == msg
	w.warned[key] = msg
	w.mu.Unlock()
	if !same {
		w.o.Logger.Warn(msg, "namespace", key[0], "scaledobject", key[1])
	}
}

// celeryBacklog is the celery component's evidence in a decision.
func celeryBacklog(d decide.Decision) (celery.Backlog, bool) {
	for _, c := range d.Components {
		if b, ok := c.Detail.(celery.Backlog); ok {
			return b, true
		}
	}
	return celery.Backlog{}, false
}

// podsOf reads the pods' names and annotations.
func podsOf(items []unstructured.Unstructured) []Pod {
	out := make([]Pod, 0, len(items))
	for _, it := range items {
		a := it.GetAnnotations()
		_, ours := a[Marker]
		out = append(out, Pod{Name: it.GetName(), Cost: a[Annotation], Ours: ours, Deleting: it.GetDeletionTimestamp() != nil})
	}
	return out
}
