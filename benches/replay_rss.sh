#!/usr/bin/env bash
# Peak memory and time of the one-off full replays (`fsck --full`, `replay --data`,
# `monitor --audit --once`), for one or more builds (docs/performance.md, "One-off
# replays on disk"). Writes a log of N publications with the first binary, then runs each
# binary's three replays on it and prints the peak RSS (/usr/bin/time's maximum resident
# set) and the wall time of each.
#
#   bash benches/replay_rss.sh before=/tmp/srcos-before after=target/release/srcos-catalog
#   N=100000 ...
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-100000}"; port="${SRCOS_REPLAY_RSS_PORT:-18096}"
data="$(mktemp -d -p target replay-rss-XXXX)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT
(($# > 0)) || { echo "usage: $0 NAME=BINARY..." >&2; exit 2; }
first="${1#*=}"

"$first" serve --data "$data/d" --listen "127.0.0.1:$port" >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/v1/log" >/dev/null && break; sleep 0.2; done
"$first" loadgen --server "http://127.0.0.1:$port" --admin-key "$data/d/admin.key" \
  --rate max --duration 300s --connections 128 --max-requests "$n" --verify-every 0 | tail -1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # NAME LABEL COMMAND...
  local name=$1 label=$2; shift 2
  /usr/bin/time -f "%M %e" -o "$data/time" "$@" >"$data/out" 2>&1 ||
    { echo "$name $label FAILED:"; tail -3 "$data/out"; return; }
  read -r kb secs <"$data/time"
  echo "$name $label: peak RSS ${kb} kB, ${secs} s"
}
for spec in "$@"; do
  name="${spec%%=*}"; bin="${spec#*=}"
  measure "$name" "fsck --full" "$bin" fsck --data "$data/d" --full
  measure "$name" "replay --data" "$bin" replay --data "$data/d"
  rm -f "$data/monitor.state"
  measure "$name" "monitor --audit --once" "$bin" monitor --server "http://127.0.0.1:$port" \
    --log-vkey "$data/d/log.vkey" --state "$data/monitor.state" --audit --once
done
