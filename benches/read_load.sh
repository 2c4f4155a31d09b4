#!/usr/bin/env bash
# The read-load benchmark (issue 10, section 1): publish latency at a fixed rate on an
# 8k-entry log, idle and then with 16 clients looping on GET /v1/catalog/state. Prints
# publish p99 for both; the target is loaded p99 within 2x idle. Three read loads:
#   same-size   every reader asks for the digest at half the tree size (one computation,
#               then the cache), readers exempt as loopback clients are by default;
#   limited     the same, but the server runs with --limit-loopback and the readers
#               connect from 127.0.0.2, so they are held to the per-address limits that
#               every remote client gets (the attack review's anonymous clients);
#   every-size  limited, and each request asks for a different size (no cache: each
#               answer is a fresh digest of the whole state, read a chunk at a time).
# The readers ignore 429 and ask again at once, as an attacker would.
# Output: target/perf/read-load.txt. Takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/perf
mkdir -p "$out"
cargo build --release -q
bin=target/release/srcos-catalog
data=$(mktemp -d -p target)
port=${READ_LOAD_PORT:-18091}
pid=
stop() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap 'stop; rm -rf "$data"' EXIT
start() {
  : > "$out/read-load-serve.log"
  "$bin" serve --data "$data" --listen "127.0.0.1:$port" "$@" > "$out/read-load-serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$out/read-load-serve.log" && return; sleep 0.1; done
  echo "the server did not start" >&2; exit 1
}
loadgen() { "$bin" loadgen --server "http://127.0.0.1:$port" --admin-key "$data/admin.key" "$@"; }
measure() {
  loadgen --rate "${READ_LOAD_RATE:-50}" --duration "${READ_LOAD_DURATION:-10s}" --connections 64 \
    --read-load "${READ_LOAD_READERS:-16}" "$@" | grep "^read load"
}
start
# Fill the log to ~8k entries.
loadgen --rate max --max-requests "${READ_LOAD_ENTRIES:-8000}" --duration 60s --connections 64 \
  --verify-every 0 > /dev/null
# No pipeline around these: `stop` must run in this shell to wait for the server.
echo "same-size: $(measure)" > "$out/read-load.txt"
stop
start --limit-loopback
echo "limited: $(measure --read-from 127.0.0.2)" >> "$out/read-load.txt"
echo "every-size: $(measure --read-from 127.0.0.2 --read-path '/v1/catalog/state?tree_size={size}')" \
  >> "$out/read-load.txt"
cat "$out/read-load.txt"
