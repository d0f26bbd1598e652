#!/bin/bash
# A throw-away Kubernetes control plane on loopback for the tests: Debian's etcd and the
# kube-apiserver built by build-apiserver.sh, with TLS from a fresh CA, an admin token, RBAC,
# service-account token signing (TokenRequest) and an audit log of every request.
#
# Usage: kube-env.sh start DIR            certificates, etcd, API server; waits for /readyz
#        kube-env.sh stop DIR             stops both (DIR is kept)
#        kube-env.sh stop-apiserver DIR   stops only the API server (an outage)
#        kube-env.sh start-apiserver DIR  starts it again: same port, certificates and etcd
# After start, DIR/env holds shell assignments: KUBE_SERVER, KUBE_CA, KUBE_ADMIN_TOKEN,
# KUBE_AUDIT_LOG, KUBE_APISERVER_PID, KUBE_ETCD_PID, ... and DIR/admin.kubeconfig is written.
# Env:   KUBE_APISERVER  the binary (default: what build-apiserver.sh prints)
#        KUBE_ENV_WATCH_PID  stop everything when this process is gone (a test runner that
#                            died without cleaning up must not leave servers behind)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ready_timeout=${KUBE_READY_TIMEOUT:-90}

say() { echo "kube-env: $*" >&2; }
die() { say "$*"; exit 1; }

# N distinct free loopback ports (all held open together while choosing, so none repeats).
free_ports() {
        python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
        s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# Running and not a zombie (a stopped server waits for its reaper, PID 1, for a moment).
alive() {
        [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        [ "${stat%% *}" != Z ]
}

pid_of() { [ -f "$dir/$1.pid" ] && cat "$dir/$1.pid" || true; }

# Terminates a process we started (pid file in DIR), politely first.
stop_proc() {
        local name=$1 pid i
        pid=$(pid_of "$name")
        rm -f "$dir/$name.pid"
        alive "$pid" || return 0
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 100); do
                alive "$pid" || return 0
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 50); do
                alive "$pid" || return 0
                sleep 0.1
        done
}

make_pki() {
        [ -f "$dir/pki/done" ] && return 0
        local p=$dir/pki
        mkdir -p "$p"
        (
                cd "$p"
                openssl ecparam -name prime256v1 -genkey -noout -out ca.key
                openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=okg-test-ca" \
                        -addext "basicConstraints=critical,CA:TRUE" \
                        -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
                openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key
                openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
                cat >apiserver.ext <<'EXT'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default.svc
EXT
                openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                        -sha256 -days 30 -extfile apiserver.ext -out apiserver.crt
                # Signs service-account tokens (TokenRequest) and verifies them.
                openssl genrsa -out sa.key 2048
                openssl rsa -in sa.key -pubout -out sa.pub
                chmod 600 ca.key apiserver.key sa.key
        ) >"$dir/pki.log" 2>&1 || { cat "$dir/pki.log" >&2; die "certificate generation failed"; }
        touch "$p/done"
}

write_config() {
        [ -f "$dir/config" ] && return 0
        local token
        token=$(openssl rand -hex 32)
        # token,user,uid,"groups"
        echo "$token,okg-test-admin,okg-test-admin,\"system:masters\"" >"$dir/tokens.csv"
        chmod 600 "$dir/tokens.csv"
        cat >"$dir/audit-policy.yaml" <<'POL'
# Metadata of every request (user, verb, resource, response code), one event per request.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
POL
        local ports
        read -r -a ports <<<"$(free_ports 3)"
        cat >"$dir/config" <<CONF
etcd_client_port=${ports[0]}
etcd_peer_port=${ports[1]}
apiserver_port=${ports[2]}
admin_token=$token
CONF
}

load_config() {
        [ -f "$dir/config" ] || die "$dir has no config; run: $0 start $dir"
        # shellcheck disable=SC1091
        . "$dir/config"
}

apiserver_binary() {
        if [ -n "${KUBE_APISERVER:-}" ]; then
                echo "$KUBE_APISERVER"
        else
                "$here/build-apiserver.sh"
        fi
}

readyz() {
        curl -sf --max-time 2 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $admin_token" \
                "https://127.0.0.1:$apiserver_port/readyz" 2>/dev/null
}

start_etcd() {
        alive "$(pid_of etcd)" && return 0
        mkdir -p "$dir/etcd-data"
        chmod 700 "$dir/etcd-data"
        local peer=http://127.0.0.1:$etcd_peer_port client=http://127.0.0.1:$etcd_client_port
        setsid etcd --name okg-test --data-dir "$dir/etcd-data" \
                --listen-client-urls "$client" --advertise-client-urls "$client" \
                --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
                --initial-cluster "okg-test=$peer" --initial-cluster-state new \
                --logger zap --log-outputs stderr --log-level warn \
                </dev/null >>"$dir/etcd.log" 2>&1 &
        echo $! >"$dir/etcd.pid"
        local i
        for i in $(seq $((ready_timeout * 10))); do
                if curl -sf --max-time 1 "$client/health" 2>/dev/null | grep -q '"health":"true"'; then
                        return 0
                fi
                alive "$(pid_of etcd)" || break
                sleep 0.1
        done
        tail -n 30 "$dir/etcd.log" >&2
        die "etcd did not become healthy on $client"
}

