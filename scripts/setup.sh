#!/bin/bash
# Installs what building, running and testing okg-sidecar needs on Debian 12 (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
        # build
        gcc meson ninja-build pkg-config
        libsystemd-dev libyaml-dev libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev
        # okg-probed's own HTTP client reads answers with libhttp-parser
        libhttp-parser-dev
        # okg-hotupdated's own decoders of compressed downloads
        zlib1g-dev libbrotli-dev libzstd-dev
        # run: the private bus, and busctl to look at it
        dbus-daemon systemd
        # tests: the game process, HTTP client, test runner, process tools
        nginx-light curl ca-certificates openssl python3 python3-pytest procps iproute2
        # tests: the component tests in parallel (scripts/test.sh: pytest -n)
        python3-pytest-xdist
        # tests: hardening-check for the built binaries
        devscripts
        # the image (scripts/image.sh, tests/image): build, a stand-in base, run
        buildah podman runc debootstrap
)

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl, for the test of `kubectl okg` (the plugin): Debian's, unless one is installed already
# (e.g. from Google's repository, whose package owns the same path).
command -v kubectl >/dev/null || missing+=(kubernetes-client)

if [ "${#missing[@]}" -eq 0 ]; then
        echo "setup: all ${#packages[@]} packages present"
        exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing packages (${missing[*]}); run this script as root" >&2
        exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx on install where it can; the tests run their own instances.
if command -v nginx >/dev/null && pgrep -x nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then
        nginx -s stop 2>/dev/null || true
fi
echo "setup: done"
