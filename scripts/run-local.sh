#!/bin/bash
# Sets up the machine (Debian 12, as root), builds the suite and runs it in the foreground on the
# proposal's demo config, with runtime and state directories under ./build-run. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

./scripts/setup.sh
./scripts/build.sh build-run

config=${OKG_CONFIG_FILE:-$top/deploy/examples/config.yaml}
runtime=$top/build-run/run
state=$top/build-run/state
port=$(sed -n 's/^healthPort: *\([0-9]*\).*/\1/p' "$config")
port=${port:-5001}

cat <<TXT
okg-sidecar: starting the suite on $config
  health:   curl http://127.0.0.1:$port/readyz
  the bus:  busctl --address=unix:path=$runtime/bus tree
            busctl --address=unix:path=$runtime/bus call io.kruise.game.Sidecar1 \\
                   /io/kruise/game/Sidecar1 io.kruise.game.Sidecar1 ListPlugins
  stop:     Ctrl-C (or SIGTERM)
TXT
exec "$top/build-run/okg-sidecard/okg-sidecard" --config "$config" \
        --runtime-dir "$runtime" --state-dir "$state"
