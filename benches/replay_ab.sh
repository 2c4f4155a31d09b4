#!/usr/bin/env bash
# Replay before and after in one run (issue 12, ADR 0011): builds `benches/replay.rs`
# against the library at REPLAY_BASELINE (default 6327a70, the commit before ADR 0011)
# in its own tree and target directory, then runs the baseline and the current build
# alternately (ROUNDS times each, default 2) on the same cached log of real leaves, so
# the ratio is measured under the same load. Outputs: target/perf/replay-ab.txt.
# The first run builds the log (SRCOS_REPLAY_ENTRIES, default 210,000: a few minutes);
# the baseline build compiles every dependency once more (~10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${REPLAY_BASELINE:-6327a70}
rounds=${ROUNDS:-2}
out=target/perf
mkdir -p "$out"
tree=target/replay-baseline
src=$tree/src
rm -rf "$src"
mkdir -p "$src"
git archive "$base" | tar -x -C "$src"
cp benches/replay.rs "$src/benches/"
cp benches/common/mod.rs "$src/benches/common/"
grep -q '^name = "replay"' "$src/Cargo.toml" ||
  printf '\n[[bench]]\nname = "replay"\nharness = false\n' >>"$src/Cargo.toml"
(cd "$src" && CARGO_TARGET_DIR=../target cargo build -q --release --bench replay)
cargo build -q --release --bench replay
newest() { ls -t "$1"/replay-* | grep -v '\.d$' | head -1; }
new=$(newest target/release/deps)
old=$(newest "$tree/target/release/deps")
entries=${SRCOS_REPLAY_ENTRIES:-210000}
export SRCOS_REPLAY_ENTRIES=$entries SRCOS_REPLAY_RUNS=${SRCOS_REPLAY_RUNS:-3}
"$new" --bench >/dev/null # builds (or finds) the cached log
mkdir -p "$src/target/replay-bench"
cp "target/replay-bench/mixed-$entries.bin" "$src/target/replay-bench/"
: >"$out/replay-ab.txt"
for round in $(seq "$rounds"); do
  for which in baseline current; do
    bin=$new
    [[ $which == baseline ]] && bin=$old
    echo "== round $round: $which ($(git rev-parse --short HEAD) vs $base)" | tee -a "$out/replay-ab.txt"
    "$bin" --bench 2>&1 | tee -a "$out/replay-ab.txt"
  done
done
# Ratio of the medians of the whole replay, per round.
awk '/^== round/ { which = $4 }
     /^replay\/tree_and_catalog/ { t[which] = $3 }
     /^replay\/tree_and_catalog/ && which == "current" {
       printf "replay speed-up (baseline time / current time): %.2f\n", t["baseline"] / t["current"] }' \
  "$out/replay-ab.txt" | tee -a "$out/replay-ab.txt"
