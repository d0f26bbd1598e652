#!/bin/bash
# Sets up the machine (Debian 12, as root), builds the suite and shows it working locally, on the
# local store (no cluster): nginx as the game, the suite beside it, a hot update from v1 to v2
# through the proposal's own curl, and a probe state change that reaches the GameServer's
# opsState. Then the suite keeps running until Ctrl-C (--demo-only: stop after the demo).
# Everything lives under BUILD/demo; ports are on 127.0.0.1 only.
# --config FILE runs the suite with your own config (the config.yaml of your ConfigMap) instead
# of the demo's, beside the same nginx game: FILE is checked first as okg-sidecard checks it
# (each problem as FILE:LINE:COLUMN: key: why) and nothing starts when it is refused; the
# suite's health port is then FILE's healthPort (checked free before the build), and the demo
# steps are left out. A relative FILE is taken from the directory run-local.sh is called from.
#
# Usage: run-local.sh [--demo-only] [--config FILE] [--health-port N] [--hot-update-port N]
#                     [--game-port N] [--cdn-port N] [--build-dir DIR]
# Each option has an environment variable (RUN_LOCAL_HEALTH_PORT, RUN_LOCAL_HOT_UPDATE_PORT,
# RUN_LOCAL_GAME_PORT, RUN_LOCAL_CDN_PORT, RUN_LOCAL_BUILD_DIR); options win. Defaults: 5001, 5000,
# 8080, 8081, build-run. RUN_LOCAL_TIMEOUT (seconds, default 60) bounds the wait for readiness.
# The script only talks to servers it started: a port held by another process is named in one
# line and the script exits 1.
set -euo pipefail
# Relative paths given by the user (--config) are the caller's, not the repository's.
caller_dir=$PWD
cd "$(dirname "$0")/.."
top=$PWD
. "$top/scripts/ports.sh"

keep_running=1
user_config=
health_port=${RUN_LOCAL_HEALTH_PORT:-5001}
hot_port=${RUN_LOCAL_HOT_UPDATE_PORT:-5000}
game_port=${RUN_LOCAL_GAME_PORT:-8080}
cdn_port=${RUN_LOCAL_CDN_PORT:-8081}
build=${RUN_LOCAL_BUILD_DIR:-build-run}
timeout=${RUN_LOCAL_TIMEOUT:-60}

step() { printf '\n== %s\n' "$*"; }
die() {
        echo "run-local: $*" >&2
        exit 1
}
usage() {
        sed -n 's/^# Usage: /usage: /p' "$0" >&2
        exit 2
}
# An option's value: the next argument, which must be there and not be another option.
value_of() {
        local hint=$1
        shift
        [ $# -ge 2 ] && [ -n "$2" ] && [[ "$2" != --* ]] || die "$1 needs a value ($1 $hint)"
}
while [ $# -gt 0 ]; do
        case $1 in
        --demo-only) keep_running=0 ;;
        --health-port) value_of N "$@"; health_port=$2; shift ;;
        --hot-update-port) value_of N "$@"; hot_port=$2; shift ;;
        --game-port) value_of N "$@"; game_port=$2; shift ;;
        --cdn-port) value_of N "$@"; cdn_port=$2; shift ;;
        --build-dir) value_of DIR "$@"; build=$2; shift ;;
        --config) value_of FILE "$@"; user_config=$2; shift ;;
        -h | --help) usage ;;
        *) echo "run-local: unknown argument '$1'" >&2; usage ;;
        esac
        shift
done
[ -n "$build" ] || die "RUN_LOCAL_BUILD_DIR is empty; give a directory or unset it"

# Port name, the option and the variable that choose it; in the order they are checked.
ports=(health hot-update game cdn)
declare -A port_of=([health]=$health_port [hot-update]=$hot_port [game]=$game_port [cdn]=$cdn_port)
declare -A var_of=([health]=RUN_LOCAL_HEALTH_PORT [hot-update]=RUN_LOCAL_HOT_UPDATE_PORT
        [game]=RUN_LOCAL_GAME_PORT [cdn]=RUN_LOCAL_CDN_PORT)
