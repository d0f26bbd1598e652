#!/bin/bash
# Sets up the machine (Debian 12, as root), builds the suite and shows it working locally, on the
# local store (no cluster): nginx as the game, the suite beside it, a hot update from v1 to v2
# through the proposal's own curl, and a probe state change that reaches the GameServer's
# opsState. Then the suite keeps running until Ctrl-C (--demo-only: stop after the demo).
# Everything lives under ./build-run/demo; ports are on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
keep_running=1
[ "${1:-}" = "--demo-only" ] && keep_running=0

./scripts/setup.sh
./scripts/build.sh build-run

demo=$top/build-run/demo
rm -rf "$demo"
mkdir -p "$demo"/{www,cdn/v1,cdn/v2,nginx/tmp,run,state}
echo "<h1>2048 v1</h1>" >"$demo/cdn/v1/index.html"
echo "<h1>2048 v2</h1>" >"$demo/cdn/v2/index.html"
cp "$demo/cdn/v1/index.html" "$demo/www/index.html"
echo None >"$demo/www/state"

# The game: nginx serving the shared folder on :8080 (its /state is the game's own state page),
# and, for the demo only, a second server on :8081 standing in for the CDN.
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
    server { listen 127.0.0.1:8080; root $demo/www; add_header Cache-Control no-store; }
    server { listen 127.0.0.1:8081; root $demo/cdn; }
}
EOF

cat >"$demo/config.yaml" <<EOF
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
      port: 5000
      downloadDir: $demo/www
    bootorder: 0
  - name: http_probe
    config:
      endpoints:
        - url: http://127.0.0.1:8080/state
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
healthPort: 5001
healthAddress: 127.0.0.1
EOF

pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

(cd "$demo/nginx" && exec nginx -c "$demo/nginx/nginx.conf" -g "daemon off;") &
pids+=($!)
POD_NAME=demo-0 POD_NAMESPACE=default \
        "$top/build-run/okg-sidecard/okg-sidecard" --config "$demo/config.yaml" \
        --runtime-dir "$demo/run" --state-dir "$demo/state" 2>"$demo/sidecar.log" &
pids+=($!)

step() { printf '\n== %s\n' "$*"; }
for _ in $(seq 100); do curl -sf http://127.0.0.1:5001/readyz >/dev/null && break; sleep 0.1; done

step "the suite is ready: curl http://127.0.0.1:5001/readyz"
curl -s http://127.0.0.1:5001/readyz; echo
step "the game serves v1: curl http://127.0.0.1:8080/"
curl -s http://127.0.0.1:8080/

step "hot update to v2, the proposal's curl"
echo 'curl -X POST -d "version=v2&url=http://127.0.0.1:8081/v2/index.html" http://127.0.0.1:5000/hot-update'
curl -s -X POST -d "version=v2&url=http://127.0.0.1:8081/v2/index.html" http://127.0.0.1:5000/hot-update; echo
step "nginx reloaded and serves v2"
curl -s http://127.0.0.1:8080/

step "the game reports WaitToBeDeleted on its state page; the probe maps it onto opsState"
echo WaitToBeDeleted >"$demo/www/state"
for _ in $(seq 50); do
        grep -q '"opsState": "WaitToBeDeleted"' "$demo/state/local-store.json" 2>/dev/null && break
        sleep 0.2
done
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({'gameservers': d.get('gameservers'), 'pod annotations': {k: v['metadata'].get('annotations') for k, v in d.get('pods', {}).items()}}, indent=2))" "$demo/state/local-store.json"

step "where to look"
cat <<TXT
  status:    $top/build-run/okgctl/okgctl -a $demo/run status
  probes:    $top/build-run/okgctl/okgctl -a $demo/run probes
  updates:   curl -s http://127.0.0.1:5000/hot-update
  metrics:   curl -s http://127.0.0.1:5001/metrics
  the bus:   busctl --address=unix:path=$demo/run/bus tree
  the store: $demo/state/local-store.json (what Kubernetes would hold)
  the logs:  $demo/sidecar.log
TXT
"$top/build-run/okgctl/okgctl" -a "$demo/run" status

if [ "$keep_running" = 1 ]; then
        step "the suite keeps running; Ctrl-C stops it"
        wait "${pids[1]}" || true
fi
