#!/usr/bin/env bash
# make stress: the StreamIsActive tests as a loaded CI machine runs them —
# 6 test processes of 300 runs each with -cpu 1,2,4, side by side, beside 4
# busy loops. A change that lands while a stream decides must never be
# missed: each run ends in milliseconds, a miss fails it within 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-300}"
bin="$(mktemp -d)/server.test"
go test -c -o "$bin" ./scaler/server/
busy=()
cleanup() { kill "${busy[@]}" 2>/dev/null || true; rm -rf "$(dirname "$bin")"; }
trap cleanup EXIT
for _ in 1 2 3 4; do (while :; do :; done) & busy+=($!); done
start=$(date +%s)
pids=()
for i in 1 2 3 4 5 6; do
  (cd scaler/server && "$bin" -test.run 'StreamIsActive' -test.count "$RUNS" -test.cpu 1,2,4 -test.timeout 30m \
    > "$(dirname "$bin")/run-$i.log" 2>&1) & pids+=($!)
done
fail=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    fail=1
    echo "stress: run $((i + 1)) failed:"; tail -20 "$(dirname "$bin")/run-$((i + 1)).log"
  fi
done
echo "stress: 6 × $RUNS runs of the StreamIsActive tests with -cpu 1,2,4 beside 4 busy loops on $(nproc) cores: $([ $fail = 0 ] && echo pass || echo FAIL) in $(( $(date +%s) - start )) s"
exit $fail
