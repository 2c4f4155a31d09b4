#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Each
# corpus is seeded from the test vectors and from a real local log that this script makes
# with the release CLI (the README walkthrough in --data mode). A crash stops the script
# with the target's exit status; libFuzzer leaves the input in fuzz/artifacts/TARGET/.
# Executions per target are printed at the end (docs/threat-model.md quotes them).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
shift || true
ALL=(signed_note checkpoint tlog_proof key_strings tiles dsse_submission request_payloads
     decision_payloads witness_add_checkpoint evidence receipt leaf merkle_proofs)
TARGETS=("${@:-${ALL[@]}}")
[ "$#" -gt 0 ] || TARGETS=("${ALL[@]}")
SANITIZER="${FUZZ_SANITIZER:-address}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release -q --bin srcos-catalog
bin="$PWD/target/release/srcos-catalog"
(
  cd "$work"
  fx="$OLDPWD/tests/fixtures"
  sc() { "$bin" "$@" >/dev/null 2>&1; }
  sc keygen --name fuzz.example/publisher --out publisher
  sc keygen --name alice@release --out alice
  sc keygen --name bob@release --out bob
  # A first local command creates the log (genesis) and its admin key.
  sc policy show --data data || true
  A="--data data --admin-key data/admin.key --target-prefix sourceos://catalog/images/"
  sc grant $A --publisher-vkey publisher.vkey --channel dev --out g1.json
  sc grant $A --publisher-vkey alice.vkey --role reviewer --channel '*' --out g2.json
  sc grant $A --publisher-vkey bob.vkey --role reviewer --channel '*' --out g3.json
  S=quay.io/socios/sourceos-smoke-runner@sha256:421f7664cba94a1aec4d68625594e68fa400e9d4bc95f2ac1466341d3fbda0c7
  T=sourceos://catalog/images/sourceos-smoke-runner
  sc request from-reports "$fx/reports" --subject $S --target $T --channel dev --out request.json
  sc publish --data data --key publisher.key --upload --evidence-dir "$fx/reports" request.json --out p.json
  sc review --data data --key alice.key --target $T --subject $S --channel dev --approve --out r1.json
  sc review --data data --key bob.key --target $T --subject $S --channel candidate --approve --out r2.json
  sc promote --data data --key alice.key --target $T --subject $S --from dev --to candidate --out p1.json
  python3 "$OLDPWD/fuzz/seeds.py" data "$OLDPWD/fuzz/corpus"
)

cd fuzz
summary=()
for t in "${TARGETS[@]}"; do
  log="$work/$t.log"
  echo "== $t ($SECS s)"
  if ! cargo +nightly fuzz run -s "$SANITIZER" "$t" "corpus/$t" -- \
      -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  summary+=("$t: $runs executions in ${SECS} s")
done
printf '%s\n' "${summary[@]}"