for name in "${ports[@]}"; do
        p=${port_of[$name]}
        [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] ||
                die "--$name-port / ${var_of[$name]}: '$p' is not a port number (1-65535)"
        port_of[$name]=$((10#$p))
done
health_port=${port_of[health]} hot_port=${port_of[hot-update]}
game_port=${port_of[game]} cdn_port=${port_of[cdn]}
for a in "${ports[@]}"; do
        for b in "${ports[@]}"; do
                [ "$a" \< "$b" ] && [ "${port_of[$a]}" = "${port_of[$b]}" ] &&
                        die "the $a and $b ports are both ${port_of[$a]}; choose different ones"
        done
done
[[ "$timeout" =~ ^[0-9]+$ ]] || die "RUN_LOCAL_TIMEOUT: '$timeout' is not a number of seconds"
if [ -n "$user_config" ]; then
        given=$user_config
        case $user_config in /*) ;; *) user_config=$caller_dir/$user_config ;; esac
        [ "$given" = "$user_config" ] && where= || where=" ($user_config)"
        if [ -d "$user_config" ]; then
                die "--config $given$where: is a directory, not a config file"
        elif [ ! -e "$user_config" ]; then
                die "--config $given$where: no such file"
        elif [ ! -f "$user_config" ]; then
                die "--config $given$where: not a regular file"
        elif [ ! -r "$user_config" ]; then
                die "--config $given$where: not readable by $(id -un)"
        fi
        # The suite's own ports come from that file: only nginx's are ours to check here.
        ports=(game cdn)
fi

# One line naming a port that another process holds, and how to choose another.
taken() {
        die "port ${port_of[$1]} ($1) is taken by $(port_owner "${port_of[$1]}"); choose another with --$1-port or ${var_of[$1]}"
}

case $build in /*) ;; *) build=$top/$build ;; esac
demo=$build/demo
# One run per build directory: the demo lives in it. The lock is held on the build directory for
# the run's lifetime (the servers inherit it, so it lasts as long as they do); a second run
# leaves the first one's demo alone and names it.
mkdir -p "$build"
exec {lock_fd}<"$build"
if ! flock -n "$lock_fd"; then
        holder=$(cat "$build/run-local.pid" 2>/dev/null || true)
        if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
                holder="another run-local.sh (pid $holder)"
        else
                holder="the servers of an earlier run-local.sh that are still running"
        fi
        die "$demo is in use by $holder; stop it first or choose another --build-dir or RUN_LOCAL_BUILD_DIR"
fi
echo $$ >"$build/run-local.pid"

./scripts/setup.sh
# Before building, so a busy port is reported at once (ss comes with setup's iproute2).
for name in "${ports[@]}"; do
        port_taken_by_other "${port_of[$name]}" 0 && taken "$name"
        port_bound_not_listening "${port_of[$name]}" &&
                die "port ${port_of[$name]} ($name) is taken by a socket bound to it but not listening (ss cannot show its owner); choose another with --$name-port or ${var_of[$name]}"
done
# The own config's healthPort too, before the build rather than as a late "Address already in
# use" (a value that is not a port is left to okg-sidecard's check below).
if [ -n "$user_config" ]; then
        p=$(python3 -c '
import sys
try:
    import yaml
    d = yaml.safe_load(open(sys.argv[1])) or {}
    p = d.get("healthPort", 5001) if isinstance(d, dict) else None
except Exception:
    p = None
print(p if type(p) is int and 1 <= p <= 65535 else "")' "$user_config")
        if [ -n "$p" ] && { port_taken_by_other "$p" 0 || port_bound_not_listening "$p"; }; then
                owner=$(port_owner "$p")
                die "port $p (healthPort of $user_config) is taken by ${owner:-a socket bound to it but not listening}; change healthPort in that file"
        fi
fi
./scripts/build.sh "$build"

if [ -n "$user_config" ]; then
        # okg-sidecard's own check: the same messages it would give at start, before anything runs.
        if ! check=$("$build/okg-sidecard/okg-sidecard" --check-config "$user_config" 2>&1); then
                printf '%s\n' "$check" >&2
                die "$user_config is refused (the problems are above); nothing was started"
        fi
        # Where its /readyz is: healthPort and healthAddress of that file, else the defaults.
        read -r health_port health_host < <(python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1])) or {}
a = str(d.get("healthAddress") or "127.0.0.1")
a = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(a, a)
print(d.get("healthPort") or 5001, "[%s]" % a if ":" in a else a)' "$user_config")
fi

rm -rf "$demo"
mkdir -p "$demo"/{www,cdn/v1,cdn/v2,nginx/tmp,run,state}
echo "<h1>2048 v1</h1>" >"$demo/cdn/v1/index.html"
echo "<h1>2048 v2</h1>" >"$demo/cdn/v2/index.html"
cp "$demo/cdn/v1/index.html" "$demo/www/index.html"
echo None >"$demo/www/state"

# The game: nginx serving the shared folder on the game port (its /state is the game's own state
# page), and, for the demo only, a second server on the CDN port standing in for the CDN.
cat >"$demo/nginx/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $demo/nginx/nginx.pid;
error_log $demo/nginx/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $demo/nginx/tmp/body;
    proxy_temp_path $demo/nginx/tmp/proxy;
    fastcgi_temp_path $demo/nginx/tmp/fastcgi;
    uwsgi_temp_path $demo/nginx/tmp/uwsgi;
    scgi_temp_path $demo/nginx/tmp/scgi;
    server { listen 127.0.0.1:$game_port; root $demo/www; add_header Cache-Control no-store; }
    server { listen 127.0.0.1:$cdn_port; root $demo/cdn; }
}
EOF

config=$user_config
[ -n "$config" ] || config=$demo/config.yaml
[ -n "$user_config" ] || cat >"$demo/config.yaml" <<EOF
# The proposal's demo config, pointed at the local game.
plugins:
  - name: hot_update
    config:
      loadPatchType: signal
      signal:
        processName: 'nginx: master process nginx -c $demo/nginx/nginx.conf'
        signalName: SIGHUP
      storageConfig:
        inKube:
          annotationKey: sidecar.vke.volcengine.com/hot-update-result
        type: InKube
      bindAddress: 127.0.0.1
      port: $hot_port
      downloadDir: $demo/www
    bootorder: 0
  - name: http_probe
    config:
      endpoints:
        - url: http://127.0.0.1:$game_port/state
          method: GET
          expectedStatusCode: 200
          timeout: 2
          storageConfig:
            type: InKube
            inKube:
              markerPolices:
                - {state: WaitToBeDeleted, gameServerOpsState: WaitToBeDeleted}
                - {state: Allocated, gameServerOpsState: Allocated}
                - {state: None, gameServerOpsState: None}
      startDelaySeconds: 0
      probeIntervalSeconds: 2
    bootorder: 1
restartpolicy: Always
resources:
  CPU: 100m
  Memory: 128Mi
sidecarstartorder: Before
healthPort: $health_port
healthAddress: 127.0.0.1
EOF

pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

(cd "$demo/nginx" && exec nginx -c "$demo/nginx/nginx.conf" -g "daemon off;") 2>"$demo/nginx/stderr.log" &
nginx_pid=$!
pids+=($nginx_pid)
POD_NAME=demo-0 POD_NAMESPACE=default \
        "$build/okg-sidecard/okg-sidecard" --config "$config" \
        --runtime-dir "$demo/run" --state-dir "$demo/state" 2>"$demo/sidecar.log" &
sidecard_pid=$!
pids+=($sidecard_pid)

# Which process must own which port: nginx (master or workers) the game and CDN ports,
# okg-sidecard the health port and its okg-hotupdated the hot-update port.
declare -A owner_of=([health]=$sidecard_pid [hot-update]=$sidecard_pid [game]=$nginx_pid
        [cdn]=$nginx_pid)
# The last line of a log, for a one-line reason.
last_line() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -1; }
# nginx's first [emerg] line (e.g. "bind() to 127.0.0.1:8080 failed", which names the address,
# not the "still could not bind()" that ends its retries), else its last line.
first_emerg() { grep -m1 '\[emerg\]' "$1" 2>/dev/null || last_line "$1"; }
# Ready when both processes live, every port is held by the process started for it, and
# /readyz (now known to be ours) answers 200. A port held by another process, or a process that
# exited, ends the script with one line saying so.
deadline=$((SECONDS + timeout))
while :; do
        for name in "${ports[@]}"; do
                port_taken_by_other "${port_of[$name]}" "${owner_of[$name]}" && taken "$name"
        done
        kill -0 "$nginx_pid" 2>/dev/null ||
                die "nginx exited: $(first_emerg "$demo/nginx/stderr.log") (see $demo/nginx/error.log)"
        kill -0 "$sidecard_pid" 2>/dev/null ||
                die "okg-sidecard exited: $(last_line "$demo/sidecar.log") (see $demo/sidecar.log)"
        owned=1
        for name in "${ports[@]}"; do
                port_owned_by "${port_of[$name]}" "${owner_of[$name]}" || owned=
        done
        [ -n "$owned" ] && curl -sf "http://${health_host:-127.0.0.1}:$health_port/readyz" >/dev/null && break
        [ "$SECONDS" -lt "$deadline" ] ||
                die "the suite was not ready within $timeout s (RUN_LOCAL_TIMEOUT); see $demo/sidecar.log"
        sleep 0.2
done

step "the suite is ready: curl http://${health_host:-127.0.0.1}:$health_port/readyz"
curl -s "http://${health_host:-127.0.0.1}:$health_port/readyz"; echo
if [ -n "$user_config" ]; then
        step "the suite runs $user_config"
        "$build/okgctl/okgctl" -a "$demo/run" status
        cat <<TXT
  service quality: $build/okgctl/okgctl -a $demo/run service-quality
  probes:          $build/okgctl/okgctl -a $demo/run probes
  the bus:         busctl --address=unix:path=$demo/run/bus tree
  the store:       $demo/state/local-store.json
  the logs:        $demo/sidecar.log
TXT
        if [ "$keep_running" = 1 ]; then
                step "the suite keeps running; Ctrl-C stops it"
                wait "$sidecard_pid" || true
        fi
        exit 0
fi
step "the game serves v1: curl http://127.0.0.1:$game_port/"
curl -s http://127.0.0.1:$game_port/

step "hot update to v2, the proposal's curl"
echo "curl -X POST -d \"version=v2&url=http://127.0.0.1:$cdn_port/v2/index.html\" http://127.0.0.1:$hot_port/hot-update"
curl -s --fail-with-body -X POST -d "version=v2&url=http://127.0.0.1:$cdn_port/v2/index.html" http://127.0.0.1:$hot_port/hot-update ||
        die "the hot update failed (its answer is above; see $demo/sidecar.log)"
echo
step "nginx reloaded and serves v2"
curl -s http://127.0.0.1:$game_port/

step "the game reports WaitToBeDeleted on its state page; the probe maps it onto opsState"
echo WaitToBeDeleted >"$demo/www/state"
for _ in $(seq 50); do
        grep -q '"opsState": "WaitToBeDeleted"' "$demo/state/local-store.json" 2>/dev/null && break
        sleep 0.2
done
[ -f "$demo/state/local-store.json" ] || die "no store written at $demo/state/local-store.json; see $demo/sidecar.log"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({'gameservers': d.get('gameservers'), 'pod annotations': {k: v['metadata'].get('annotations') for k, v in d.get('pods', {}).items()}}, indent=2))" "$demo/state/local-store.json"

step "where to look"
cat <<TXT
  status:    $build/okgctl/okgctl -a $demo/run status
  probes:    $build/okgctl/okgctl -a $demo/run probes
  updates:   curl -s http://127.0.0.1:$hot_port/hot-update
  metrics:   curl -s http://127.0.0.1:$health_port/metrics
  the bus:   busctl --address=unix:path=$demo/run/bus tree
  the store: $demo/state/local-store.json (what Kubernetes would hold)
  the logs:  $demo/sidecar.log
TXT
"$build/okgctl/okgctl" -a "$demo/run" status

if [ "$keep_running" = 1 ]; then
        step "the suite keeps running; Ctrl-C stops it"
        wait "${pids[1]}" || true
fi
