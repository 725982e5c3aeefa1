package podcost

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/kube"
)

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// cluster is a fake API: a ScaledObject montage over deployments/montage
// whose scale says replicas (selector app=montage), its pods, and a
// reactor that refuses patches while refuse is set. Unit tests of the
// writer's bookkeeping; the live loop (test/e2e) proves it on a real API.
type cluster struct {
	dyn      *dynfake.FakeDynamicClient
	replicas int64
	refuse   bool
	patches  int
}

func newCluster(t *testing.T, replicas int64, pods ...string) *cluster {
	t.Helper()
	objs := []runtime.Object{&unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": map[string]any{"namespace": "montage", "name": "montage"},
		"spec": map[string]any{"scaleTargetRef": map[string]any{"name": "montage"}}}}}
	for _, p := range pods {
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"namespace": "montage", "name": p, "labels": map[string]any{"app": "montage"}}}})
	}
	// A pod of another app, which the selector leaves out.
	objs = append(objs, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"namespace": "montage", "name": "other", "labels": map[string]any{"app": "other"}}}})
	c := &cluster{replicas: replicas}
	c.dyn = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{kube.ScaledObjects(): "ScaledObjectList", podsGVR: "PodList"}, objs...)
	c.dyn.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "autoscaling/v1", "kind": "Scale",
			"metadata": map[string]any{"name": "montage", "namespace": "montage"},
			"status":   map[string]any{"replicas": c.replicas, "selector": "app=montage"}}}, nil
	})
	c.dyn.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if c.refuse {
			return true, nil, errors.New(`pods "x" is forbidden: User "system:serviceaccount:montage-scaler:montage-scaler" cannot patch resource "pods"`)
		}
		c.patches++
		return false, nil, nil
	})
	return c
}

// costs is every pod's annotation, "-" without one, in name order.
func (c *cluster) costs(t *testing.T) string {
	t.Helper()
	l, err := c.dyn.Resource(podsGVR).Namespace("montage").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range l.Items {
		v, ok := it.GetAnnotations()[Annotation]
		if !ok {
			v = "-"
		}
		out = append(out, it.GetName()+"="+v)
	}
	return strings.Join(out, " ")
}

func target(desired float64, workers ...celery.WorkerLoad) []Target {
	return []Target{{Namespace: "montage", Name: "montage", Decision: decide.Decision{Desired: &desired,
		Components: []decide.ComponentResult{{Name: "celery", Detail: celery.Backlog{Workers: workers}}}}}}
}

func TestWriterKeepsCostsWhileBelowAndClearsThemAfter(t *testing.T) {
	c := newCluster(t, 4, "p1", "p2", "p3", "p4")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	w := New(Options{Kube: kube.New(c.dyn), Now: func() time.Time { return now }, Registerer: reg})
	ctx := context.Background()
	busy := []celery.WorkerLoad{wl("celery@p1", 0), wl("celery@p2", 2), wl("celery@p3", 1), wl("celery@p4", 0)}

	// At the decision (4 of 4): nothing to write.
	w.Pass(ctx, target(4, busy...))
	if got := c.costs(t); got != "other=- p1=- p2=- p3=- p4=-" || c.patches != 0 {
		t.Fatalf("not below: costs %s after %d patches", got, c.patches)
	}
	// Below (2 of 4): the busy pods cost their tasks.
	w.Pass(ctx, target(2, busy...))
	if got := c.costs(t); got != "other=- p1=- p2=2 p3=1 p4=-" || c.patches != 2 {
		t.Fatalf("below: costs %s after %d patches", got, c.patches)
	}
	// The same again: no write.
	now = now.Add(time.Minute)
	w.Pass(ctx, target(2, busy...))
	if c.patches != 2 {
		t.Fatalf("an unchanged plan patched: %d patches", c.patches)
	}
	// p3 finishes, p1 starts: p3's cost is cleared (its last patch a minute
	// ago), p1's set (never patched).
	now = now.Add(time.Second)
	w.Pass(ctx, target(2, wl("celery@p1", 1), wl("celery@p2", 2), wl("celery@p3", 0), wl("celery@p4", 0)))
	if got := c.costs(t); got != "other=- p1=1 p2=2 p3=- p4=-" || c.patches != 4 {
		t.Fatalf("after a change: costs %s after %d patches", got, c.patches)
	}
	// p1 changes again within MinGap: postponed, shown in the report.
	now = now.Add(5 * time.Second)
	w.Pass(ctx, target(2, wl("celery@p1", 3), wl("celery@p2", 2), wl("celery@p3", 0), wl("celery@p4", 0)))
	rep, _ := w.Report("montage", "montage")
	if got := c.costs(t); got != "other=- p1=1 p2=2 p3=- p4=-" || rep.Postponed != 1 {
		t.Fatalf("within MinGap: costs %s, %d postponed", got, rep.Postponed)
	}
	// The decision rises back to 4: every cost of ours is cleared once
	// MinGap allows.
	now = now.Add(DefaultMinGap)
	w.Pass(ctx, target(4, busy...))
	if got := c.costs(t); got != "other=- p1=- p2=- p3=- p4=-" {
		t.Fatalf("no longer below: costs %s", got)
	}
	if got := testutil.ToFloat64(w.writes.WithLabelValues("montage", "montage", "clear")); got != 3 {
		t.Errorf("%g clears counted, want 3", got)
	}
	// Nothing of ours left: the next pass lists no pods.
	before := len(c.dyn.Actions())
	w.Pass(ctx, target(4, busy...))
	for _, a := range c.dyn.Actions()[before:] {
		if a.GetVerb() == "list" {
			t.Fatalf("a pass with nothing to clear listed the pods")
		}
	}
}

func TestWriterFailsOpen(t *testing.T) {
	c := newCluster(t, 3, "p1", "p2", "p3")
	c.refuse = true
	var logs bytes.Buffer
	w := New(Options{Kube: kube.New(c.dyn), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	w.Pass(context.Background(), target(1, wl("celery@p1", 2)))
	rep, ok := w.Report("montage", "montage")
	if !ok || !strings.Contains(rep.Error, "forbidden") {
		t.Fatalf("report %+v, want the refusal", rep)
	}
	if got := testutil.ToFloat64(w.errs.WithLabelValues("montage", "montage", "patch")); got != 1 {
		t.Errorf("%g refused patches counted, want 1", got)
	}
	if got := c.costs(t); got != "other=- p1=- p2=- p3=-" {
		t.Errorf("costs %s after a refusal", got)
	}
	// The same refusal again: counted, not logged again.
	w.Pass(context.Background(), target(1, wl("celery@p1", 2)))
	if got := testutil.ToFloat64(w.errs.WithLabelValues("montage", "montage", "patch")); got != 2 {
		t.Errorf("%g refused patches counted, want 2", got)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "scaling goes on without them") {
		t.Errorf("%d warnings for one refusal, want 1:\n%s", n, logs.String())
	}
}

func TestLookWritesNothing(t *testing.T) {
	c := newCluster(t, 3, "p1", "p2", "p3")
	rep := Look(context.Background(), kube.New(c.dyn), target(1, wl("celery@p1", 2), wl("celery@p2", 0))[0])
	if rep.Target != "deployments/montage" || !rep.Below || len(rep.Pods) != 3 || c.patches != 0 {
		t.Fatalf("look: %+v after %d patches", rep, c.patches)
	}
	if got := costs(rep.Plan); got != "p1=2* p2=- p3=-" {
		t.Errorf("plan %s", got)
	}
}
