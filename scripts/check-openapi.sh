#!/usr/bin/env bash
# Validates the OpenAPI document the server serves (`oxidesk openapi`
# prints the same bytes) with openapi-spec-validator (PyPI), as OpenAPI
# 3.1. The interpreter is $OPENAPI_VALIDATOR_PYTHON (CI: a venv made by .ci/run),
# else python3. Without the validator the check is skipped, unless
# OXIDESK_REQUIRE_OPENAPI_VALIDATOR=1 (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${OPENAPI_VALIDATOR_PYTHON:-python3}"
if ! "$py" -c 'import openapi_spec_validator' 2>/dev/null; then
  if [ "${OXIDESK_REQUIRE_OPENAPI_VALIDATOR:-0}" = 1 ]; then
    echo "openapi-spec-validator is not installed for $py" >&2
    exit 1
  fi
  echo "openapi-spec-validator not installed for $py (pip install openapi-spec-validator): skipped"
  exit 0
fi
spec="$(mktemp --suffix=.json)"
broken="$(mktemp --suffix=.json)"
trap 'rm -f "$spec" "$broken"' EXIT
cargo run -q --bin oxidesk -- openapi >"$spec"
"$py" -m openapi_spec_validator --schema 3.1 "$spec"
# The check can fail: the same document without `info` must be refused.
"$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); del d["info"]; json.dump(d, open(sys.argv[2], "w"))' "$spec" "$broken"
if "$py" -m openapi_spec_validator --schema 3.1 "$broken" >/dev/null 2>&1; then
  echo "openapi-spec-validator accepted a document without info: the check proves nothing" >&2
  exit 1
fi
