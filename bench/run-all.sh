#!/bin/bash
# Runs every benchmark on a release build and prints their figures, then one table of the
# headline figures with the baseline measured in the same run where there is one.
# Usage: bench/run-all.sh [RUNS] [BASE_REF]   (as root on Debian 12; loopback only; ~15 minutes)
# BASE_REF (a commit, e.g. the one before a change) is built too, from `git archive`, and the
# footprint and start-up figures are measured on both builds in turn in the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
base_ref=${2:-}

./scripts/setup.sh >/dev/null
./scripts/build.sh build-bench -Dbuildtype=release
tests/kube/build-apiserver.sh >/dev/null

export BENCH_SUMMARY
BENCH_SUMMARY=$(mktemp)
base_src=
trap 'rm -f "$BENCH_SUMMARY"; [ -z "$base_src" ] || rm -rf "$base_src"' EXIT
base=
if [ -n "$base_ref" ]; then
        base_src=$(mktemp -d)
        git archive "$base_ref" | tar -x -C "$base_src"
        (cd "$base_src" && ./scripts/build.sh build-bench -Dbuildtype=release) || exit 1
        base=$base_src/build-bench
        echo "baseline: $base_ref ($(git rev-parse --short "$base_ref")) built in $base"
fi

for b in sidecard-bench.py footprint-bench.py storage-bench.py storage-converge-bench.py records-capacity-bench.py hotupdate-bench.py probe-bench.py probe-bench-1000 sq-bench.py fleet-bench.py; do
        echo "== bench/$b"
        case $b in
        sidecard-bench.py) /usr/bin/python3 "bench/$b" build-bench "$runs" $base ;;
        # Per mapping, after the demo's first probe too; against the baseline when there is one.
        footprint-bench.py) /usr/bin/python3 "bench/$b" --after-probe $base build-bench ;;
        storage-bench.py) /usr/bin/python3 "bench/$b" build-bench 200 ;;
        hotupdate-bench.py) /usr/bin/python3 "bench/$b" build-bench 20 ;;
        probe-bench-1000) /usr/bin/python3 bench/probe-bench.py build-bench 10000 1000 0 ;;
        *) /usr/bin/python3 "bench/$b" build-bench ;;
        esac || echo "(bench/$b failed)"
        echo
done

echo "== summary ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d))"
awk -F'\t' 'BEGIN { printf "%-64s %10s %-6s %10s %7s  %s\n", "figure", "value", "unit", "baseline", "ratio", "goal" }
            { printf "%-64s %10s %-6s %10s %7s  %s\n", $1, $2, $3, $4, $5, $6 }' "$BENCH_SUMMARY"
