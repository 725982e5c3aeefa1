package kube

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/montage/montage-scaler/scaler/decide"
)

// ScaledObjects returns the resource KEDA's ScaledObjects live in.
func ScaledObjects() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
}

// CurrentReplicas reads the current replicas of the ScaledObject's scale
// target from the Kubernetes API: its scaleTargetRef, then that target's
// scale subresource, so any kind with a scale subresource works
// (Deployment, StatefulSet, Argo Rollout). It needs get on scaledobjects
// and on <target>/scale (examples/latency/rbac.yaml).
func (c *Client) CurrentReplicas(ctx context.Context, namespace, scaledObject string) (int32, error) {
	n, _, err := c.LookupReplicas(ctx, namespace, scaledObject)
	return n, err
}

// LookupReplicas is CurrentReplicas that also names the source, such as
// "kubernetes deployments/montage-api scale".
func (c *Client) LookupReplicas(ctx context.Context, namespace, scaledObject string) (int32, string, error) {
	gvr, name, err := c.ScaleTarget(ctx, namespace, scaledObject)
	if err != nil {
		return 0, "", err
	}
	n, err := c.scale(ctx, gvr, namespace, name)
	return n, fmt.Sprintf("kubernetes %s/%s scale", gvr.Resource, name), err
}

// scale reads status.replicas of the target's scale subresource.
func (c *Client) scale(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (int32, error) {
	n, _, err := c.scaleStatus(ctx, gvr, namespace, name)
	return n, err
}

// scaleStatus reads the target's scale subresource: status.replicas and
// status.selector ("" when the target sets none).
func (c *Client) scaleStatus(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (int32, string, error) {
	sc, err := c.dyn.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{}, "scale")
	if err != nil {
		return 0, "", fmt.Errorf("kubernetes: scale of %s %s/%s: %w", gvr.Resource, namespace, name, err)
	}
	sel, _, _ := unstructured.NestedString(sc.Object, "status", "selector")
	n, found, err := unstructured.NestedInt64(sc.Object, "status", "replicas")
	if err != nil || !found {
		// The API omits a zero status.replicas.
		if err == nil && sc.GetKind() == "Scale" {
			return 0, sel, nil
		}
		return 0, "", fmt.Errorf("kubernetes: scale of %s %s/%s has no status.replicas", gvr.Resource, namespace, name)
	}
	if err := decide.CheckReplicas(float64(n)); err != nil {
		// Checked before int32 cuts it: 2^32 + 3 would read as 3.
		return 0, "", fmt.Errorf("kubernetes: scale of %s %s/%s: status.replicas %w", gvr.Resource, namespace, name, err)
	}
	return int32(n), sel, nil
}

// ScaleTarget resolves the ScaledObject's scaleTargetRef to a resource and
// name. KEDA records the resource in status.scaleTargetGVKR; before it has,
// the kind is mapped by the API's naming rule (lowercase plural).
func (c *Client) ScaleTarget(ctx context.Context, namespace, scaledObject string) (schema.GroupVersionResource, string, error) {
	so, err := c.dyn.Resource(ScaledObjects()).Namespace(namespace).Get(ctx, scaledObject, metav1.GetOptions{})
	if err != nil {
		return schema.GroupVersionResource{}, "", fmt.Errorf("kubernetes: ScaledObject %s/%s: %w", namespace, scaledObject, err)
	}
	name, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name")
	if name == "" {
		return schema.GroupVersionResource{}, "", fmt.Errorf("kubernetes: ScaledObject %s/%s has no spec.scaleTargetRef.name", namespace, scaledObject)
	}
	group, _, _ := unstructured.NestedString(so.Object, "status", "scaleTargetGVKR", "group")
	version, _, _ := unstructured.NestedString(so.Object, "status", "scaleTargetGVKR", "version")
	resource, _, _ := unstructured.NestedString(so.Object, "status", "scaleTargetGVKR", "resource")
	if resource != "" && version != "" {
		return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}, name, nil
	}
	apiVersion, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "apiVersion")
	kind, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "kind")
	if apiVersion == "" {
		apiVersion = "apps/v1"
	}
	if kind == "" {
		kind = "Deployment"
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, "", fmt.Errorf("kubernetes: ScaledObject %s/%s: scaleTargetRef.apiVersion %q: %w", namespace, scaledObject, apiVersion, err)
	}
	return gv.WithResource(plural(kind)), name, nil
}

// plural is the resource name of a kind, by the API's naming rule.
func plural(kind string) string {
	k := strings.ToLower(kind)
	switch {
	case strings.HasSuffix(k, "s"), strings.HasSuffix(k, "x"), strings.HasSuffix(k, "ch"), strings.HasSuffix(k, "sh"):
		return k + "es"
	case strings.HasSuffix(k, "y") && len(k) > 1 && !strings.ContainsRune("aeiou", rune(k[len(k)-2])):
		return k[:len(k)-1] + "ies"
	}
	return k + "s"
}
