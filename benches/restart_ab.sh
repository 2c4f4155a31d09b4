#!/usr/bin/env bash
# Start-up time of a full replay (`serve --snapshot-check off`: every leaf read, parsed,
# verified and applied into the on-disk projection), for one or more builds of the
# server, alternated ROUNDS times on one log of N publications written by the first
# binary (docs/performance.md). Prints the seconds from start to the first answer.
#
#   ROUNDS=3 N=100000 bash benches/restart_ab.sh before=/tmp/srcos-before after=target/release/srcos-catalog
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-100000}"; rounds="${ROUNDS:-3}"; port="${SRCOS_RESTART_AB_PORT:-18097}"
data="$(mktemp -d -p target restart-ab-XXXX)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT
(($# > 0)) || { echo "usage: $0 NAME=BINARY..." >&2; exit 2; }
first="${1#*=}"

start() { # BINARY FLAGS...
  local bin=$1; shift
  "$bin" serve --data "$data/d" --listen "127.0.0.1:$port" --snapshot-every 0 "$@" \
    >"$data/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 6000); do curl -sf "http://127.0.0.1:$port/v1/log" >/dev/null && return; sleep 0.05; done
  echo "the server did not answer" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

start "$first"
"$first" loadgen --server "http://127.0.0.1:$port" --admin-key "$data/d/admin.key" \
  --rate max --duration 300s --connections 128 --max-requests "$n" --verify-every 0 | tail -1
stop
for round in $(seq "$rounds"); do
  for spec in "$@"; do
    name="${spec%%=*}"; bin="${spec#*=}"
    began=$(date +%s.%N)
    start "$bin" --snapshot-check off
    ended=$(date +%s.%N)
    stop
    echo "round $round $name: full replay start-up $(echo "$ended - $began" | bc) s" \
      "(load average $(cut -d' ' -f1 /proc/loadavg))"
  done
done
