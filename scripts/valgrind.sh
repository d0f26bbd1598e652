#!/bin/bash
# Runs the unit tests of a plain (non-sanitized) build dir under valgrind memcheck, then, with
# --daemons, a short life of the whole suite with every daemon under memcheck: start, /readyz,
# a few bus calls and HTTP requests, a plugin restart, a config reload and a clean stop.
# With --component, the pytest component tests (all, or the pytest arguments given) run against a
# shadow build dir whose daemons are wrapper scripts that exec them under memcheck.
# Usage: valgrind.sh BUILD_DIR [--daemons | --component [PYTEST ARGS...]]
# Fails on any memcheck error (invalid access, uninitialised use, bad free) and on definite
# leaks; "possibly lost" and "still reachable" are not errors. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/ports.sh

if [ $# -lt 1 ]; then
        echo "usage: $0 BUILD_DIR [--daemons | --component [PYTEST ARGS...]]" >&2
        exit 2
fi
dir=$(cd "$1" && pwd) || exit 2
mode=${2:-}
shift $(($# > 1 ? 2 : 1))

if ! command -v valgrind >/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "valgrind: not installed; run as root to install it" >&2
                exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind >/dev/null || exit 1
fi

# ASan and valgrind cannot share a process.
sanitize=$(meson introspect --buildoptions "$dir" 2>/dev/null |
        python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "b_sanitize"))')
if [ "${sanitize:-none}" != none ]; then
        echo "valgrind: $dir is built with -Db_sanitize=$sanitize; give a plain build dir" >&2
        exit 2
fi

vg=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
    --num-callers=30 --child-silent-after-fork=yes)
status=0

# ---- unit tests: meson runs each with its arguments; valgrind is ~20x slower, so are timeouts.
echo "== valgrind: unit tests of $dir"
if meson test -C "$dir" --suite unit --num-processes "$(nproc)" --timeout-multiplier 20 \
        --wrapper "${vg[*]} --quiet" --print-errorlogs >/dev/null 2>&1; then
        echo "== valgrind: unit tests: clean"
else
        status=1
        # Which tests, and memcheck's own words about them.
        python3 - "$dir/meson-logs/testlog-valgrind.json" "$dir/meson-logs/testlog.json" <<'EOF'
import json, sys
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        t = json.loads(line)
        if t["result"] not in ("OK", "SKIP", "EXPECTEDFAIL"):
            print(f"FAILED {t['name']} ({t['result']}, exit {t.get('returncode')})")
            for l in (t.get("stderr") or t.get("stdout") or "").splitlines()[-40:]:
                print("    " + l)
    break
EOF
        echo "== valgrind: unit tests: FAILED (full logs in $dir/meson-logs/)"
fi

# Every process memcheck watched (one log each in $1), with its error count. Processes killed
# on purpose (SIGKILL tests) leave no summary.
check_logs() {
        local n_logs=0 n_clean=0 n_killed=0 name summary
        for log in "$1"/*.log; do
                [ -f "$log" ] || continue
                n_logs=$((n_logs + 1))
                name=$(basename "$log" .log)
                summary=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
                if [ -z "$summary" ]; then
                        n_killed=$((n_killed + 1))
                elif [ "$summary" -eq 0 ]; then
                        n_clean=$((n_clean + 1))
                else
                        echo "   $name: $summary errors"
                        grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' -A12 "$log" |
                                head -60 | sed 's/^/      /'
                        status=1
                fi
        done
        echo "   $n_logs processes under memcheck: $n_clean clean, $n_killed killed before exit" \
                "(no summary), $((n_logs - n_clean - n_killed)) with errors"
        [ "$n_logs" -gt 0 ] || { echo "FAILED: no process ran under memcheck"; status=1; }
}

if [ "$mode" = --component ]; then
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        shadow=$work/build
        mkdir -p "$shadow/tests/component" "$work/logs"
        ln -s "$dir/units" "$shadow/units"
        ln -s "$dir/tests/component/okg-test-bus-client" "$shadow/tests/component/"
        if [ -d "$dir/okgctl" ]; then
                mkdir -p "$shadow/okgctl"
                ln -s "$dir/okgctl/okgctl" "$shadow/okgctl/"
        fi
        for d in okg-sidecard okg-storaged okg-hotupdated okg-probed; do
                mkdir -p "$shadow/$d"
                cat >"$shadow/$d/$d" <<EOF
#!/bin/bash
exec ${vg[*]} --log-file=$work/logs/$d-%p.log $dir/$d/$d "\$@"
EOF
                chmod +x "$shadow/$d/$d"
        done
        [ $# -gt 0 ] || set -- tests/component
        echo "== valgrind: component tests ($*) with every daemon under memcheck"
        OKG_BUILD_DIR=$shadow /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" || status=1
        check_logs "$work/logs"
        exit $status
fi

[ "$mode" = --daemons ] || exit $status

# ---- the suite: okg-sidecard finds its daemons through OKG_LIBEXECDIR; each wrapper execs
# valgrind in place, so the supervised PID (readiness, watchdog, signals) stays the same.
work=$(mktemp -d)
sidecard_pid=
probe_server=
# shellcheck disable=SC2317  # run by the trap
cleanup() {
        [ -n "$sidecard_pid" ] && kill -KILL "$sidecard_pid" 2>/dev/null
        [ -n "$probe_server" ] && kill "$probe_server" 2>/dev/null
        rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/libexec" "$work/logs" "$work/etc" "$work/downloads"
for d in okg-storaged okg-hotupdated okg-probed; do
        cat >"$work/libexec/$d" <<EOF
#!/bin/bash
exec ${vg[*]} --log-file=$work/logs/$d-%p.log $dir/$d/$d "\$@"
EOF
        chmod +x "$work/libexec/$d"
done

free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
health=$(free_port)
hot=$(free_port)
probe=$(free_port)
write_config() {
        cat >"$work/etc/config.yaml" <<EOF
plugins:
  - name: hot_update
    bootorder: 0
    config:
      bindAddress: 127.0.0.1
      port: $hot
      downloadDir: $work/downloads
      loadPatchType: signal
      signal:
        processName: okg-no-such-game
  - name: http_probe
    bootorder: 1
    config:
      probeIntervalSeconds: $1
      endpoints:
        - url: http://127.0.0.1:$probe/state
          timeout: 1
          storageConfig:
            type: InKube
            inKube:
              markerPolices:
                - state: idle
                  gameServerOpsState: None
restartpolicy: Always
healthAddress: 127.0.0.1
healthPort: $health
storage:
  backend: local
EOF
}
write_config 1

# A probe target that answers "idle".
python3 - "$probe" >"$work/probe-server.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"idle\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
probe_server=$!

echo "== valgrind: the suite with its daemons under memcheck"
OKG_LIBEXECDIR=$work/libexec OKG_BUS_CONFIG=$dir/units/okg-bus.conf \
        "${vg[@]}" --log-file="$work/logs/okg-sidecard-%p.log" \
        "$dir/okg-sidecard/okg-sidecard" --config "$work/etc/config.yaml" \
        --runtime-dir "$work/run" --state-dir "$work/state" >"$work/sidecard.log" 2>&1 &
sidecard_pid=$!

# Ready only when the health port is okg-sidecard's own: a free port picked above may have been
# taken by another process in the meantime, and its /readyz says nothing about ours.
ready=
for _ in $(seq 1 240); do
        if port_owned_by "$health" "$sidecard_pid" &&
                [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$health/readyz")" = 200 ]; then
                ready=1
                break
        fi
        if port_taken_by_other "$health" "$sidecard_pid"; then
                echo "FAILED: health port $health is taken by $(port_owner "$health")"
                break
        fi
        kill -0 "$sidecard_pid" 2>/dev/null || break
        sleep 0.5
done
if [ -z "$ready" ]; then
        echo "FAILED: /readyz never answered 200 under valgrind; okg-sidecard's log:"
        tail -30 "$work/sidecard.log" | sed 's/^/    /'
        status=1
else
        bus=(busctl --address="unix:path=$work/run/bus")
        # Some work for each daemon: bus calls, a refused hot update, probes (1 s interval).
        "${bus[@]}" call io.kruise.game.Sidecar1 /io/kruise/game/Sidecar1 io.kruise.game.Sidecar1 \
                ListPlugins >/dev/null || echo "note: ListPlugins failed"
        "${bus[@]}" tree >/dev/null 2>&1
        curl -s -o /dev/null "http://127.0.0.1:$hot/hot-update" || true
        curl -s -o /dev/null -d 'version=v2&url=ftp://x/y' "http://127.0.0.1:$hot/hot-update" || true
        curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"version":' \
                "http://127.0.0.1:$hot/hot-update" || true
        curl -s -o /dev/null "http://127.0.0.1:$health/healthz" || true
        sleep 3
        # A plugin killed and restarted, then a config reload (the probe interval changes).
        probed=$(sed -n 's/.*Started http_probe (PID \([0-9]*\)).*/\1/p' "$work/sidecard.log" | tail -1)
        if [ -n "$probed" ]; then
                kill -KILL "$probed"
        else
                echo "note: okg-sidecard's log names no okg-probed to kill"
        fi
        sleep 5
        write_config 2
        kill -HUP "$sidecard_pid" 2>/dev/null
        sleep 5
        curl -s -o /dev/null "http://127.0.0.1:$health/readyz" || true
fi

kill -TERM "$sidecard_pid" 2>/dev/null
for _ in $(seq 1 120); do
        kill -0 "$sidecard_pid" 2>/dev/null || break
        sleep 0.5
done
if kill -0 "$sidecard_pid" 2>/dev/null; then
        echo "FAILED: okg-sidecard did not stop within 60 s of SIGTERM under valgrind"
        status=1
fi
wait "$sidecard_pid" 2>/dev/null
rc=$?
sidecard_pid=
if [ "$rc" -ne 0 ]; then
        echo "FAILED: okg-sidecard exited with status $rc (99: memcheck errors); its log:"
        tail -30 "$work/sidecard.log" | sed 's/^/    /'
        status=1
fi

check_logs "$work/logs"
if [ $status -eq 0 ]; then
        echo "== valgrind: suite: clean"
else
        echo "== valgrind: suite: FAILED"
fi
exit $status
