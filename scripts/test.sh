#!/bin/bash
# Sets up the machine (Debian 12, as root) and runs every test: unit and component tests on a
# normal build, valgrind memcheck on the unit tests and the running suite, cppcheck and
# clang-tidy, a short libFuzzer run of every fuzz target, the container image built and run
# (tests/image/run.sh), then the unit and component tests again on an AddressSanitizer +
# UndefinedBehaviorSanitizer build.
# Ends with one line "N passed, N failed"; exits non-zero when anything failed.
# The component tests run in parallel (pytest-xdist): OKG_TEST_JOBS workers, default twice the
# CPUs since they mostly wait; OKG_TEST_JOBS=0 runs them one after another. Lint and the
# sanitizer build run beside the plain component tests; the fuzzers run alone (they fuzz for a
# fixed time, so sharing the CPUs would mean fewer inputs tried).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

./scripts/setup.sh || exit 1

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0

# The image's base (a debootstrap stand-in where no registry answers) waits mostly on the network
# and the disk: make it ready in the background while the kube-apiserver compiles.
./scripts/image.sh --base-only >"$results/image-base.log" 2>&1 &
image_base=$!

# The real kube-apiserver for the storage tests: built once from Debian's kubernetes source and
# cached in /var/cache/okg-sidecar (about 5 minutes cold on 2 cores, instant afterwards).
echo "== kube-apiserver (tests/kube/build-apiserver.sh)"
if ! tests/kube/build-apiserver.sh; then
        echo "== kube-apiserver: BUILD FAILED (the tests that need it fail too)"
        echo "kube-apiserver 0 1" >>"$results/counts"
        status=1
fi

jobs=${OKG_TEST_JOBS:-$((2 * $(nproc)))}
case $jobs in
''|*[!0-9]*) echo "OKG_TEST_JOBS=$jobs: not a number of workers"; exit 2 ;;
esac
parallel=()
[ "$jobs" -gt 0 ] && parallel=(-n "$jobs" --dist loadgroup)

# build NAME DIR [MESON OPTIONS...]: a build directory; a failure counts once.
build() {
        local name=$1 dir=$2
        shift 2
        echo "== $name: build"
        if ! ./scripts/build.sh "$dir" "$@"; then
                echo "== $name: BUILD FAILED"
                echo "build-$name 0 1" >>"$results/counts"
                return 1
        fi
}

# run_tests NAME DIR: the unit and the component tests of a built directory.
run_tests() {
        local name=$1 dir=$2 t0=$SECONDS
        echo "== $name: unit tests (meson test)"
        meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
        /usr/bin/python3 tests/count-results.py meson "$dir/meson-logs/testlog.json" >>"$results/counts"
        echo "== $name: component tests (pytest ${parallel[*]})"
        OKG_BUILD_DIR="$top/$dir" /usr/bin/python3 -m pytest -q -p no:cacheprovider "${parallel[@]}" \
                --junitxml="$results/$name.xml" tests/component || status=1
        /usr/bin/python3 tests/count-results.py junit "$results/$name.xml" >>"$results/counts"
        echo "== $name: tests $((SECONDS - t0)) s"
}

# check NAME COMMAND...: one pass or one failure in the counts.
check() {
        local name=$1
        shift
        echo "== $name: $*"
        local t0=$SECONDS rc=0
        if "$@"; then
                echo "$name 1 0" >>"$results/counts"
        else
                echo "$name 0 1" >>"$results/counts"
                status=1
                rc=1
        fi
        echo "== $name: $((SECONDS - t0)) s"
        return $rc
}

# background NAME COMMAND...: runs COMMAND in the background, its output in a log that
# finish NAME prints; finish returns COMMAND's exit status.
declare -A bg_pid
background() {
        local name=$1
        shift
        "$@" >"$results/$name.log" 2>&1 &
        bg_pid[$name]=$!
        echo "== $name: started in the background"
}
finish() {
        local rc=0
        wait "${bg_pid[$1]}" || rc=$?
        cat "$results/$1.log"
        return $rc
}

t0=$SECONDS
plain_built=0
build plain build-test && plain_built=1
# Lint and the sanitizer build need the CPUs; the component tests mostly wait. They run
# together (the tests do not depend on a quiet machine).
background lint check lint ./scripts/lint.sh
background asan-build build sanitized build-asan -Db_sanitize=address,undefined -Db_lundef=false
if [ "$plain_built" = 1 ]; then
        run_tests plain build-test
else
        status=1
fi
echo "== plain: $((SECONDS - t0)) s"
finish lint || status=1
asan_built=1
finish asan-build || { asan_built=0; status=1; }

check valgrind ./scripts/valgrind.sh build-test --daemons
check fuzz ./scripts/fuzz.sh 30
echo "== image base (scripts/image.sh --base-only, started at the beginning)"
wait "$image_base" || { cat "$results/image-base.log"; echo "== image base: FAILED"; }
check image tests/image/run.sh
if [ "$asan_built" = 1 ]; then
        t0=$SECONDS
        ASAN_OPTIONS=detect_leaks=1:exitcode=23:abort_on_error=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        OKG_SANITIZED=1 \
                run_tests sanitized build-asan
        echo "== sanitized: $((SECONDS - t0)) s (its build ran beside the plain tests)"
fi

echo "== all stages: $SECONDS s"
awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f; exit (f > 0)}' "$results/counts" || status=1
exit $status
