#!/bin/sh
# Ticket intake with the search index against a binary without it
# (issue 13: "intake with search indexing at no less than 90% of its rate
# without"): interleaved pairs of the intake benchmark (SQLite, ~1 KB
# JSON tickets, c=16), alternating which runs first, then each pair's
# ratio and the median ratio.
#
#   bench/scripts/intake-pairs.sh WITHOUT_BINARY [PAIRS] [SECONDS] [WITH_BINARY]
#
# WITH_BINARY defaults to target/release/oxidesk (cargo build --release);
# WITHOUT_BINARY is an `oxidesk` built from the commit before the index
# (see README, Benchmark).
set -eu
without=${1:?usage: $0 WITHOUT_BINARY [PAIRS] [SECONDS] [WITH_BINARY]}
pairs=${2:-6}
seconds=${3:-10}
target=${CARGO_TARGET_DIR:-$(dirname "$0")/../../target}
with=${4:-$target/release/oxidesk}
bench=$target/release/oxidesk-bench

rate() {
    "$bench" --server "$1" --concurrency 16 --seconds "$seconds" --format json \
        | awk '/^tickets\/s:/ {print $2}'
}

out=$(mktemp)
i=1
while [ "$i" -le "$pairs" ]; do
    if [ $((i % 2)) -eq 1 ]; then
        w=$(rate "$with"); wo=$(rate "$without")
    else
        wo=$(rate "$without"); w=$(rate "$with")
    fi
    echo "pair $i: with index $w tickets/s, without $wo tickets/s, ratio $(awk "BEGIN {printf \"%.3f\", $w/$wo}")"
    echo "$w $wo" >>"$out"
    i=$((i + 1))
done
awk '{r[NR] = $1 / $2; sw += $1; swo += $2}
     END {
        n = asort(r)
        med = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
        printf "median ratio %.3f (min %.3f, max %.3f); mean rates with %.0f, without %.0f tickets/s\n",
            med, r[1], r[n], sw / NR, swo / NR
     }' "$out"
rm -f "$out"
