#!/usr/bin/env bash
# Publication throughput over HTTP with state commitments off and after every batch
# (issue 13's "≤ 20 % loss" budget), measured side by side: fresh servers, alternating
# off/on, ROUNDS rounds (default 3), each a closed-loop `loadgen --rate max` of
# DURATION (default 10s). Prints every run and the median of the per-round ratios.
# Output: target/perf/state-http.txt. Port 18213 (override with PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/perf
mkdir -p "$out"
bin=target/release/srcos-catalog
[[ -x $bin ]] || cargo build --release -q
port=${PORT:-18213}
rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
pid=
dir=
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

run() { # commit-every → prints the throughput (publications/s)
  dir=$(mktemp -d -p target)
  "$bin" serve --data "$dir" --listen "127.0.0.1:$port" --state-commit-every "$1" \
    > "$dir/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -qs "listening on" "$dir/serve.log" && break; sleep 0.1; done
  local report
  report=$("$bin" loadgen --server "http://127.0.0.1:$port" --admin-key "$dir/admin.key" \
    --rate max --duration "$duration" --connections 256 --max-requests 200000)
  kill -TERM $pid; wait $pid || true
  rm -rf "$dir"
  echo "$report" | sed -E 's/.* = ([0-9]+)\/s.*/\1/' | head -1
  echo "  every=$1: $report" >&2
}

{
  ratios=()
  for r in $(seq "$rounds"); do
    if (( r % 2 )); then off=$(run 0); on=$(run 1); else on=$(run 1); off=$(run 0); fi
    ratio=$(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.3f", a / b }')
    ratios+=("$ratio")
    echo "round $r: off $off/s, commit every batch $on/s: off/on = $ratio"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  loss=$(awk -v m="$median" 'BEGIN { printf "%.1f", (1 - 1 / m) * 100 }')
  echo "state commitments over HTTP: median off/on throughput ratio $median over $rounds rounds (time per publication ×$median; throughput loss $loss %)"
} 2>&1 | tee "$out/state-http.txt"
