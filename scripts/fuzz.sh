#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 10:
# the smoke run of .ci/run; long runs: `scripts/fuzz.sh 3600 email`).
# cargo-fuzz drives libFuzzer; `-s none` builds without a sanitizer, which
# the stable toolchain allows (ASan needs nightly: FUZZ_SANITIZER=address
# with `cargo +nightly`). New inputs go to fuzz/found/TARGET, not into the
# checked-in seed corpora; crashes to fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-10}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(json xml data_url email tnef http)
fi
sanitizer="${FUZZ_SANITIZER:-none}"
# FUZZ_PROFILE=dev (the CI smoke run): a build without optimisation,
# minutes faster to make, slower to run.
profile=()
if [ "${FUZZ_PROFILE:-release}" = dev ]; then profile=(--dev); fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
cargo fuzz build -s "$sanitizer" "${profile[@]}"
rm -rf artifacts
for t in "${targets[@]}"; do
  mkdir -p "found/$t"
  echo "== fuzz $t for ${seconds}s"
  cargo fuzz run -s "$sanitizer" "${profile[@]}" "$t" "found/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: Done)|ERROR|panicked|Test unit written' || true
  # A crash leaves its input in artifacts/; the run above printed it.
  if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/oom-*" >/dev/null \
     || compgen -G "artifacts/$t/timeout-*" >/dev/null; then
    echo "fuzz target $t found a failure: fuzz/artifacts/$t" >&2
    exit 1
  fi
done
