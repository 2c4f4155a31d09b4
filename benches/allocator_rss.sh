#!/usr/bin/env bash
# Server memory after scattered receipt reads, for one or more builds of the server
# (ADR 0017; docs/performance.md, "The request path, profiled"). Writes a log of
# N publications with the first binary, then restarts each binary on it and reads
# receipts at scattered indexes with 16 readers for 20 s, printing VmRSS and VmHWM
# after the restart and after the reads. A binary named NAME=PATH with NAME ending in
# "+purge0" runs with MIMALLOC_PURGE_DELAY=0; one ending in "+thp" with
# MIMALLOC_ALLOW_THP=1 (transparent huge pages kept, as before 2026-12-03).
# SRCOS_RSS_DATA=DIR measures on an existing data directory instead of writing a log.
#
#   bash benches/allocator_rss.sh before=/tmp/srcos-before after=target/release/srcos-catalog
#   N=120000 ROUNDS=2 ...
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-120000}"; rounds="${ROUNDS:-1}"; port="${SRCOS_RSS_PORT:-18095}"
data="$(mktemp -d -p target rss-XXXX)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT
if [ -n "${SRCOS_RSS_DATA:-}" ]; then ln -s "$(realpath "$SRCOS_RSS_DATA")" "$data/d"; fi
(($# > 0)) || { echo "usage: $0 NAME=BINARY..." >&2; exit 2; }
first="${1#*=}"

start() { # NAME BINARY
  if [[ "$1" == *+purge0 ]]; then export MIMALLOC_PURGE_DELAY=0; else unset MIMALLOC_PURGE_DELAY; fi
  if [[ "$1" == *+thp ]]; then export MIMALLOC_ALLOW_THP=1; else unset MIMALLOC_ALLOW_THP; fi
  "$2" serve --data "$data/d" --listen "127.0.0.1:$port" --snapshot-every 0 >"$data/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/v1/log" >/dev/null && return; sleep 0.2; done
  echo "the server did not answer" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; unset MIMALLOC_PURGE_DELAY MIMALLOC_ALLOW_THP; }
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$pid/status"; }
loadgen() { "$first" loadgen --server "http://127.0.0.1:$port" --admin-key "$data/d/admin.key" "$@"; }

if [ -z "${SRCOS_RSS_DATA:-}" ]; then
  start first "$first"
  loadgen --rate max --duration 120s --connections 128 --max-requests "$n" --verify-every 0 | tail -1
  stop
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$rounds"); do
  for spec in "$@"; do
    name="${spec%%=*}"; bin="${spec#*=}"
    start "$name" "$bin"
    echo "$name after restart: $(rss)"
    loadgen --rate 20 --duration 20s --connections 16 --verify-every 0 --read-load 16 \
      --read-path '/v1/receipts/{size}' 2>/dev/null | grep '^read load' || true
    echo "$name after reads: $(rss)"
    stop
  done
done
