#!/usr/bin/env bash
# Reproduces the figures of docs/performance.md in one run: the criterion benches
# (engine paths and the machine's limits), the scale bench, and the HTTP load
# (peak, then a sweep that writes docs/load.svg) against a fresh release server, and
# restarts with and without a catalog snapshot.
# Outputs go to target/perf/. Takes about 10 minutes on the 2-core CI machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/perf
mkdir -p "$out"
cargo build --release -q

cargo bench -q --bench engine --bench log --bench merkle --bench note --bench state -- \
  --warm-up-time 1 --measurement-time 4 2>&1 | tee "$out/benches.txt"
SRCOS_SCALE_ENTRIES="${SRCOS_SCALE_ENTRIES:-10000000}" cargo bench -q --bench scale -- \
  --warm-up-time 1 --measurement-time 4 2>&1 | tee "$out/scale.txt"
# Replay of 210,000 real leaves (issue 12, ADR 0011): its halves, the limits, and the
# whole replay, before (the library at REPLAY_BASELINE) and after, alternately.
benches/replay_ab.sh
# Restart on a log of real catalog leaves: full replay vs. restoring a snapshot (ADR 0008).
SRCOS_RESTART_ENTRIES="${SRCOS_RESTART_ENTRIES:-1000000}" cargo bench -q --bench restart \
  2>&1 | tee "$out/restart.txt"

data=$(mktemp -d -p target)
mem=$(mktemp -d -p target)
bin=target/release/srcos-catalog
pid=
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data" "$mem"' EXIT
start_server() { # data dir, log file, extra flags...
  local dir=$1 log=$2; shift 2
  "$bin" serve --data "$dir" --listen 127.0.0.1:18090 "$@" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 6000); do grep -q "listening on" "$log" && return; sleep 0.1; done
}
stop_server() { kill -TERM $pid; wait $pid || true; }
loadgen() { "$bin" loadgen --server http://127.0.0.1:18090 "$@"; }

# The default server: the catalog projection on disk.
start_server "$data" "$out/serve.log"
loadgen --admin-key "$data/admin.key" --rate max --duration "${PEAK_DURATION:-20s}" \
  --connections 256 --max-requests 400000 | tee "$out/peak.txt"
peak=$(sed -E 's/.* = ([0-9]+)\/s.*/\1/' "$out/peak.txt")
rates=$(for pct in 20 40 60 80 100 120; do echo $((peak * pct / 100)); done | paste -sd, -)
loadgen --admin-key "$data/admin.key" --sweep "$rates" --duration "${SWEEP_DURATION:-10s}" \
  --connections 1024 --svg docs/load.svg | tee "$out/sweep.txt"
{
  echo "disk projection: peak resident memory under load: $(grep VmHWM /proc/$pid/status)"
  echo "tree size: $(curl -s http://127.0.0.1:18090/v1/log | head -c 200)"
} | tee "$out/memory.txt"
stop_server
# Restart on the same log, twice: replaying the whole log (snapshots ignored), then
# restoring the snapshot the clean shutdown wrote and replaying the rest (ADR 0008).
started=$(date +%s%N)
start_server "$data" "$out/restart-full.log" --snapshot-check off
echo "restart (replaying the whole log): $(( ($(date +%s%N) - started) / 1000000 )) ms; $(grep VmRSS /proc/$pid/status)" \
  | tee -a "$out/memory.txt"
stop_server
started=$(date +%s%N)
start_server "$data" "$out/restart.log"
echo "restart (from the snapshot): $(( ($(date +%s%N) - started) / 1000000 )) ms; $(grep VmRSS /proc/$pid/status); $(grep 'start-up:' "$out/restart.log")" \
  | tee -a "$out/memory.txt"
stop_server

# The same peak with the projection in memory (faster, memory grows with the log).
start_server "$mem" "$out/serve-memory.log" --projection memory
loadgen --admin-key "$mem/admin.key" --rate max --duration "${PEAK_DURATION:-20s}" \
  --connections 256 --max-requests 400000 | tee "$out/peak-memory.txt"
echo "memory projection: peak resident memory: $(grep VmHWM /proc/$pid/status)" | tee -a "$out/memory.txt"
stop_server

# CPU per admitted publication over HTTP, split by stage (the server's threads by name,
# and the load generator), with the on-disk projection and with it in memory.
python3 benches/cpu_split.py --label "disk projection" | tee "$out/cpu-split.txt"
python3 benches/cpu_split.py --label "memory projection" -- --projection memory \
  | tee -a "$out/cpu-split.txt"

# Server memory after scattered receipt reads, with the allocator's default and with
# MIMALLOC_PURGE_DELAY=0 (ADR 0017).
bash benches/allocator_rss.sh mimalloc=target/release/srcos-catalog \
  mimalloc+purge0=target/release/srcos-catalog | tee "$out/allocator-rss.txt"

# Peak memory of the one-off full replays (fsck --full, replay, monitor --audit), whose
# records go to a scratch store on disk, at two log sizes.
for n in 100000 200000; do
  N=$n bash benches/replay_rss.sh current=target/release/srcos-catalog
done | tee "$out/replay-rss.txt"

# State commitments (issue 13): publication throughput with commitments off and after
# every batch, alternating in the same run: at the sequencer (memory backends, CPU per
# thread) and over HTTP against fresh servers.
SRCOS_STATE_PAIRS="${SRCOS_STATE_PAIRS:-10}" cargo bench -q --bench state -- paired-only 2>&1 \
  | tee "$out/state-paired.txt"
benches/state_http.sh

# Publish latency with and without expensive catalog reads beside it.
benches/read_load.sh

# Issue 12 at size (benches/tenm.sh): a real server on 1 M- and 10 M-entry logs of
# admitted catalog leaves (restart, RSS, reads, writes, fsck). Opt-in: about an hour and
# ~35 GB of disk at 10 M (SRCOS_TENM_ENTRIES sets the size, SRCOS_TENM_DIR the place).
if [[ ${SRCOS_TENM:-0} == 1 ]]; then
  benches/tenm.sh
else
  echo "skipping benches/tenm.sh: set SRCOS_TENM=1 (about an hour, ~35 GB of disk)"
fi

# S3 + PostgreSQL beside POSIX, round trips per batch and failover time, when the servers
# of .ci/services.sh are up (their env file sourced).
if [[ -n ${SRCOS_TEST_S3_ENDPOINT:-} && -n ${SRCOS_TEST_POSTGRES_URL:-} ]]; then
  benches/failover.sh
else
  echo "skipping benches/failover.sh: start .ci/services.sh and source its env file"
fi
