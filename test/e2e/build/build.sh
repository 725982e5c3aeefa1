#!/usr/bin/env bash
# Builds the e2e suite's components from their Go modules into a cache folder
# outside the repository (reused afterwards; only missing binaries are built):
#   etcd                              go.etcd.io/etcd/server/v3 (etcd/)
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#                                     k8s.io/kubernetes (kube/)
#   keda-operator, keda-adapter       github.com/kedacore/keda/v2 (keda/)
#   keda-crds/*.yaml                  KEDA's config/crd/bases
#   kwok                              sigs.k8s.io/kwok (kwok/)
#   metrics-server                    sigs.k8s.io/metrics-server (metrics-server/)
#   kube-state-metrics                k8s.io/kube-state-metrics/v2 (kube-state-metrics/)
# and writes the stamp file .complete once every one of them is there.
# `build.sh --check` builds nothing: it exits 0 when the cache is warm (the
# stamp and every binary), 1 otherwise; .ci/run asks it so.
# Cold: about 2 hours on 2 cores (the live loop's four alone took 53 min with an
# empty Go build cache). Everything is built with `nice -n 19`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${MONTAGE_E2E_CACHE:-$HOME/.cache/montage-scaler-e2e}"
export PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
build=(nice -n 19 go build -trimpath)

kube_version=v1.36.3
keda_version=2.21.0

# stage copies a wrapper module's sources into the cache, where go.sum is made.
stage() {
  mkdir -p "$cache/src/$1"
  cp "$here/$1"/*.go "$cache/src/$1/" 2>/dev/null || true
  cp "$here/$1/go.mod" "$cache/src/$1/go.mod"
}

log() { echo "e2e-build: $(date -u +%H:%M:%S) $*"; }

# Every binary the suite runs; test/e2e/cluster_test.go's components lists
# the same names.
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl keda-operator keda-adapter
  kwok metrics-server kube-state-metrics)

all_built() {
  for b in "${binaries[@]}"; do
    [ -x "$cache/bin/$b" ] || return 1
  done
  ls "$cache"/keda-crds/*.yaml >/dev/null 2>&1
}
if [ "${1:-}" = --check ]; then
  [ -f "$cache/.complete" ] && all_built
  exit
fi
mkdir -p "$cache/bin" "$cache/src" "$cache/keda-crds"
if [ -f "$cache/.complete" ] && all_built; then
  log "cache warm: $cache ($(tr '\n' ' ' < "$cache/.complete"))"
  exit 0
fi

if [ ! -x "$cache/bin/etcd" ]; then
  log "etcd"
  stage etcd
  (cd "$cache/src/etcd" && "${build[@]}" -ldflags '-s -w' -o "$cache/bin/etcd.tmp" . && mv "$cache/bin/etcd.tmp" "$cache/bin/etcd")
fi

kube_missing=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$cache/bin/$b" ] || kube_missing+=("k8s.io/kubernetes/cmd/$b")
done
if [ ${#kube_missing[@]} -gt 0 ]; then
  log "kubernetes ${kube_missing[*]}"
  stage kube
  minor="${kube_version#v1.}"; minor="${minor%%.*}"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$cache/src/kube" && "${build[@]}" -ldflags "$ld" -o "$cache/bin/" "${kube_missing[@]}")
fi

keda_missing=()
[ -x "$cache/bin/keda-operator" ] || keda_missing+=(operator)
[ -x "$cache/bin/keda-adapter" ] || keda_missing+=(adapter)
stage keda
if [ ${#keda_missing[@]} -gt 0 ]; then
  log "keda ${keda_missing[*]}"
  ld="-s -w -X github.com/kedacore/keda/v2/version.Version=$keda_version"
  tmp="$cache/src/keda/out"
  mkdir -p "$tmp"
  pkgs=()
  for c in "${keda_missing[@]}"; do pkgs+=("github.com/kedacore/keda/v2/cmd/$c"); done
  (cd "$cache/src/keda" && "${build[@]}" -ldflags "$ld" -o "$tmp/" "${pkgs[@]}")
  for c in "${keda_missing[@]}"; do mv "$tmp/$c" "$cache/bin/keda-$c"; done
fi
keda_dir="$(cd "$cache/src/keda" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"
cp "$keda_dir"/config/crd/bases/*.yaml "$cache/keda-crds/"
chmod u+w "$cache/keda-crds/"*.yaml

# The live loop's components, each from its own wrapper module: one
# binary per module, named as the cache's bin/ names it.
single() { # name wrapper-dir package
  [ -x "$cache/bin/$1" ] && return 0
  log "$1 $3"
  stage "$2"
  (cd "$cache/src/$2" && "${build[@]}" -ldflags '-s -w' -o "$cache/bin/$1.tmp" "$3" && mv "$cache/bin/$1.tmp" "$cache/bin/$1")
}
single kwok kwok sigs.k8s.io/kwok/cmd/kwok
single metrics-server metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
single kube-state-metrics kube-state-metrics k8s.io/kube-state-metrics/v2

all_built || { echo "e2e-build: a component is missing after the build" >&2; exit 1; }
{
  echo "etcd go.etcd.io/etcd/server/v3 $(sed -n 's/^require go.etcd.io\/etcd\/server\/v3 //p' "$here/etcd/go.mod")"
  echo "kubernetes $kube_version"
  echo "keda $keda_version"
  for m in kwok metrics-server kube-state-metrics; do
    echo "$m $(sed -n 's/^require \([^ ]*\) \(v[^ ]*\)$/\1 \2/p' "$here/$m/go.mod")"
  done
  echo "binaries ${binaries[*]}"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$cache/.complete"
log "complete: $cache"
