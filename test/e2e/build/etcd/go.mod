// Wrapper module: builds etcd from its Go module for the e2e suite
// (test/e2e/build/build.sh). Not part of the montage-scaler module.
module montage-e2e/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.16
