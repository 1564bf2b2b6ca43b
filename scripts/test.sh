#!/usr/bin/env bash
# Every check a commit must pass: formatting, lints, unit and integration
# tests and the conformance corpus, on SQLite and on PostgreSQL, and the
# OpenAPI document through an OpenAPI validator.
#
# PostgreSQL: TEST_DATABASE_URL (an admin URL; default
# postgres://postgres@127.0.0.1:5432/postgres). Each test makes its own
# database and drops it. When the server is unreachable the PostgreSQL
# half is skipped, unless OXIDESK_REQUIRE_PG=1 (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
pg_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
unset TEST_DATABASE_URL

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (SQLite)"
cargo test --workspace --all-targets
echo "== conformance (SQLite)"
scripts/conformance.sh
echo "== OpenAPI document (openapi-spec-validator)"
scripts/check-openapi.sh

if psql "$pg_url" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "== cargo test --test api (PostgreSQL)"
  TEST_DATABASE_URL="$pg_url" cargo test --test api
  echo "== cargo test --test browser (PostgreSQL)"
  TEST_DATABASE_URL="$pg_url" cargo test --test browser
  echo "== conformance (PostgreSQL)"
  TEST_DATABASE_URL="$pg_url" scripts/conformance.sh
elif [ "${OXIDESK_REQUIRE_PG:-0}" = 1 ]; then
  echo "PostgreSQL at $pg_url is unreachable" >&2
  exit 1
else
  echo "== PostgreSQL at $pg_url unreachable: PostgreSQL half skipped"
fi
