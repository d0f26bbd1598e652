#!/bin/bash
# Runs every benchmark on a release build and prints their figures, then one table of the
# headline figures with the baseline measured in the same run where there is one.
# Usage: bench/run-all.sh [RUNS]   (as root on Debian 12; loopback only; ~10 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}

./scripts/setup.sh >/dev/null
./scripts/build.sh build-bench -Dbuildtype=release
tests/kube/build-apiserver.sh >/dev/null

export BENCH_SUMMARY
BENCH_SUMMARY=$(mktemp)
trap 'rm -f "$BENCH_SUMMARY"' EXIT

for b in sidecard-bench.py storage-bench.py storage-converge-bench.py records-capacity-bench.py hotupdate-bench.py probe-bench.py probe-bench-1000 sq-bench.py fleet-bench.py; do
        echo "== bench/$b"
        case $b in
        sidecard-bench.py) /usr/bin/python3 "bench/$b" build-bench "$runs" ;;
        storage-bench.py) /usr/bin/python3 "bench/$b" build-bench 200 ;;
        hotupdate-bench.py) /usr/bin/python3 "bench/$b" build-bench 20 ;;
        probe-bench-1000) /usr/bin/python3 bench/probe-bench.py build-bench 10000 1000 0 ;;
        *) /usr/bin/python3 "bench/$b" build-bench ;;
        esac || echo "(bench/$b failed)"
        echo
done

echo "== summary ($(nproc) cores, $(date -u +%Y-%m-%d))"
awk -F'\t' 'BEGIN { printf "%-64s %10s %-6s %10s %7s  %s\n", "figure", "value", "unit", "baseline", "ratio", "goal" }
            { printf "%-64s %10s %-6s %10s %7s  %s\n", $1, $2, $3, $4, $5, $6 }' "$BENCH_SUMMARY"
