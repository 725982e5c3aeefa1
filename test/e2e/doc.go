// Package e2e proves montage-scaler under a real Kubernetes control plane
// (etcd, kube-apiserver, kube-controller-manager with the HPA controller) and
// a real KEDA (operator and metrics adapter), all built from their Go modules
// by build/build.sh and run as processes: no container engine, no kubelet.
// In most scenarios pods stay Pending, and Deployment.spec.replicas records
// every decision of KEDA and the HPA, which the tests assert.
//
// The live loop closes the circle: kube-scheduler, KWOK (fake nodes whose
// pods turn Ready after a start-up delay and report the CPU and memory the
// test gives them), metrics-server and kube-state-metrics, and a worker
// bridge that runs a real Celery worker for each Ready pod, so the queue is
// drained by the pods the scaler asked for (bridge_test.go, live_test.go).
//
// The tests are behind the build tag e2e (`make e2e`); they need root (for
// the network namespace the metrics adapters run in) and a warm component
// cache (${MONTAGE_E2E_CACHE:-$HOME/.cache/montage-scaler-e2e}, made by
// `make e2e-build`).
package e2e
