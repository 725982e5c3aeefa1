// Wrapper module: builds KEDA's operator and metrics adapter from
// github.com/kedacore/keda/v2 for the e2e suite (test/e2e/build/build.sh).
// Not part of the montage-scaler module.
module montage-e2e/keda

go 1.26.0

require github.com/kedacore/keda/v2 v2.21.0

// Repeats KEDA's own replace directive (replaces apply only in the main module).
replace github.com/nexus-rpc/nexus-proto-annotations v0.1.0 => github.com/nexus-rpc/nexus-proto-annotations v0.1.1-0.20260629224316-835bd8d49cb4
