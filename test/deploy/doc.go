// Package deploy tests the kustomize manifests under deploy/: every overlay is
// built with kustomize's Go API, every object is decoded strictly into its
// Kubernetes, KEDA or Prometheus Operator Go type, and ADR-0002's numbers (docs/adr-0002.md) are
// asserted field by field. No cluster and no network are needed.
package deploy
