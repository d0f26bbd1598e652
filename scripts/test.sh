#!/bin/bash
# Sets up the machine (Debian 12, as root) and runs every test: unit and component tests on a
# normal build, valgrind memcheck on the unit tests and the running suite, cppcheck and
# clang-tidy, a short libFuzzer run of every fuzz target, the container image built and run
# (tests/image/run.sh), then the unit and component tests again on an AddressSanitizer +
# UndefinedBehaviorSanitizer build.
# Ends with one line "N passed, N failed"; exits non-zero when anything failed.
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

run_variant() {
        local name=$1 dir=$2
        shift 2
        local t0=$SECONDS
        echo "== $name: build"
        if ! ./scripts/build.sh "$dir" "$@"; then
                echo "== $name: BUILD FAILED"
                echo "build-$name 0 1" >>"$results/counts"
                status=1
                return
        fi
        echo "== $name: unit tests (meson test)"
        meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
        /usr/bin/python3 tests/count-results.py meson "$dir/meson-logs/testlog.json" >>"$results/counts"
        echo "== $name: component tests (pytest)"
        OKG_BUILD_DIR="$top/$dir" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
                --junitxml="$results/$name.xml" tests/component || status=1
        /usr/bin/python3 tests/count-results.py junit "$results/$name.xml" >>"$results/counts"
        echo "== $name: $((SECONDS - t0)) s"
}

# check NAME COMMAND...: one pass or one failure in the counts.
check() {
        local name=$1
        shift
        echo "== $name: $*"
        local t0=$SECONDS
        if "$@"; then
                echo "$name 1 0" >>"$results/counts"
        else
                echo "$name 0 1" >>"$results/counts"
                status=1
        fi
        echo "== $name: $((SECONDS - t0)) s"
}

run_variant plain build-test
check valgrind ./scripts/valgrind.sh build-test --daemons
check lint ./scripts/lint.sh
check fuzz ./scripts/fuzz.sh 30
echo "== image base (scripts/image.sh --base-only, started at the beginning)"
wait "$image_base" || { cat "$results/image-base.log"; echo "== image base: FAILED"; }
check image tests/image/run.sh
ASAN_OPTIONS=detect_leaks=1:exitcode=23:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
OKG_SANITIZED=1 \
        run_variant sanitized build-asan -Db_sanitize=address,undefined -Db_lundef=false

echo "== all stages: $SECONDS s"
awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f; exit (f > 0)}' "$results/counts" || status=1
exit $status
