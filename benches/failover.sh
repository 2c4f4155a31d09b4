#!/usr/bin/env bash
# Scale-out figures in one run (docs/performance.md, "Failover and S3 + PostgreSQL"):
# 1. peak publish throughput and latency on POSIX, then on S3 (radosgw) + PostgreSQL,
#    back to back with the same loadgen settings; POSIX is the limit the other is given
#    as a ratio to;
# 2. database round trips per committed batch on S3 + PostgreSQL: a second, shorter
#    run with PostgreSQL logging every statement (log_statement = all, reset after),
#    the statements it logged divided by the batches the server's /metrics counted
#    (each statement is one round trip; lease renewals included);
# 3. failover: two `serve` processes on one bucket and database under load; the
#    sequencer is killed (kill -9) ROUNDS times, and each time the standby's time from
#    the kill to listening and to answering /readyz with 200 is printed, with the
#    lease (the limit it cannot beat) beside it, and the standby's start-up line: how
#    many entries it replayed on top of the catalog snapshots its projection wrote as a
#    frontend (ADR 0018; every SNAPSHOT_EVERY leaves, default 1024, so that these
#    short runs write some). The killed server comes back as the standby.
#
# Needs the servers of .ci/services.sh and their environment:
#   .ci/services.sh start && . /tmp/srcos-ci/env && benches/failover.sh
# (the PostgreSQL log is read from $SRCOS_CI_DIR/log/postgres.log, default /tmp/srcos-ci).
# Outputs go to target/perf/failover/. Takes about 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SRCOS_TEST_S3_ENDPOINT:?start .ci/services.sh and source its env file}"
: "${SRCOS_TEST_POSTGRES_URL:?start .ci/services.sh and source its env file}"
out=target/perf/failover
mkdir -p "$out"
cargo build --release -q
bin=$PWD/target/release/srcos-catalog
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
LEASE_MS=${LEASE_MS:-2000}
PORT_A=${PORT_A:-18191}
PORT_B=${PORT_B:-18192}
work=$(mktemp -d -p target)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export SRCOS_S3_ENDPOINT=$SRCOS_TEST_S3_ENDPOINT AWS_REGION=$SRCOS_TEST_S3_REGION \
  AWS_ACCESS_KEY_ID=$SRCOS_TEST_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$SRCOS_TEST_S3_SECRET_ACCESS_KEY
store=s3://$SRCOS_TEST_S3_BUCKET/bench-failover-$$-$(date +%s)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
psql_() { /usr/lib/postgresql/15/bin/psql -X -q -t -A "$SRCOS_TEST_POSTGRES_URL" -c "$1"; }
pglog=${SRCOS_CI_DIR:-/tmp/srcos-ci}/log/postgres.log

# serve DATA PORT LOG [flags…]: starts a server in the background; sets $last_pid.
serve() {
  local data=$1 port=$2 log=$3; shift 3
  "$bin" serve --data "$data" --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}
wait_listening() { # LOG [seconds]: the sequencer's "listening on" (a frontend's line
  # is "frontend listening on", printed before it takes over)
  for _ in $(seq $(( ${2:-120} * 20 ))); do
    grep -q "^listening on" "$1" && return 0
    sleep 0.05
  done
  echo "no 'listening on' in $1" >&2
  return 1
}
cluster_flags() { echo --store "$store" --coordinator "$SRCOS_TEST_POSTGRES_URL" --lease-ms "$LEASE_MS"; }
standby_flags() { echo $(cluster_flags) --snapshot-every "${SNAPSHOT_EVERY:-1024}"; }
peak() { # PORT DATA LABEL
  "$bin" loadgen --server "http://127.0.0.1:$1" --admin-key "$2/admin.key" --rate max \
    --duration "$DURATION" --connections 64 --max-requests 100000 | tee "$out/peak-$3.txt"
}
batches() { # PORT: committed batches so far
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^srcos_log_batch_entries_count/ {print $2}'
}

# 1 + 2: POSIX, then S3 + PostgreSQL.
serve "$work/posix" "$PORT_A" "$out/serve-posix.log"
posix_pid=$last_pid
wait_listening "$out/serve-posix.log"
peak "$PORT_A" "$work/posix" posix
kill -TERM "$posix_pid"; wait "$posix_pid" || true

