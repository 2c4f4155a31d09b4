#!/usr/bin/env bash
# The read-load benchmark (issue 10, section 1): publish latency at a fixed rate on an
# 8k-entry log, idle and then with 16 clients looping on GET /v1/catalog/state at half
# the tree size. Prints publish p99 for both; the target is loaded p99 within 2x idle.
# Output: target/perf/read-load.txt. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/perf
mkdir -p "$out"
cargo build --release -q
bin=target/release/srcos-catalog
data=$(mktemp -d -p target)
port=${READ_LOAD_PORT:-18091}
"$bin" serve --data "$data" --listen "127.0.0.1:$port" > "$out/read-load-serve.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 600); do grep -q "listening on" "$out/read-load-serve.log" && break; sleep 0.1; done
loadgen() { "$bin" loadgen --server "http://127.0.0.1:$port" --admin-key "$data/admin.key" "$@"; }
# Fill the log to ~8k entries.
loadgen --rate max --max-requests "${READ_LOAD_ENTRIES:-8000}" --duration 60s --connections 64 \
  --verify-every 0 > /dev/null
loadgen --rate "${READ_LOAD_RATE:-50}" --duration "${READ_LOAD_DURATION:-10s}" --connections 64 \
  --read-load "${READ_LOAD_READERS:-16}" | tee "$out/read-load.txt"
