//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// point is one value of Deployment.spec.replicas and when it was seen.
type point struct {
	at       time.Time
	replicas int32
}

// trajectory records every change of one Deployment's spec.replicas, as
// KEDA and the HPA write it, from a watch.
type trajectory struct {
	mu     sync.Mutex
	points []point
	change chan struct{}
}

// recordReplicas watches namespace/name until t ends.
func recordReplicas(t testing.TB, client kubernetes.Interface, namespace, name string) *trajectory {
	t.Helper()
	tr := &trajectory{change: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		sel := fields.OneTermEqualSelector("metadata.name", name).String()
		for ctx.Err() == nil {
			list, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for i := range list.Items {
				tr.see(&list.Items[i])
			}
			w, err := client.AppsV1().Deployments(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if d, ok := ev.Object.(*appsv1.Deployment); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
					tr.see(d)
				}
			}
			w.Stop()
		}
	}()
	return tr
}

func (tr *trajectory) see(d *appsv1.Deployment) {
	r := int32(1) // the API's default for a Deployment without spec.replicas
	if d.Spec.Replicas != nil {
		r = *d.Spec.Replicas
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n := len(tr.points); n > 0 && tr.points[n-1].replicas == r {
		return
	}
	tr.points = append(tr.points, point{at: time.Now(), replicas: r})
	select {
	case tr.change <- struct{}{}:
	default:
	}
}

// snapshot returns the points seen so far.
func (tr *trajectory) snapshot() []point {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]point(nil), tr.points...)
}

// since returns the points from the value current at from on: the first
// point is that value (with at = from), then every change after from.
func (tr *trajectory) since(from time.Time) []point {
	var out []point
	for _, p := range tr.snapshot() {
		if !p.at.After(from) {
			out = []point{{at: from, replicas: p.replicas}}
			continue
		}
		out = append(out, p)
	}
	return out
}

// values returns the replicas of points in order.
func values(ps []point) []int32 {
	out := make([]int32, len(ps))
	for i, p := range ps {
		out[i] = p.replicas
	}
	return out
}

// at returns the value the trajectory had at time x (0 before any point).
func at(ps []point, x time.Time) int32 {
	var r int32
	for _, p := range ps {
		if p.at.After(x) {
			break
		}
		r = p.replicas
	}
	return r
}

// String prints the trajectory as "+0.0s 0 → +12.3s 1 → ..." from its first point.
func (tr *trajectory) String() string { return describe(tr.snapshot()) }

func describe(ps []point) string {
	if len(ps) == 0 {
		return "(nothing seen)"
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s %d", p.at.UTC().Format("15:04:05.0"), p.replicas)
	}
	return strings.Join(parts, " → ")
}

// current returns the latest value, and false when nothing was seen yet.
func (tr *trajectory) current() (int32, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.points) == 0 {
		return 0, false
	}
	return tr.points[len(tr.points)-1].replicas, true
}

// waitFor waits until the replicas satisfy ok, at most limit, and returns
// when that was first seen; it fails the test with the trajectory otherwise.
func (tr *trajectory) waitFor(t testing.TB, limit time.Duration, what string, ok func(int32) bool) time.Time {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		tr.mu.Lock()
		if n := len(tr.points); n > 0 && ok(tr.points[n-1].replicas) {
			at := tr.points[n-1].at
			tr.mu.Unlock()
			return at
		}
		tr.mu.Unlock()
		select {
		case <-tr.change:
		case <-time.After(time.Second):
		case <-deadline.C:
			t.Fatalf("e2e: replicas %s: not within %s; trajectory: %s", what, limit, tr)
		}
	}
}

// holds waits for d and fails the test if the replicas left want meanwhile.
func (tr *trajectory) holds(t testing.TB, d time.Duration, want int32) {
	t.Helper()
	from := time.Now()
	time.Sleep(d)
	for _, p := range tr.since(from) {
		if p.replicas != want {
			t.Fatalf("e2e: replicas should have stayed %d for %s; trajectory: %s", want, d, tr)
		}
	}
}

func eq(v int32) func(int32) bool { return func(r int32) bool { return r == v } }

// splitYAML splits a multi-document YAML stream.
func splitYAML(s string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+s, "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}
