#!/usr/bin/env python3
"""CPU per admitted publication over HTTP, split by stage (issue 12).

Starts a fresh release `serve`, drives it with `loadgen --rate max`, and reads the CPU
time (user + system) of every server thread and of the load generator from /proc over
a window in the middle of the run. The server's threads each do one stage, so grouping
them by name splits the request path:

  http       tokio-rt-worker: HTTP, parsing, signature verification, authorisation,
             evidence analysis, receipts
  sequencer  admission against the catalog state, integration, the projection writes
  committer  tile writes, fsync, the checkpoint swap, answers
  sled       the projection store's own threads (sled-io-*, its flusher)
  state-map  the state map thread (only with --state-commit-every)
  other      snapshots, the read pool, threads that exited in the window (the tokio
             blocking pool), the main thread
  loadgen    the load generator (signing is done before the window)

The divisor is the growth of the tree in the window (publications admitted and durable).
Figures are microseconds of CPU per publication; the budget line is what 2 cores allow
per request at the issue's 15,000/s target (133 us), measured on the same machine in the
same run, so the ratio does not depend on the machine's speed.

Usage: python3 benches/cpu_split.py [--window S] [--label TEXT] [-- serve flags...]
Run from the repository root after `cargo build --release`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.environ.get("SRCOS_BIN", "target/release/srcos-catalog")
PORT = 18093
TICKS = os.sysconf("SC_CLK_TCK")
GROUPS = ["http", "sequencer", "committer", "sled", "state-map", "other", "loadgen"]


def group_of(comm):
    if comm.startswith("tokio-rt-worker"):
        return "http"
    if comm in ("sequencer", "committer", "state-map"):
        return comm
    if comm.startswith("sled-io") or comm == "log flusher":
        return "sled"
    return "other"


def cpu_ticks(stat_path):
    """utime + stime of one /proc stat file (the comm field may hold spaces)."""
    with open(stat_path) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def server_cpu(pid):
    """Ticks per group for the live threads, and the whole process's ticks."""
    groups = {g: 0 for g in GROUPS}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            groups[group_of(comm)] += cpu_ticks(f"/proc/{pid}/task/{tid}/stat")
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread exited between the listing and the read
    return groups, cpu_ticks(f"/proc/{pid}/stat")


def tree_size():
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/log", timeout=5) as r:
        return json.load(r)["treeSize"]


def wait_listening(log_path, server):
    for _ in range(600):
        with open(log_path) as f:
            if "listening on" in f.read():
                return
        if server.poll() is not None:
            sys.exit(f"serve exited: see {log_path}")
        time.sleep(0.1)
    sys.exit("serve did not start within 60 s")


def measure(window, serve_flags):
    data = tempfile.mkdtemp(prefix="cpu-split-", dir="target")
    log_path = os.path.join(data, "serve.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [BIN, "serve", "--data", os.path.join(data, "d"),
             "--listen", f"127.0.0.1:{PORT}", *serve_flags],
            stdout=log, stderr=subprocess.STDOUT)
    loadgen = None
    try:
        wait_listening(log_path, server)
        loadgen = subprocess.Popen(
            [BIN, "loadgen", "--server", f"http://127.0.0.1:{PORT}",
             "--admin-key", os.path.join(data, "d", "admin.key"), "--rate", "max",
             "--duration", f"{int(window) + 8}s", "--connections", "256",
             "--max-requests", "400000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Signing happens before the first request: wait until the tree grows, then
        # let the load settle before the window opens.
        start = tree_size()
        while tree_size() < start + 100:
            if loadgen.poll() is not None:
                sys.exit("loadgen ended before the load began:\n" + loadgen.stdout.read())
            time.sleep(0.2)
        time.sleep(2)
        before, before_total = server_cpu(server.pid)
        lg_before = cpu_ticks(f"/proc/{loadgen.pid}/stat")
        size_before, t0 = tree_size(), time.monotonic()
        time.sleep(window)
        after, after_total = server_cpu(server.pid)
        lg_after = cpu_ticks(f"/proc/{loadgen.pid}/stat")
        size_after, t1 = tree_size(), time.monotonic()
        out = loadgen.communicate()[0]
    finally:
        if loadgen and loadgen.poll() is None:
            loadgen.kill()
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)
    admitted = size_after - size_before
    ticks = {g: after[g] - before[g] for g in GROUPS}
    # Threads that exited in the window (the blocking pool) count in the process total only.
    ticks["other"] += (after_total - before_total) - sum(ticks.values())
    ticks["loadgen"] = lg_after - lg_before
    us = {g: ticks[g] / TICKS * 1e6 / max(admitted, 1) for g in GROUPS}
    return admitted / (t1 - t0), us, out.strip().splitlines()[-1] if out else ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--label", default="default")
    parser.add_argument("serve_flags", nargs="*")
    args = parser.parse_args()
    rate, us, summary = measure(args.window, args.serve_flags)
    budget = 2 * 1e6 / 15000
    total = sum(us.values())
    print(f"{args.label}: {rate:,.0f} publications/s in the window; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  {'stage':<10} {'us/pub':>8} {'share':>7}")
    for g in GROUPS:
        print(f"  {g:<10} {us[g]:>8.1f} {us[g] / total:>7.1%}")
    print(f"  {'total':<10} {total:>8.1f}  = {total / budget:.2f}x the 15k/s budget "
          f"({budget:.0f} us on 2 cores)")
    print(f"  loadgen: {summary}")


if __name__ == "__main__":
    main()
