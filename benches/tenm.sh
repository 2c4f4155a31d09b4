#!/usr/bin/env bash
# Issue 12 at size: a real release `serve` on logs of real admitted catalog leaves, at
# 1,000,000 entries and at SRCOS_TENM_ENTRIES (default 10,000,000), in one run, so that
# every figure at size can be read as a ratio to the same figure at 1 M:
#   restart       process start to GET /v1/log answering, from the catalog snapshot at
#                 the head (default --snapshot-check index), and the server's own
#                 "start-up:" line; VmRSS and VmHWM right after;
#   reads         16 readers looping on receipts (entry + inclusion proof) and on
#                 consistency proofs, at scattered indexes over the whole log, for
#                 READ_SECONDS each (loadgen --read-load; publishers at 20/s beside);
#   writes        loadgen --rate max for WRITE_SECONDS, VmRSS sampled every second;
#   restart again after that load (the load's tail replayed), VmRSS and VmHWM;
#   fsck          timed, with its peak RSS; `fsck --full` (a whole replay into a scratch
#                 store on disk) only up to 1 M unless SRCOS_TENM_FSCK_FULL=1, for time.
# The servers run with --snapshot-every 0: a clean shutdown would otherwise write a new
# snapshot of the whole catalog (~1.7 KB per entry), which at 10 M is ~17 GB and minutes.
#
# Each log is built by `cargo bench --bench tenm` (admission on every core, then a full
# replay into the on-disk projection and the snapshot; benches/tenm.rs) in
# SRCOS_TENM_DIR/<entries> (default target/tenm), and deleted after its measurement unless
# SRCOS_TENM_KEEP=1. Every size is built first and the server is built after, so the
# sizes are measured back to back by the same binary, minutes apart rather than an hour. A 10 M-entry log and its snapshot take ~35 GB. SRCOS_TENM_SIZES
# overrides the list of sizes ("1000000 10000000"). Output: target/perf/tenm.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/perf
mkdir -p "$out"
bin=target/release/srcos-catalog
root=${SRCOS_TENM_DIR:-target/tenm}
sizes=${SRCOS_TENM_SIZES:-"1000000 ${SRCOS_TENM_ENTRIES:-10000000}"}
port=${SRCOS_TENM_PORT:-18097}
read_s=${READ_SECONDS:-20}
write_s=${WRITE_SECONDS:-30}
report="$out/tenm.txt"
pid=
sampler=
stop_server() {
  [ -n "$sampler" ] && { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=; }
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap stop_server EXIT
say() { echo "$*" | tee -a "$report"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
mem() { grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd, -; }
# Starts serve on $data; sets $ms to the time until GET /v1/log answers.
start_server() { # log file, extra flags...
  local log=$1 started; shift
  started=$(date +%s%N)
  "$bin" serve --data "$data" --listen "127.0.0.1:$port" --snapshot-every 0 "$@" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 36000); do
    curl -sf "http://127.0.0.1:$port/v1/log" > /dev/null && { ms=$(ms_since "$started"); return; }
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.02
  done
  echo "the server did not answer" >&2; exit 1
}
tree_size() { curl -sf "http://127.0.0.1:$port/v1/log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["treeSize"])'; }
loadgen() { "$bin" loadgen --server "http://127.0.0.1:$port" --admin-key "$data/admin.key" "$@"; }
# Reads answered per second by 16 readers on a path template, publishers at 20/s beside.
reads() { # label, path template
  local line
  line=$(loadgen --rate 20 --duration "${read_s}s" --connections 16 --verify-every 0 \
    --read-load 16 --read-path "$2" 2>/dev/null | grep '^read load')
  say "  $1: $(echo "$line" | sed -E 's/.*reads answered ([0-9]+).*/\1/' | awk -v s="$read_s" '{printf "%.0f reads/s", $1 / s}') ($line)"
}

: > "$report"
say "tenm: $(date -u +%FT%TZ), $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for entries in $sizes; do
  data="$root/$entries"
  if ! ls "$data"/snapshot/*.snap > /dev/null 2>&1; then
    # A log without its snapshot (a run stopped after the build) is kept and replayed.
    [ -f "$data/log/checkpoint" ] || rm -rf "$data"
    mkdir -p "$root"
    SRCOS_TENM_DATA="$data" SRCOS_TENM_ENTRIES="$entries" cargo bench -q --bench tenm \
      2>&1 | tee -a "$report"
  fi
done
# The server measured (the same features as report.sh's).
cargo build --release -q --bin srcos-catalog
for entries in $sizes; do
  data="$root/$entries"
  say "== $entries publications ($(du -sh "$data" | cut -f1) on disk); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  start_server "$out/tenm-serve-$entries.log"
  say "  restart from the snapshot: $ms ms to GET /v1/log (limit 5000 ms); $(grep -m1 'start-up:' "$out/tenm-serve-$entries.log"); $(mem)"
  size=$(tree_size)
  reads "receipts" "/v1/receipts/{size}"
  reads "consistency proofs" "/v1/proofs/consistency?first={size}&second=$size"
  say "  after the reads: $(mem)"
  ( peak=0; while kill -0 "$pid" 2>/dev/null; do
      r=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$out/tenm-rss-peak"
      sleep 1; done ) &
  sampler=$!
  say "  publications: $(loadgen --rate max --duration "${write_s}s" --connections 256 \
    --max-requests 400000 --verify-every 0 2>/dev/null | tail -1)"
  say "  after the publications: $(mem); sampled VmRSS peak $(cat "$out/tenm-rss-peak") kB (limit 262144 kB)"
  grown=$(( $(tree_size) - size ))
  stop_server
  start_server "$out/tenm-restart-$entries.log"
  say "  restart after the load ($grown entries since the snapshot): $ms ms; $(grep -m1 'start-up:' "$out/tenm-restart-$entries.log"); $(mem)"
  reads "receipts after the restart" "/v1/receipts/{size}"
  say "  after those reads: $(mem)"
  stop_server
  started=$(date +%s%N)
  /usr/bin/time -f '%M kB peak RSS' "$bin" fsck --data "$data" > "$out/tenm-fsck-$entries.txt" 2>&1 \
    && result=ok || result=FAILED
  say "  fsck: $result in $(ms_since "$started") ms, $(tail -1 "$out/tenm-fsck-$entries.txt")"
  if [ "$entries" -le 1000000 ] || [ "${SRCOS_TENM_FSCK_FULL:-0}" = 1 ]; then
    started=$(date +%s%N)
    /usr/bin/time -f '%M kB peak RSS' "$bin" fsck --full --data "$data" > "$out/tenm-fsck-full-$entries.txt" 2>&1 \
      && result=ok || result=FAILED
    say "  fsck --full: $result in $(ms_since "$started") ms, $(tail -1 "$out/tenm-fsck-full-$entries.txt")"
  fi
  [ "${SRCOS_TENM_KEEP:-0}" = 1 ] || rm -rf "$data"
done
