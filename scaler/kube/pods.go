package kube

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// pods is the core API's pods resource.
var pods = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// Scale is what a scale subresource says of its target.
type Scale struct {
	// Replicas is status.replicas; Selector is status.selector, the label
	// selector of the target's pods (as a string).
	Replicas int32
	Selector string
}

// ScaleOf reads the scale subresource of the ScaledObject's scale target:
// its current replicas and its pods' selector. It needs get on
// scaledobjects and on <target>/scale.
func (c *Client) ScaleOf(ctx context.Context, namespace, scaledObject string) (Scale, string, error) {
	gvr, name, err := c.ScaleTarget(ctx, namespace, scaledObject)
	if err != nil {
		return Scale{}, "", err
	}
	what := fmt.Sprintf("%s/%s", gvr.Resource, name)
	n, sel, err := c.scaleStatus(ctx, gvr, namespace, name)
	if err != nil {
		return Scale{}, what, err
	}
	if sel == "" {
		return Scale{}, what, fmt.Errorf("kubernetes: scale of %s %s/%s has no status.selector: its pods cannot be found", gvr.Resource, namespace, name)
	}
	return Scale{Replicas: n, Selector: sel}, what, nil
}

// ListPods lists the pods of namespace that selector matches. It needs
// list on pods.
func (c *Client) ListPods(ctx context.Context, namespace, selector string) ([]unstructured.Unstructured, error) {
	l, err := c.dyn.Resource(pods).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list pods %s in %s: %w", selector, namespace, err)
	}
	return l.Items, nil
}

// AnnotatePod sets (a non-nil value) or removes (nil) annotations of one pod
// with a JSON merge patch. It needs patch on pods.
func (c *Client) AnnotatePod(ctx context.Context, namespace, pod string, annotations map[string]*string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	if _, err := c.dyn.Resource(pods).Namespace(namespace).Patch(ctx, pod, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("kubernetes: patch pod %s/%s: %w", namespace, pod, err)
	}
	return nil
}
