#!/usr/bin/env bash
# Runs ../shared/conformance against a fresh oxidesk.
#
#   scripts/conformance.sh [run.py arguments...]
#   scripts/conformance.sh --only 'json-*' --cases DIR
#
# Builds oxidesk, starts it with tests/conformance/oxidesk.toml on a free
# port with a fresh SQLite database, makes the fixture's four keys, runs
# the corpus runner with them and exits with the runner's status.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
shared="${OXIDESK_SHARED:-$here/../shared}"
runner="$shared/conformance/run.py"
[ -f "$runner" ] || { echo "conformance runner not found at $runner" >&2; exit 2; }

cargo build --quiet --manifest-path "$here/Cargo.toml" --bin oxidesk
# Where cargo put it: honours CARGO_TARGET_DIR and cargo's own config.
target="$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/Cargo.toml" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target/debug/oxidesk"
work="$(mktemp -d)"
config="$here/tests/conformance/oxidesk.toml"
export OXIDESK_CONFIG="$config"
# TEST_DATABASE_URL (a PostgreSQL admin URL) runs the corpus on a fresh
# PostgreSQL database instead of a SQLite file.
pg_db=""
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  pg_db="oxidesk_conf_$$_$RANDOM"
  psql "$TEST_DATABASE_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
  export OXIDESK__DATABASE="${TEST_DATABASE_URL%/*}/$pg_db"
else
  export OXIDESK__DATABASE="sqlite://$work/oxidesk.db"
fi
# Notifications are queued but not sent: no SMTP relay is part of this run.
export OXIDESK__MAIL__ENABLED=false
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# Only `serve` and `migrate` create a database; the keys go into it first.
"$bin" migrate >/dev/null
key() { "$bin" key add "$@" 2>/dev/null | head -n1; }
default_key="$(key --ip 127.0.0.1 --can-read --notes 'conformance default')"
inactive_key="$(key --ip 127.0.0.1 --notes 'conformance inactive')"
inactive_id="$("$bin" key list | awk 'NR>1 && /conformance inactive/ {print $1}')"
"$bin" key revoke "$inactive_id" >/dev/null
no_create_key="$(key --ip 127.0.0.1 --no-create --notes 'conformance no_create')"
other_ip_key="$(key --ip 192.0.2.10 --notes 'conformance other_ip')"

RUST_LOG="${RUST_LOG:-warn}" "$bin" serve --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"
  if [ -n "$pg_db" ]; then psql "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
}
trap cleanup EXIT
for _ in $(seq 100); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done

set +e
python3 "$runner" --base-url "http://127.0.0.1:$port" --api-key "$default_key" \
  --key inactive="$inactive_key" --key no_create="$no_create_key" --key other_ip="$other_ip_key" \
  --alt-source-address 127.0.0.2 \
  --pipe-cmd "$bin pipe" \
  "$@"
status=$?
set -e
if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
  echo "--- server log (last 40 lines)" >&2; tail -n 40 "$work/server.log" >&2
fi
exit "$status"
