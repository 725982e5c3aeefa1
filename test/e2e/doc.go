// Package e2e proves montage-scaler under a real Kubernetes control plane
// (etcd, kube-apiserver, kube-controller-manager with the HPA controller) and
// a real KEDA (operator and metrics adapter), all built from their Go modules
// by build/build.sh and run as processes: no container engine, no kubelet.
// Pods stay Pending, but Deployment.spec.replicas records every decision of
// KEDA and the HPA, and the tests assert that trajectory.
//
// The tests are behind the build tag e2e (`make e2e`); they need root (for
// the network namespace the metrics adapter runs in) and a warm component
// cache (${MONTAGE_E2E_CACHE:-$HOME/.cache/montage-scaler-e2e}, made by
// `make e2e-build`).
package e2e
