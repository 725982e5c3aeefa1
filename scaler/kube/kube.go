// Package kube is the process's one Kubernetes client, built once at start
// and shared by everything that talks to the API: today the latency
// component's replica lookup (the current replicas of a ScaledObject's
// scale target, through the scale subresource); the client is dynamic, so
// a writer that lists and patches pods needs no second one.
package kube

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client is the process's Kubernetes client. Its methods are safe for
// concurrent use.
type Client struct {
	dyn dynamic.Interface
}

// New returns a Client over d (a fake in tests).
func New(d dynamic.Interface) *Client { return &Client{dyn: d} }

// InCluster builds the Client from the pod's service account; outside a
// cluster it fails (rest.ErrNotInCluster).
func InCluster() (*Client, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return NewForConfig(cfg)
}

// NewForConfig builds the Client from a REST config (in-cluster, or one a
// kubeconfig gives).
func NewForConfig(cfg *rest.Config) (*Client, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return New(dc), nil
}

// Dynamic is the client's dynamic interface, for resources this package
// has no method for (pods: list, patch).
func (c *Client) Dynamic() dynamic.Interface { return c.dyn }

// FromKubeconfig builds the Client from a kubeconfig file's current
// context (serve --kubeconfig: a scaler run outside the cluster).
func FromKubeconfig(path string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: kubeconfig %s: %w", path, err)
	}
	return NewForConfig(cfg)
}
