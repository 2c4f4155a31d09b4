#!/usr/bin/env bash
# Real servers for the tests that need PostgreSQL and S3: PostgreSQL 15 from the machine
# image and Ceph radosgw (an S3 server whose `If-None-Match: *` is atomic), both on
# 127.0.0.1 only, on fixed ports below 32768 (the ephemeral range starts there), with all
# state in one temporary directory.
#
#   .ci/services.sh start   install what is missing, start both, write $SRCOS_CI_DIR/env
#   .ci/services.sh check   prove they are real: psql `select 1`; S3 create-only PUT, 412, GET
#   .ci/services.sh stop    stop every daemon started, by PID, and remove the state
#   .ci/services.sh status  list the daemons and whether they run
#
# How a CI script uses it (the trap comes first: `stop` is idempotent, and a start that is
# interrupted half-way is then cleaned up as well):
#
#   export SRCOS_CI_DIR="${SRCOS_CI_DIR:-${TMPDIR:-/tmp}/srcos-ci}"
#   trap '.ci/services.sh stop' EXIT
#   .ci/services.sh start
#   . "$SRCOS_CI_DIR/env"
#
# The env file exports SRCOS_TEST_POSTGRES_URL, SRCOS_TEST_S3_ENDPOINT, SRCOS_TEST_S3_BUCKET,
# SRCOS_TEST_S3_ACCESS_KEY_ID, SRCOS_TEST_S3_SECRET_ACCESS_KEY and SRCOS_TEST_S3_REGION. The
# S3 key pair is generated at each start and exists only there (mode 0600).
#
# Settings (environment):
#   SRCOS_CI_DIR        state, logs, pid files and the env file  (${TMPDIR:-/tmp}/srcos-ci)
#   SRCOS_CI_CACHE      where the Ceph packages are unpacked     (/var/cache/srcos-ci/ceph as
#                       root, else ~/.cache/srcos-ci/ceph)
#   SRCOS_CI_PG_PORT    PostgreSQL                               (25432)
#   SRCOS_CI_PG_BIN     PostgreSQL binaries                      (/usr/lib/postgresql/15/bin)
#   SRCOS_CI_PG_OPTS    extra `postgres` options, e.g. "-c fsync=off"
#   SRCOS_CI_S3_PORT    radosgw                                  (27480)
#   SRCOS_CI_MON_PORT   the Ceph monitor                         (26789)
#   SRCOS_CI_OSD_PORTS  the range the Ceph OSD binds in          (26800-26899)
#   SRCOS_CI_S3_BYTES   the in-memory OSD's capacity in bytes    (4294967296)
#
# Ceph runs without a cluster manager: one monitor, one OSD on the in-memory object store,
# no authentication, pools of size 1. Its packages are fetched with `apt-get download` and
# unpacked with `dpkg -x` into the cache directory, so no system service is installed or
# started (a plain `apt-get install` is the fallback, as root). With daemon authentication
# off, Ceph 16.2 can answer a client's first command with `wrong fsid` when the client has
# no monitor map yet; this script therefore places the OSD in the CRUSH map itself (instead
# of the OSD doing it at start), retries its own commands on `wrong fsid`, retries the OSD
# start, and retries the whole Ceph start once.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${SRCOS_CI_DIR:-${TMPDIR:-/tmp}/srcos-ci}"
if [[ $EUID -eq 0 ]]; then
  CACHE="${SRCOS_CI_CACHE:-/var/cache/srcos-ci/ceph}"
else
  CACHE="${SRCOS_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/srcos-ci/ceph}"
fi
PG_PORT="${SRCOS_CI_PG_PORT:-25432}"
PG_BIN="${SRCOS_CI_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_OPTS="${SRCOS_CI_PG_OPTS:-}"
S3_PORT="${SRCOS_CI_S3_PORT:-27480}"
MON_PORT="${SRCOS_CI_MON_PORT:-26789}"
OSD_PORTS="${SRCOS_CI_OSD_PORTS:-26800-26899}"
S3_BYTES="${SRCOS_CI_S3_BYTES:-4294967296}"
PG_DB=srcos_test
S3_BUCKET=srcos-test
S3_REGION=us-east-1
S3_USER=srcos-test
CEPH_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)

PIDS="$DIR/pids"   # one file per daemon: NAME.pid holding its PID, NAME.comm its process name
CEPH="$DIR/ceph"
CONF="$CEPH/ceph.conf"

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

