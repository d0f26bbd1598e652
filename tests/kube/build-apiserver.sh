#!/bin/bash
# Builds kube-apiserver 1.20.2 from Debian's kubernetes source package and caches the binary
# outside the repository, so the tests get a real API server without network access beyond
# Debian's archive. Idempotent: with the binary cached it only prints its path.
#
# Usage: tests/kube/build-apiserver.sh        (Debian 12, as root)
# stdout: the path of the kube-apiserver binary (nothing else); progress goes to stderr.
# Env:    OKG_KUBE_CACHE  cache directory (default /var/cache/okg-sidecar)
set -euo pipefail

version=1.20.2
cache=${OKG_KUBE_CACHE:-/var/cache/okg-sidecar}
binary=$cache/kube-apiserver-$version
work=$cache/kubernetes-build
log=$cache/kube-apiserver-$version.build.log

say() { echo "build-apiserver: $*" >&2; }

# Packages the build and the test harness need. etcd-server is the store, openssl makes the
# throw-away CA, python3-yaml lets the test client read manifests.
packages=(
        golang-go make rsync dpkg-dev
        golang-github-modern-go-reflect2-dev
        etcd-server openssl curl python3-yaml
)

install_packages() {
        local missing=() p
        for p in "${packages[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
                        || missing+=("$p")
        done
        [ "${#missing[@]}" -eq 0 ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
                say "missing packages (${missing[*]}); run as root"
                return 1
        fi
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# True when some configured source already provides deb-src for bookworm main, in either the
# one-line format or deb822 (.sources).
have_deb_src() {
        local f
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] || continue
                grep -Eq '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm[[:space:]].*\bmain\b' "$f" \
                        && return 0
        done
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] || continue
                awk 'BEGIN { RS = ""; found = 0 }
                     /(^|\n)Types:[^\n]*deb-src/ && /(^|\n)Suites:[^\n]*(^|[ \t])bookworm([ \t]|\n|$)/ &&
                     /(^|\n)Components:[^\n]*main/ && !/(^|\n)Enabled:[ \t]*no/ { found = 1 }
                     END { exit !found }' "$f" && return 0
        done
        return 1
}

# Adds a deb-src source in a file of our own, mirroring the URI (and key) of the existing
# bookworm main deb source; leaves the machine's own source files untouched.
add_deb_src() {
        local uri="" signed="" f line
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] || continue
                line=$(awk 'BEGIN { RS = "" }
                        /(^|\n)Types:[^\n]*deb/ && /(^|\n)Suites:[^\n]*(^|[ \t])bookworm([ \t]|\n|$)/ &&
                        /(^|\n)Components:[^\n]*main/ && !/(^|\n)Enabled:[ \t]*no/ {
                                u = ""; s = ""
                                n = split($0, l, "\n")
                                for (i = 1; i <= n; i++) {
                                        if (l[i] ~ /^URIs:/) { u = l[i]; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
                                        if (l[i] ~ /^Signed-By:/) { s = l[i]; sub(/^Signed-By:[ \t]*/, "", s) }
                                }
                                if (u != "") { print u "\t" s; exit }
                        }' "$f")
                if [ -n "$line" ]; then
                        uri=${line%%$'\t'*}
                        signed=${line#*$'\t'}
                        break
                fi
        done
        if [ -z "$uri" ]; then
                for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                        [ -f "$f" ] || continue
                        uri=$(awk '$1 == "deb" && / bookworm / && /main/ {
                                        for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
                        [ -n "$uri" ] && break
                done
        fi
        uri=${uri:-http://deb.debian.org/debian}
        say "adding deb-src $uri bookworm main (/etc/apt/sources.list.d/okg-sidecar-src.sources)"
        {
                echo "# Added by okg-sidecar tests/kube/build-apiserver.sh: the kubernetes source package."
                echo "Types: deb-src"
                echo "URIs: $uri"
                echo "Suites: bookworm"
                echo "Components: main"
                [ -n "$signed" ] && echo "Signed-By: $signed"
        } >/etc/apt/sources.list.d/okg-sidecar-src.sources
}

fetch_source() {
        local dir
        dir=$(find "$work/src" -maxdepth 1 -type d -name "kubernetes-*" 2>/dev/null | head -n1)
        if [ -n "$dir" ] && [ -f "$dir/.okg-unpacked" ]; then
                echo "$dir"
                return 0
        fi
        if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: .*$version"; then
                have_deb_src || add_deb_src
                apt-get update -qq
        fi
        local srcver
        srcver=$(apt-cache showsrc kubernetes | awk -v v="$version" '$1 == "Version:" && index($2, v) { print $2; exit }')
        if [ -z "$srcver" ]; then
                say "no kubernetes $version source package in the configured deb-src sources"
                return 1
        fi
        rm -rf "$work/src"
        mkdir -p "$work/src"
        say "apt-get source kubernetes=$srcver"
        (cd "$work/src" && apt-get source -qq "kubernetes=$srcver") >>"$log" 2>&1 || return 1
        dir=$(find "$work/src" -maxdepth 1 -type d -name "kubernetes-*" | head -n1)
        [ -n "$dir" ] || { say "apt-get source left no kubernetes-* directory"; return 1; }
        touch "$dir/.okg-unpacked"
        echo "$dir"
}

build() {
        local src=$1 gopath=$work/gopath
        mkdir -p "$gopath/src/k8s.io"
        ln -sfn "$src" "$gopath/src/k8s.io/kubernetes"

        # The vendored reflect2 1.0.1 segfaults under Go >= 1.18 when a custom resource is
        # created; Debian's 1.0.2 works.
        local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
        rm -rf "$src/vendor/github.com/modern-go/reflect2"
        mkdir -p "$src/vendor/github.com/modern-go/reflect2"
        cp -rL "$reflect2"/. "$src/vendor/github.com/modern-go/reflect2/"
        rm -f "$src/vendor/github.com/modern-go/reflect2"/*_test.go

        cd "$gopath/src/k8s.io/kubernetes"
        export GOPATH=$gopath GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
        export GOCACHE=$work/go-build-cache HOME=$work
        # Without git metadata the version would read v0.0.0; /version should tell the truth.
        export KUBE_GIT_VERSION=v$version KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=
        say "make generated_files (log: $log)"
        make generated_files >>"$log" 2>&1 || return 1
        say "make WHAT=cmd/kube-apiserver"
        make WHAT=cmd/kube-apiserver >>"$log" 2>&1 || return 1
        local out
        out=$(find "$src/_output" -type f -name kube-apiserver -perm -u+x | head -n1)
        [ -n "$out" ] || { say "no kube-apiserver binary under $src/_output"; return 1; }
        install -m 0755 "$out" "$binary.tmp"
        mv -f "$binary.tmp" "$binary"
}

install_packages
if [ -x "$binary" ]; then
        echo "$binary"
        exit 0
fi

mkdir -p "$cache"
# One build at a time: test.sh and a pytest session may both ask for it.
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$binary" ]; then
        echo "$binary"
        exit 0
fi

: >"$log"
start=$(date +%s)
say "cold build of kube-apiserver $version in $work (several minutes on 2 cores)"
if ! src=$(fetch_source) || ! (build "$src"); then
        say "FAILED; last lines of $log:"
        tail -n 40 "$log" >&2
        exit 1
fi
secs=$(( $(date +%s) - start ))
echo "$secs" >"$binary.build-seconds"
say "built $binary in ${secs}s"
# The tree with its build output is ~1.8 GB; the binary is all the tests need. A rebuild
# (delete the binary) fetches the source again (~35 MB).
rm -rf "$work"
echo "$binary"
