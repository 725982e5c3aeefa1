// Wrapper module: builds KWOK's kwok (fake nodes and pod lifecycles for a
// real apiserver, run out of cluster) from sigs.k8s.io/kwok for the e2e
// suite's live loop (test/e2e/build/build.sh). Not part of the
// montage-scaler module.
module montage-e2e/kwok

go 1.26.0

require sigs.k8s.io/kwok v0.8.0