start_apiserver() {
        alive "$(pid_of apiserver)" && return 0
        local bin
        bin=$(apiserver_binary) || die "no kube-apiserver binary (tests/kube/build-apiserver.sh failed)"
        [ -x "$bin" ] || die "kube-apiserver binary $bin is not executable"
        mkdir -p "$dir/apiserver-certs"
        local p=$dir/pki
        # --endpoint-reconciler-type=none: the kubernetes Service cannot point at a loopback
        # address, and nothing in the tests needs it. ServiceAccount admission is off because
        # no controller-manager creates the default ServiceAccount that pods would need.
        setsid "$bin" \
                --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
                --secure-port="$apiserver_port" --insecure-port=0 \
                --cert-dir="$dir/apiserver-certs" \
                --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
                --client-ca-file="$p/ca.crt" \
                --etcd-servers="http://127.0.0.1:$etcd_client_port" \
                --token-auth-file="$dir/tokens.csv" \
                --authorization-mode=RBAC \
                --service-account-issuer=https://kubernetes.default.svc.cluster.local \
                --service-account-key-file="$p/sa.pub" \
                --service-account-signing-key-file="$p/sa.key" \
                --api-audiences=https://kubernetes.default.svc.cluster.local \
                --service-cluster-ip-range=10.96.0.0/16 \
                --disable-admission-plugins=ServiceAccount \
                --endpoint-reconciler-type=none \
                --audit-policy-file="$dir/audit-policy.yaml" \
                --audit-log-path="$dir/audit.log" --audit-log-mode=blocking \
                --audit-log-maxsize=0 --audit-log-maxbackup=0 \
                --profiling=false --v=1 \
                </dev/null >>"$dir/apiserver.log" 2>&1 &
        echo $! >"$dir/apiserver.pid"
        local i
        for i in $(seq $((ready_timeout * 10))); do
                [ "$(readyz)" = ok ] && return 0
                alive "$(pid_of apiserver)" || break
                sleep 0.1
        done
        tail -n 40 "$dir/apiserver.log" >&2
        stop_proc apiserver
        die "kube-apiserver did not become ready on https://127.0.0.1:$apiserver_port"
}

write_env() {
        cat >"$dir/env" <<ENV
KUBE_SERVER='https://127.0.0.1:$apiserver_port'
KUBE_CA='$dir/pki/ca.crt'
KUBE_ADMIN_TOKEN='$admin_token'
KUBE_AUDIT_LOG='$dir/audit.log'
KUBE_APISERVER_LOG='$dir/apiserver.log'
KUBE_ETCD_SERVER='http://127.0.0.1:$etcd_client_port'
KUBE_SA_ISSUER='https://kubernetes.default.svc.cluster.local'
KUBE_APISERVER_PID='$(pid_of apiserver)'
KUBE_ETCD_PID='$(pid_of etcd)'
ENV
        cat >"$dir/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: okg-test
    cluster:
      server: https://127.0.0.1:$apiserver_port
      certificate-authority: $dir/pki/ca.crt
users:
  - name: okg-test-admin
    user:
      token: $admin_token
contexts:
  - name: okg-test
    context: {cluster: okg-test, user: okg-test-admin, namespace: default}
current-context: okg-test
KC
}

# Stops the servers when the watched process exits, so an interrupted test run leaves nothing.
start_watch() {
        local watch=${KUBE_ENV_WATCH_PID:-}
        [ -n "$watch" ] || return 0
        alive "$(pid_of watch)" && return 0
        # Re-reads the pid files while it waits: start-apiserver changes the API server's pid.
        setsid bash -c 'a= e=
                while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do
                        a=$(cat "$2/apiserver.pid" 2>/dev/null || true)
                        e=$(cat "$2/etcd.pid" 2>/dev/null || true)
                        sleep 1
                done
                for p in $a $e; do kill -TERM "$p" 2>/dev/null; done
                sleep 5
                for p in $a $e; do kill -KILL "$p" 2>/dev/null; done' watch "$watch" "$dir" \
                </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/watch.pid"
}

[ $# -eq 2 ] || die "usage: $0 start|stop|stop-apiserver|start-apiserver DIR"
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
[[ $dir != *[[:space:]\']* ]] || die "DIR must not contain spaces or quotes: $dir"

case $cmd in
start)
        for t in etcd curl openssl python3; do
                command -v "$t" >/dev/null || die "$t is missing (tests/kube/build-apiserver.sh installs it)"
        done
        t0=$(date +%s%N)
        make_pki
        write_config
        load_config
        start_etcd
        start_apiserver
        write_env
        start_watch
        say "ready at https://127.0.0.1:$apiserver_port in $(( ($(date +%s%N) - t0) / 1000000 )) ms (env: $dir/env)"
        ;;
start-apiserver)
        load_config
        alive "$(pid_of etcd)" || die "etcd is not running; use: $0 start $dir"
        start_apiserver
        write_env
        ;;
stop-apiserver)
        load_config
        stop_proc apiserver
        write_env
        ;;
stop)
        load_config
        stop_proc watch
        stop_proc apiserver
        stop_proc etcd
        if [ -f "$dir/env" ]; then
                write_env
        fi
        ;;
*)
        die "unknown command $cmd"
        ;;
esac
