#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan+UBSan) in build-fuzz and runs each for
# a short time over a copy of its seed corpus, so that a run never grows the repository.
# Usage: fuzz.sh [SECONDS_PER_TARGET (default 30)] [TARGET...]
# Prints per target the runs executed and whether it crashed; a crash input is kept under
# build-fuzz/fuzz-artifacts/ and its path printed. Exits non-zero on any crash or build failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
top=$PWD
seconds=${1:-30}
shift $(($# > 0 ? 1 : 0))
dir=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}

case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac

# clang and its runtimes (libFuzzer, ASan, UBSan) from Debian.
missing=()
for p in clang libclang-rt-14-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "fuzz: missing packages (${missing[*]}); run as root" >&2
                exit 1
        fi
        echo "fuzz: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
                exit 1
fi

if [ ! -f "$dir/build.ninja" ]; then
        CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
                -Dc_args=-fsanitize=fuzzer-no-link >/dev/null || { echo "fuzz: meson setup failed"; exit 1; }
fi
# Only the fuzz targets and what they link: the daemons themselves are not needed here.
ninja -C "$dir" fuzz >/dev/null || { echo "fuzz: BUILD FAILED (ninja -C $dir fuzz)"; exit 1; }

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
        for f in tests/fuzz/fuzz-*.c; do
                targets+=("$(basename "$f" .c)")
        done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=$top/$dir/fuzz-artifacts
mkdir -p "$artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_target() {
        local t=$1 corpus=$work/corpus-$1 dict=()
        mkdir -p "$corpus"
        cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
        if [ "$t" = fuzz-config ]; then
                cp tests/config-good/*.yaml tests/config-bad/*.yaml "$corpus"/
        fi
        case $t in
        fuzz-config | fuzz-kubeconfig | fuzz-hotupdate-request | fuzz-hotupdate-policy) dict=(-dict="tests/fuzz/$t.dict") ;;
        *) dict=(-dict=tests/fuzz/json.dict) ;;
        esac
        "$dir/tests/fuzz/$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" >"$work/$t.log" 2>&1
        echo $? >"$work/$t.rc"
}

running=0
for t in "${targets[@]}"; do
        if [ ! -x "$dir/tests/fuzz/$t" ]; then
                echo "fuzz: no target $t" >&2
                exit 2
        fi
        run_target "$t" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
                wait -n
                running=$((running - 1))
        fi
done
wait

crashed=0
for t in "${targets[@]}"; do
        log=$work/$t.log
        rc=$(cat "$work/$t.rc")
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        # libFuzzer prints "Test unit written to PATH" for a crash, leak, timeout or OOM.
        unit=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
        if [ "$rc" -eq 0 ] && [ -z "$unit" ]; then
                printf '%-24s %10s runs in %ss (%s/s), no crash\n' "$t" "${runs:-?}" "$seconds" "${rate:-?}"
        else
                crashed=$((crashed + 1))
                printf '%-24s CRASH (exit %s) after %s runs\n' "$t" "$rc" "${runs:-?}"
                grep -E 'ERROR: |property violated|runtime error|SUMMARY' "$log" | head -5 | sed 's/^/    /'
                echo "    crash input: ${unit:-none written, see the log below}"
                [ -n "$unit" ] && echo "    reproduce:   $dir/tests/fuzz/$t $unit"
                [ -z "$unit" ] && tail -20 "$log" | sed 's/^/    | /'
        fi
done
echo "fuzz: ${#targets[@]} targets, $crashed crashed"
[ "$crashed" -eq 0 ]
