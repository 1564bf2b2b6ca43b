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
# XML (issue 3) and email (issue 4) are not built yet: the route and
# custom-field cases that use them wait for those issues.
scripts/conformance.sh --only 'auth-*' 'json-*' 'limit-*' \
  'route-201-*' 'route-content-*' 'route-error-*' 'route-no-rewrite-json' 'route-unknown-*' \
  'custom-[!a]*' 'custom-*-json'
