#!/usr/bin/env bash
# Every check a commit must pass: formatting, lints, unit and integration
# tests, and the conformance corpus families implemented so far.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== conformance"
scripts/conformance.sh
