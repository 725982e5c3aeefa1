package latency

import "context"

// ReplicaLookup tells the scale target's current replicas. The process's
// Kubernetes client (package kube) is one; FixedReplicas is another.
type ReplicaLookup interface {
	CurrentReplicas(ctx context.Context, namespace, scaledObject string) (int32, error)
}

// FixedReplicas is `check --current-replicas N`: the same answer for every
// ScaledObject. Given as the hub's replica lookup it overrides
// replicasQuery too.
type FixedReplicas int32

// CurrentReplicas returns n.
func (n FixedReplicas) CurrentReplicas(context.Context, string, string) (int32, error) {
	return int32(n), nil
}