# shellcheck disable=SC2046
serve "$work/a" "$PORT_A" "$out/serve-a.log" $(cluster_flags)
a_pid=$last_pid
wait_listening "$out/serve-a.log"
peak "$PORT_A" "$work/a" s3-postgres
psql_ "ALTER SYSTEM SET log_statement = 'all'" && psql_ "SELECT pg_reload_conf()" >/dev/null
trap 'psql_ "ALTER SYSTEM RESET log_statement" && psql_ "SELECT pg_reload_conf()" >/dev/null; cleanup' EXIT
sleep 0.5
l0=$(wc -l <"$pglog"); b0=$(batches "$PORT_A")
"$bin" loadgen --server "http://127.0.0.1:$PORT_A" --admin-key "$work/a/admin.key" --rate max \
  --duration 5s --connections 64 --max-requests 50000 >"$out/logged-run.txt"
b1=$(batches "$PORT_A"); l1=$(wc -l <"$pglog")
psql_ "ALTER SYSTEM RESET log_statement" && psql_ "SELECT pg_reload_conf()" >/dev/null
statements=$(sed -n "$((l0 + 1)),${l1}p" "$pglog" | grep -cE 'LOG:  (statement|execute [^:]*):' || true)
posix_rate=$(sed -E 's/.* = ([0-9]+)\/s.*/\1/' "$out/peak-posix.txt")
s3_rate=$(sed -E 's/.* = ([0-9]+)\/s.*/\1/' "$out/peak-s3-postgres.txt")
{
  echo "S3 + PostgreSQL / POSIX throughput: $s3_rate / $posix_rate = $(awk "BEGIN {printf \"%.2f\", $s3_rate / $posix_rate}")"
  echo "database round trips per batch: $statements statements / $((b1 - b0)) batches = $(awk "BEGIN {printf \"%.2f\", $statements / ($b1 - $b0)}")"
} | tee "$out/summary.txt"

# 3: failover under load. B waits as the standby; the load runs against whoever holds
# the lease; at each round the holder is killed.
mkdir -p "$work/b"
cp "$work/a/log.key" "$work/a/log.vkey" "$work/b/"
# shellcheck disable=SC2046
serve "$work/b" "$PORT_B" "$out/serve-b-0.log" $(standby_flags)
standby_pid=$last_pid standby_port=$PORT_B standby_data=$work/b standby_log=$out/serve-b-0.log
seq_pid=$a_pid seq_port=$PORT_A seq_data=$work/a
for round in $(seq "$ROUNDS"); do
  "$bin" loadgen --server "http://127.0.0.1:$seq_port" --admin-key "$work/a/admin.key" \
    --rate max --duration 30s --connections 16 --max-requests 100000 \
    >"$out/load-$round.txt" 2>&1 &
  load_pid=$!
  sleep 3
  kill -9 "$seq_pid"
  killed=$(now_ms)
  wait_listening "$standby_log" 60
  listening=$(now_ms)
  kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true
  # Ready as the sequencer: a frontend's /readyz is 200 too, with "role":"frontend".
  until curl -fs "http://127.0.0.1:$standby_port/readyz" 2>/dev/null | grep -vq '"role":"frontend"'; do sleep 0.02; done
  ready=$(now_ms)
  echo "round $round: lease $LEASE_MS ms; listening after $((listening - killed)) ms ($(awk "BEGIN {printf \"%.2f\", ($listening - $killed) / $LEASE_MS}")x the lease), ready (/readyz 200) after $((ready - killed)) ms; $(grep -m1 'start-up:' "$standby_log")" \
    | tee -a "$out/summary.txt"
  # The killed server comes back as the standby.
  # shellcheck disable=SC2046
  serve "$seq_data" "$seq_port" "$out/serve-$round.log" $(standby_flags)
  new_standby=$last_pid
  read -r seq_pid seq_port seq_data standby_pid standby_port standby_data standby_log <<<"$standby_pid $standby_port $standby_data $new_standby $seq_port $seq_data $out/serve-$round.log"
done
