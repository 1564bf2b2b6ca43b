#!/usr/bin/env bash
# Runs wrk with tickets.lua against a fresh `oxidesk serve` on SQLite.
#   bench/wrk/run.sh [SERVER_BINARY] [SECONDS] [CONNECTIONS]
# Prints wrk's report and the server's commit-group sizes (/metrics).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="${1:-$here/../../target/release/oxidesk}"
seconds="${2:-10}"
conns="${3:-16}"
dir="$(mktemp -d)"
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
db="sqlite://$dir/wrk.db"
port=$((20000 + RANDOM % 20000))
"$server" --database "$db" migrate >/dev/null
key="$("$server" --database "$db" key add --ip 127.0.0.1 2>/dev/null | head -1)"
OXIDESK__LISTEN="127.0.0.1:$port" "$server" --database "$db" serve 2>"$dir/server.log" &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
OXIDESK_KEY="$key" wrk -t2 -c"$conns" -d"${seconds}s" --latency -s "$here/tickets.lua" "http://127.0.0.1:$port"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^oxidesk_(sqlite_(batch|commit)[a-z_]*_(sum|count)|tickets_created_total)' || true
# Bytes the server sent to the disk (the log, checkpoints) and its CPU.
grep -E '^(write_bytes|syscw)' "/proc/$pid/io" || true
awk '{printf "cpu_seconds %.2f\n", ($14 + $15) / 100}' "/proc/$pid/stat"