check_port() { # NAME PORT [free]
  local name=$1 port=$2
  [[ $port =~ ^[0-9]+$ ]] && ((port > 1024 && port < 32768)) ||
    die "$name port $port: use a port in 1025-32767 (32768 and up is the ephemeral range)"
  if [[ ${3:-} == free ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "$name port 127.0.0.1:$port is in use (another instance? set SRCOS_CI_*_PORT)"
  fi
}

# ---------------------------------------------------------------------------------------
# Daemons by PID
# ---------------------------------------------------------------------------------------

# A zombie has exited: it only waits for its parent (often PID 1) to reap it.
alive() {
  local pid=$1 state
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# The PID still names the process recorded (not a reused PID).
ours() {
  local name=$1 pid=$2 comm
  alive "$pid" || return 1
  [[ -f $PIDS/$name.comm ]] || return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $comm == "$(cat "$PIDS/$name.comm")" ]]
}

record() { # NAME PID: remember a daemon started by this script
  local name=$1 pid=$2
  mkdir -p "$PIDS"
  cat "/proc/$pid/comm" >"$PIDS/$name.comm" 2>/dev/null || true
  echo "$pid" >"$PIDS/$name.pid"
}

stop_one() { # NAME SIGNAL
  local name=$1 sig=$2 pid i
  [[ -f $PIDS/$name.pid ]] || return 0
  pid=$(cat "$PIDS/$name.pid")
  if [[ $pid =~ ^[0-9]+$ ]] && ours "$name" "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name (pid $pid) still runs 15 s after SIG$sig; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
      done
      alive "$pid" && log "$name (pid $pid) survived SIGKILL"
    fi
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.comm"
}

# The cluster is thrown away after a stop, so radosgw and the OSD get SIGKILL: a clean
# radosgw shutdown takes about 4 s, and a clean OSD shutdown writes every object of the
# in-memory store to the OSD's directory.
stop_ceph() {
  stop_one radosgw KILL
  stop_one ceph-osd KILL
  stop_one ceph-mon TERM
}

stop_all() {
  stop_ceph
  stop_one postgres INT   # SIGINT: PostgreSQL's fast shutdown
}

running() {
  local f name pid
  for f in "$PIDS"/*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    ours "$name" "$pid" && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------------------
# Ceph packages
# ---------------------------------------------------------------------------------------

# The packages to unpack: the four and whatever of their dependencies is not installed.
ceph_closure() {
  apt-get -s -q install --no-install-recommends "${CEPH_PACKAGES[@]}" 2>/dev/null |
    awk '/^Inst /{ print $2 }'
}

unpack_ceph() {
  local pkgs debs deb tmp t0 t1
  t0=$(now)
  tmp="$CACHE.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/debs"
  mapfile -t pkgs < <(ceph_closure)
  ((${#pkgs[@]} > 0)) || { log "apt-get resolves no Ceph packages"; return 1; }
  log "downloading ${#pkgs[@]} packages (${CEPH_PACKAGES[*]} and their libraries)"
  if ! (cd "$tmp/debs" && apt-get download -q "${pkgs[@]}" >"$tmp/download.log" 2>&1); then
    [[ $EUID -eq 0 ]] || { cat "$tmp/download.log" >&2; return 1; }
    log "download failed; refreshing the package lists and retrying"
    apt-get update -qq || return 1
    mapfile -t pkgs < <(ceph_closure)
    (cd "$tmp/debs" && rm -f ./*.deb && apt-get download -q "${pkgs[@]}" >"$tmp/download.log" 2>&1) ||
      { cat "$tmp/download.log" >&2; return 1; }
  fi
  t1=$(now)
  mapfile -t debs < <(ls "$tmp/debs"/*.deb)
  for deb in "${debs[@]}"; do
    dpkg -x "$deb" "$tmp/root" || return 1
  done
  (cd "$tmp/debs" && ls) >"$tmp/root/.packages" || return 1
  rm -rf "$CACHE"
  mv "$tmp/root" "$CACHE" || return 1
  rm -rf "$tmp"
  log "unpacked into $CACHE ($(since "$t0") s, of which $(since "$t1") s unpacking)"
}

# Sets CEPH_ROOT (the prefix holding usr/bin) and the environment the Ceph tools need.
ensure_ceph() {
  if [[ ! -x $CACHE/usr/bin/radosgw ]]; then
    if [[ -x /usr/bin/radosgw && -x /usr/bin/ceph-osd && -x /usr/bin/ceph-mon && -x /usr/bin/ceph ]]; then
      CEPH_ROOT=
    else
      mkdir -p "$(dirname "$CACHE")"
      exec 9>"$CACHE.lock"
      flock 9
      if [[ ! -x $CACHE/usr/bin/radosgw ]] && ! unpack_ceph; then
        [[ $EUID -eq 0 ]] || die "could not fetch the Ceph packages; as root, apt-get install ${CEPH_PACKAGES[*]}"
        log "unpacking failed; installing the packages instead"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${CEPH_PACKAGES[@]}"
      fi
      flock -u 9
    fi
  fi
  CEPH_ROOT=
  [[ -x $CACHE/usr/bin/radosgw ]] && CEPH_ROOT=$CACHE
  # The multiarch library directory, e.g. usr/lib/x86_64-linux-gnu: the one with Ceph's
  # object classes.
  local classes=("$CEPH_ROOT"/usr/lib/*/rados-classes)
  [[ -d ${classes[0]} ]] || die "no rados-classes directory under $CEPH_ROOT/usr/lib"
  CEPH_LIB=${classes[0]%/rados-classes}
  if [[ -n $CEPH_ROOT ]]; then
    local triplet=${CEPH_LIB##*/}
    export LD_LIBRARY_PATH="$CEPH_LIB/ceph:$CEPH_LIB:$CEPH_ROOT/lib/$triplet${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export PYTHONPATH="$CEPH_ROOT/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}"
  fi
}

# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------

as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local t0 pgdata=$DIR/pg/data sock=$DIR/pg/sock
  t0=$(now)
  [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 not found in $PG_BIN (set SRCOS_CI_PG_BIN)"
  mkdir -p "$pgdata" "$sock"
  chmod 0700 "$pgdata"
  touch "$DIR/log/postgres.log"
  [[ $EUID -ne 0 ]] || chown -R postgres: "$DIR/pg" "$DIR/log/postgres.log"
  as_pg "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust --no-sync -E UTF8 --locale=C \
    >"$DIR/log/initdb.log" 2>&1 || { cat "$DIR/log/initdb.log" >&2; die "initdb failed"; }
  # shellcheck disable=SC2086 # PG_OPTS is a list of options
  as_pg "$PG_BIN/pg_ctl" -D "$pgdata" -l "$DIR/log/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $sock $PG_OPTS" start >/dev/null ||
    { tail -n 20 "$DIR/log/postgres.log" >&2; die "PostgreSQL did not start"; }
  record postgres "$(head -n 1 "$pgdata/postmaster.pid")"
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "create database $PG_DB" >/dev/null
  log "PostgreSQL 15 on 127.0.0.1:$PG_PORT, database $PG_DB ($(since "$t0") s)"
}

# ---------------------------------------------------------------------------------------
# Ceph: one monitor, one in-memory OSD, radosgw
# ---------------------------------------------------------------------------------------

write_ceph_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v1:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr2 = false
ms bind port min = ${OSD_PORTS%-*}
ms bind port max = ${OSD_PORTS#*-}
auth cluster required = none
auth service required = none
auth client required = none
keyring = $CEPH/keyring
run dir = $CEPH/run
pid file = $CEPH/run/\$name.pid
admin socket = $CEPH/run/\$name.asok
log file = $CEPH/log/\$name.log
mon cluster log file = $CEPH/log/cluster.log
crash dir = $CEPH/crash
erasure code dir = $CEPH_LIB/ceph/erasure-code
plugin dir = $CEPH_LIB/ceph
osd class dir = $CEPH_LIB/rados-classes
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
paxos propose interval = 0.05

[mon]
mon data = $CEPH/mon/\$id

[osd]
osd data = $CEPH/osd/\$id
osd objectstore = memstore
memstore device bytes = $S3_BYTES
osd crush update on start = false
osd class update on start = false
osd op num shards = 2
osd op num threads per shard = 2

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw data = $CEPH/rgw
rgw thread pool size = 64
rgw enable usage log = false
rgw dynamic resharding = false
EOF
}

ceph_bin() { # TOOL ARGS...: a Ceph program from the unpacked packages, or the system's
  local tool=$1
  shift
  "$CEPH_ROOT/usr/bin/$tool" "$@"
}

