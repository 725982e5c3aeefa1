package kube_test

import (
	"context"
	"testing"

	"github.com/montage/montage-scaler/scaler/kube"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/latency/prom"
)

// The latency hub takes the client as its replica lookup, and names where
// the replicas came from through this method (its describedLookup).
var (
	_ latency.ReplicaLookup = (*kube.Client)(nil)
	_ interface {
		LookupReplicas(ctx context.Context, namespace, scaledObject string) (int32, string, error)
	} = (*kube.Client)(nil)
)

func TestHubUsesKubeLookupPerScaledObject(t *testing.T) {
	k := fakeKube(t, map[string]int64{"deployments/a": 1, "deployments/b": 4},
		scaledObject("ns", "a", map[string]any{"scaleTargetRef": map[string]any{"name": "a"}}, nil),
		scaledObject("ns", "b", map[string]any{"scaleTargetRef": map[string]any{"name": "b"}}, nil))
	hub := prom.NewHub(prom.HubOptions{Replicas: k})
	defer hub.Close()
	cfg := &latency.Config{Mode: latency.ModeScrape, MetricsURLs: []string{"http://127.0.0.1:1/metrics"}, Histogram: "h", Timeout: 1e9}
	w1, w2 := hub.Watch("ns", "a", cfg), hub.Watch("ns", "b", cfg)
	defer w1.Close()
	defer w2.Close()
	if hub.Pollers() != 2 {
		t.Errorf("pollers = %d, want one per ScaledObject when replicas come from Kubernetes", hub.Pollers())
	}
}
