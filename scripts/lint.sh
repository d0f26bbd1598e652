#!/bin/bash
# Static analysis of the C sources: cppcheck (warning, performance, portability) and clang-tidy
# (the checks in .clang-tidy, which also says what is left out and why). Findings are printed
# as FILE:LINE:COL: ... [check]; exits non-zero when either tool finds anything.
# A false positive gets a narrow inline suppression with a reason:
#   cppcheck:   // cppcheck-suppress CHECK-ID     (on the line before)
#   clang-tidy: // NOLINT(CHECK-NAME): why        (on the line itself)
# Usage: lint.sh [cppcheck|clang-tidy]   (default: both)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
what=${1:-all}
dir=${LINT_BUILD_DIR:-build-fuzz}

# The C sources: the common library, every daemon and tool, the fuzz targets and the unit tests
# (a test that misuses memory or reads a dead value checks less than it says). The unit tests
# are 19 of about 105 files clang-tidy reads, so about a fifth more time: on the shared 2-core
# machine under heavy load, clang-tidy on tests/unit alone took 70 s and cppcheck 60 s.
src_dirs=(libokg-common)
for d in okg*/; do
        [ -f "$d/meson.build" ] && src_dirs+=("${d%/}")
done
src_dirs+=(tests/fuzz tests/unit)

missing=()
for p in cppcheck clang clang-tidy-14 libclang-rt-14-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "lint: missing packages (${missing[*]}); run as root" >&2
                exit 1
        fi
        echo "lint: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
                exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

run_cppcheck() {
        local includes=()
        for d in "${src_dirs[@]}"; do
                includes+=(-I "$d")
        done
        # json-c's iteration macro, so that cppcheck need not parse the system headers.
        cat >"$work/okg.cfg" <<'EOF'
<?xml version="1.0"?>
<def format="2">
  <define name="json_object_object_foreach(obj,key,val)" value="for (char *key = 0, *val = 0; key; )"/>
</def>
EOF
        echo "== cppcheck $(cppcheck --version | cut -d' ' -f2) on ${src_dirs[*]}"
        # Suppressed everywhere, for reasons that hold for the whole tree:
        #  memleak, resourceLeak: cppcheck does not model __attribute__((cleanup)), so every
        #    _cleanup_(freep)/_cleanup_(closep) variable looks leaked; leaks are caught at run
        #    time (LSan in scripts/test.sh, valgrind in scripts/valgrind.sh, the fuzzers).
        #  readdirCalled: its advice, readdir_r(), is deprecated; readdir() is safe per DIR.
        #  missingIncludeSystem: system headers are not parsed, on purpose (speed, noise).
        # -j would disable cppcheck's unusedFunction-style whole-program checks; we have none
        # enabled, so the files are checked in parallel.
        if ! cppcheck --quiet --error-exitcode=1 -j "$(nproc)" \
                --std=c11 -D_GNU_SOURCE --platform=unix64 --library=posix --library="$work/okg.cfg" \
                --enable=warning,performance,portability --inline-suppr \
                --suppress=missingIncludeSystem --suppress=memleak --suppress=resourceLeak \
                --suppress=readdirCalled \
                --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
                "${includes[@]}" "${src_dirs[@]}" 2>"$work/cppcheck.log"; then
                status=1
        fi
        if [ -s "$work/cppcheck.log" ]; then
                cat "$work/cppcheck.log"
                status=1
                echo "== cppcheck: $(grep -c '\[[A-Za-z0-9_]*\]$' "$work/cppcheck.log") findings"
        else
                echo "== cppcheck: clean"
        fi
}

run_clang_tidy() {
        # clang-tidy needs a compilation database from a clang build dir; the fuzz build dir
        # (scripts/fuzz.sh) is one, and it also compiles tests/fuzz. Configuring is enough.
        if [ ! -f "$dir/compile_commands.json" ]; then
                CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
                        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null ||
                        { echo "lint: meson setup $dir failed"; status=1; return; }
        fi
        # Re-runs meson when a meson.build changed, so that new files are in the database.
        ninja -C "$dir" build.ninja >/dev/null || { echo "lint: meson reconfigure of $dir failed"; status=1; return; }
        local regex
        regex="$PWD/($(IFS='|'; echo "${src_dirs[*]}"))/[^/]*\\.c\$"
        echo "== clang-tidy $(clang-tidy-14 --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1) on ${src_dirs[*]}"
        run-clang-tidy-14 -p "$dir" -quiet -j "$(nproc)" "$regex" >"$work/tidy.log" 2>&1
        # Keep the findings and their notes; drop the progress lines and the command lines.
        # Paths relative to the top: "../x.c" and "/top/build-fuzz/../x.c" become "x.c".
        sed -E 's/\x1b\[[0-9;]*m//g; s#^('"$PWD"'/)?('"$dir"'/)?\.\./##' "$work/tidy.log" |
                grep -vE '^clang-tidy-14 |^[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing|^Found compiler error' \
                        >"$work/tidy.txt"
        local n
        n=$(grep -E ': (warning|error): ' "$work/tidy.txt" | sort -u | wc -l)
        if [ "$n" -gt 0 ]; then
                # One block per finding, each printed once (a header is seen by many files).
                awk '/: (warning|error): / { show = !seen[$0]++ } show' "$work/tidy.txt"
                echo "== clang-tidy: $n findings"
                status=1
        else
                echo "== clang-tidy: clean"
        fi
}

case $what in
cppcheck) run_cppcheck ;;
clang-tidy) run_clang_tidy ;;
all) run_cppcheck; run_clang_tidy ;;
*) echo "usage: $0 [cppcheck|clang-tidy]" >&2; exit 2 ;;
esac
exit $status
