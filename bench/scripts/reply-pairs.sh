#!/bin/sh
# Staff replies at 1,000,000 tickets, two binaries interleaved, each run
# on a fresh copy of one seeded database (replies lengthen the threads
# they answer, and a reply's cost grows with its thread: runs on one
# database drift; README, Benchmark, session 18).
#
#   bench/scripts/reply-pairs.sh SEED_DB BEFORE_BINARY AFTER_BINARY [PAIRS] [SCENARIOS]
#
# SEED_DB is made once by `oxidesk-bench staff seed --database
# sqlite:///path --tickets 1000000` (then `sqlite3 SEED_DB 'PRAGMA
# wal_checkpoint(TRUNCATE)'`); the copy is written beside it as
# SEED_DB.run (as much free disk again, ~4 GB).
set -eu
seed=${1:?usage: $0 SEED_DB BEFORE AFTER [PAIRS] [SCENARIOS]}
before=${2:?before binary}
after=${3:?after binary}
pairs=${4:-3}
scenarios=${5:-reply}
target=${CARGO_TARGET_DIR:-$(dirname "$0")/../../target}
bench=$target/release/oxidesk-bench
run=$seed.run
i=0
while [ "$i" -lt "$pairs" ]; do
    for bin in "$before" "$after"; do
        cp "$seed" "$run"
        rm -f "$run-wal" "$run-shm"
        "$bench" staff measure --database "sqlite://$run" --seconds 10 \
            --only "$scenarios" --server "$bin" 2>&1 |
            grep '^round' | sed "s|^|$(basename "$bin") |"
    done
    i=$((i + 1))
done
rm -f "$run" "$run-wal" "$run-shm"
