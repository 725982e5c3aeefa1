package kube_test

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/montage/montage-scaler/scaler/kube"
)

func scaledObject(ns, name string, spec, status map[string]any) *unstructured.Unstructured {
	o := map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     spec,
	}
	if status != nil {
		o["status"] = status
	}
	return &unstructured.Unstructured{Object: o}
}

// fakeKube serves ScaledObjects from the fake clientset's tracker and answers
// scale subresource gets from scales (resource/name → replicas), as the API
// server does.
func fakeKube(t *testing.T, scales map[string]int64, objs ...runtime.Object) *kube.Client {
	t.Helper()
	sch := runtime.NewScheme()
	c := dynfake.NewSimpleDynamicClientWithCustomListKinds(sch, map[schema.GroupVersionResource]string{kube.ScaledObjects(): "ScaledObjectList"}, objs...)
	c.PrependReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		name := a.(k8stesting.GetAction).GetName()
		key := a.GetResource().Resource + "/" + name
		n, ok := scales[key]
		if !ok {
			return true, nil, errors.New(key + " not found")
		}
		return true, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "autoscaling/v1", "kind": "Scale",
			"metadata": map[string]any{"name": name, "namespace": a.GetNamespace()},
			"spec":     map[string]any{"replicas": n}, "status": map[string]any{"replicas": n},
		}}, nil
	})
	return kube.New(c)
}

func TestKubeReplicas(t *testing.T) {
	k := fakeKube(t, map[string]int64{"deployments/montage-api": 3, "statefulsets/db": 2, "rollouts/canary": 5, "deployments/idle": 0,
		"deployments/wraps": 1<<32 + 3, "deployments/huge": 20000, "deployments/negative": -1},
		scaledObject("montage", "wraps", map[string]any{"scaleTargetRef": map[string]any{"name": "wraps"}}, nil),
		scaledObject("montage", "huge", map[string]any{"scaleTargetRef": map[string]any{"name": "huge"}}, nil),
		scaledObject("montage", "negative", map[string]any{"scaleTargetRef": map[string]any{"name": "negative"}}, nil),
		scaledObject("montage", "api", map[string]any{"scaleTargetRef": map[string]any{"name": "montage-api"}}, nil),
		scaledObject("montage", "db", map[string]any{"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}}, nil),
		scaledObject("montage", "canary", map[string]any{"scaleTargetRef": map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "canary"}},
			map[string]any{"scaleTargetGVKR": map[string]any{"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout", "resource": "rollouts"}}),
		scaledObject("montage", "idle", map[string]any{"scaleTargetRef": map[string]any{"name": "idle"}}, nil),
		scaledObject("montage", "noname", map[string]any{"scaleTargetRef": map[string]any{}}, nil),
	)
	tests := []struct {
		name, so string
		want     int32
		source   string
		err      string
	}{
		{"A Deployment by default", "api", 3, "kubernetes deployments/montage-api scale", ""},
		{"A StatefulSet named in scaleTargetRef", "db", 2, "kubernetes statefulsets/db scale", ""},
		{"The resource KEDA recorded in status wins", "canary", 5, "kubernetes rollouts/canary scale", ""},
		{"Zero replicas are zero", "idle", 0, "kubernetes deployments/idle scale", ""},
		{"A missing ScaledObject is an error naming it", "gone", 0, "", `kubernetes: ScaledObject montage/gone: scaledobjects.keda.sh "gone" not found`},
		{"A ScaledObject without a target name is an error", "noname", 0, "", "kubernetes: ScaledObject montage/noname has no spec.scaleTargetRef.name"},
		{"A count int32 would cut to 3 is an error, not 3", "wraps", 0, "", "kubernetes: scale of deployments montage/wraps: status.replicas 4294967299 is not a replica count from 0 to 10000"},
		{"A count beyond the ceiling is an error naming the target", "huge", 0, "", "kubernetes: scale of deployments montage/huge: status.replicas 20000 is not a replica count from 0 to 10000"},
		{"A negative count is an error", "negative", 0, "", "kubernetes: scale of deployments montage/negative: status.replicas -1 is not a replica count from 0 to 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, src, err := k.LookupReplicas(context.Background(), "montage", tt.so)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || n != tt.want || src != tt.source {
				t.Errorf("LookupReplicas = %d, %q, %v; want %d, %q", n, src, err, tt.want, tt.source)
			}
		})
	}
}