# A command to the monitor, retried for up to a minute while the monitor is not there yet
# or answers `wrong fsid` (a client without the monitor map yet sends an all-zero fsid).
cephcmd() {
  local out end=$((SECONDS + 60))
  while :; do
    if out=$(timeout 30 /usr/bin/python3 "$CEPH_ROOT/usr/bin/ceph" -c "$CONF" --connect-timeout 10 "$@" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    printf '%s: %s\n' "$*" "$out" >>"$CEPH/log/cephcmd.log"
    if ((SECONDS >= end)) || ! ours ceph-mon "$(cat "$PIDS/ceph-mon.pid" 2>/dev/null)"; then
      log "ceph $* failed: $out"
      return 1
    fi
    sleep 0.25
  done
}

# Start a daemon that forks and writes its pid file; record it. NAME PIDFILE PROGRAM ARGS...
start_daemon() {
  local name=$1 pidfile=$2 i
  shift 2
  rm -f "$pidfile"
  ceph_bin "$@" >>"$CEPH/log/$name.out" 2>&1 || return 1
  for ((i = 0; i < 100; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.05
  done
  [[ -s $pidfile ]] || return 1
  record "$name" "$(cat "$pidfile")"
}

osd_up() {
  local out
  out=$(cephcmd osd stat -f json) || return 1
  [[ $out =~ \"num_up_osds\":[[:space:]]*1[,}] ]]
}

start_ceph_once() {
  local fsid osd_uuid i t0
  t0=$(now)
  rm -rf "$CEPH"
  mkdir -p "$CEPH"/{run,log,crash,mon/a,osd/0,rgw}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  write_ceph_conf "$fsid"

  ceph_bin monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" \
    "$CEPH/monmap" >"$CEPH/log/monmaptool.out" 2>&1 || return 1
  ceph_bin ceph-mon -c "$CONF" -i a --mkfs --monmap "$CEPH/monmap" \
    >"$CEPH/log/mon-mkfs.out" 2>&1 || return 1
  start_daemon ceph-mon "$CEPH/run/mon.a.pid" ceph-mon -c "$CONF" -i a || return 1

  cephcmd osd new "$osd_uuid" 0 >/dev/null || return 1
  ceph_bin ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >"$CEPH/log/osd-mkfs.out" 2>&1 || return 1
  cephcmd osd crush add osd.0 1.0 root=default host=localhost >/dev/null || return 1

  # Start the OSD, and again in place if it exits before it is up.
  local tries=0 up= end
  while ((tries < 3)) && [[ -z $up ]]; do
    tries=$((tries + 1))
    stop_one ceph-osd KILL
    if start_daemon ceph-osd "$CEPH/run/osd.0.pid" ceph-osd -c "$CONF" -i 0; then
      end=$((SECONDS + 60))
      while ((SECONDS < end)); do
        if osd_up; then up=1; break; fi
        ours ceph-osd "$(cat "$PIDS/ceph-osd.pid")" || break
        sleep 0.25
      done
    fi
    [[ -n $up ]] || log "OSD start $tries did not come up"
  done
  [[ -n $up ]] || return 1

  start_daemon radosgw "$CEPH/run/client.rgw.a.pid" radosgw -c "$CONF" -n client.rgw.a || return 1
  end=$((SECONDS + 90))
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/" 2>/dev/null; do
    ours radosgw "$(cat "$PIDS/radosgw.pid")" || { log "radosgw exited"; return 1; }
    ((SECONDS < end)) || { log "radosgw does not answer on 127.0.0.1:$S3_PORT"; return 1; }
    sleep 0.25
  done

  S3_ACCESS_KEY=$(/usr/bin/python3 -c 'import secrets, string; print("".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20)))')
  S3_SECRET_KEY=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
  # stdout would hold the secret: only stderr is kept.
  for i in 1 2 3; do
    timeout 60 "$CEPH_ROOT/usr/bin/radosgw-admin" -c "$CONF" user create --uid "$S3_USER" \
      --display-name "srcos tests" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
      >/dev/null 2>>"$CEPH/log/user-create.out" && break
    ((i < 3)) || return 1
    timeout 60 "$CEPH_ROOT/usr/bin/radosgw-admin" -c "$CONF" user info --uid "$S3_USER" \
      >/dev/null 2>&1 && break
    sleep 0.5
  done
  SRCOS_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" SRCOS_TEST_S3_BUCKET=$S3_BUCKET \
    SRCOS_TEST_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY SRCOS_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    SRCOS_TEST_S3_REGION=$S3_REGION \
    python3 "$ROOT/.ci/s3check.py" create-bucket >>"$CEPH/log/create-bucket.out" 2>&1 || return 1
  # Anonymous GETs, so that a log in the bucket is a static tlog-tiles log (tests read it
  # with monitor and verify over plain HTTP).
  SRCOS_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" SRCOS_TEST_S3_BUCKET=$S3_BUCKET \
    SRCOS_TEST_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY SRCOS_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    SRCOS_TEST_S3_REGION=$S3_REGION \
    python3 "$ROOT/.ci/s3check.py" public-read >>"$CEPH/log/create-bucket.out" 2>&1 || return 1
  log "Ceph radosgw on 127.0.0.1:$S3_PORT, bucket $S3_BUCKET ($(since "$t0") s)"
}

start_ceph() {
  local attempt
  for attempt in 1 2; do
    if start_ceph_once; then return 0; fi
    log "Ceph start $attempt failed; logs in $DIR/log/ceph-attempt-$attempt"
    stop_ceph
    rm -rf "$DIR/log/ceph-attempt-$attempt"
    cp -r "$CEPH/log" "$DIR/log/ceph-attempt-$attempt" 2>/dev/null || true
    grep -h -i -E 'error|fail|wrong fsid' "$CEPH"/log/*.log "$CEPH"/log/*.out 2>/dev/null |
      tail -n 10 >&2 || true
  done
  return 1
}

write_env() {
  umask 077
  cat >"$DIR/env.tmp" <<EOF
# Written by .ci/services.sh start; valid until .ci/services.sh stop.
export SRCOS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB
export SRCOS_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export SRCOS_TEST_S3_BUCKET=$S3_BUCKET
export SRCOS_TEST_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY
export SRCOS_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export SRCOS_TEST_S3_REGION=$S3_REGION
EOF
  mv "$DIR/env.tmp" "$DIR/env"
}

# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------

cmd_start() {
  local t0
  t0=$(now)
  if running; then die "services already run from $DIR; run '$0 stop' first"; fi
  check_port postgres "$PG_PORT" free
  check_port radosgw "$S3_PORT" free
  check_port ceph-mon "$MON_PORT" free
  check_port "OSD range start" "${OSD_PORTS%-*}"
  check_port "OSD range end" "${OSD_PORTS#*-}"
  ensure_ceph
  # Only a directory this script made (it holds .srcos-ci) or an empty one is wiped.
  if [[ -d $DIR && ! -e $DIR/.srcos-ci && -n $(ls -A "$DIR") ]]; then
    die "SRCOS_CI_DIR=$DIR exists and was not made by this script; choose another"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR/log" "$PIDS"
  touch "$DIR/.srcos-ci"
  chmod 0755 "$DIR"
  # A start that fails half-way stops what it started.
  trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started (logs in $DIR/log)"; stop_all; fi' EXIT
  start_postgres
  start_ceph || die "Ceph radosgw did not start twice in a row"
  write_env
  trap - EXIT
  log "ready in $(since "$t0") s; environment in $DIR/env"
}

cmd_stop() {
  stop_all
  # Keep the logs; drop the data (the database, the monitor's store) and the keys.
  if [[ -e $DIR/.srcos-ci ]]; then
    rm -rf "$DIR/pg" "$CEPH/osd" "$CEPH/mon" "$CEPH/rgw" "$DIR/env" "$DIR/env.tmp"
  fi
}

cmd_check() {
  [[ -f $DIR/env ]] || die "no $DIR/env: run '$0 start' first"
  # shellcheck disable=SC1091
  . "$DIR/env"
  local one
  one=$("$PG_BIN/psql" -X -A -t -v ON_ERROR_STOP=1 "$SRCOS_TEST_POSTGRES_URL" -c 'select 1') ||
    die "PostgreSQL: select 1 failed"
  [[ $one == 1 ]] || die "PostgreSQL: select 1 returned '$one'"
  log "PostgreSQL: select 1 -> 1 ($("$PG_BIN/psql" -X -A -t "$SRCOS_TEST_POSTGRES_URL" -c 'show server_version'))"
  python3 "$ROOT/.ci/s3check.py" check
}

cmd_status() {
  local f name pid
  for f in "$PIDS"/*.pid; do
    [[ -e $f ]] || { echo "nothing started from $DIR"; return 0; }
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    if ours "$name" "$pid"; then
      echo "$name pid $pid running, $(awk '/^VmRSS/{ print $2 " kB" }' "/proc/$pid/status") resident"
    else
      echo "$name pid $pid not running"
    fi
  done
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  check) cmd_check ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|check|stop|status" >&2; exit 2 ;;
esac
