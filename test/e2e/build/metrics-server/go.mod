// Wrapper module: builds metrics-server from sigs.k8s.io/metrics-server
// (v0.8.0; v0.9.0 is served but not an approved release) for the e2e
// suite's live loop (test/e2e/build/build.sh). Not part of the
// montage-scaler module.
module montage-e2e/metrics-server

go 1.26.0

require sigs.k8s.io/metrics-server v0.8.0
