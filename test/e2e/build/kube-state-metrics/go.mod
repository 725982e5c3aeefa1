// Wrapper module: builds kube-state-metrics from
// k8s.io/kube-state-metrics/v2 for the e2e suite's live loop
// (test/e2e/build/build.sh). Not part of the montage-scaler module.
module montage-e2e/kube-state-metrics

go 1.26.0

require k8s.io/kube-state-metrics/v2 v2.20.0
