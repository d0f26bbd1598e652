#!/usr/bin/python3
"""Storage figures against a real kube-apiserver (tests/kube/): bus call -> API acknowledged
latency p50/p99 against a raw libcurl PATCH of the same object on the same server in the same
run, and API requests sent per state change. Usage: bench/storage-bench.py [BUILD_DIR] [N].
Prints figures; asserts nothing."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "component"))
from benchkube import bench_pod, busctl, start_kube  # noqa: E402
from benchsummary import summary  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
STEADY_SECONDS = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    tmp = tempfile.mkdtemp(prefix="okg-storage-bench-")
    env = start_kube(tmp)
    sidecar = None
    try:
        ns, token_file, token = bench_pod(env, tmp)
        kc = env.write_kubeconfig(os.path.join(tmp, "kubeconfig"), ns, token_file=token_file)
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w") as f:
            f.write(f"plugins: []\nhealthPort: {free_port()}\nhealthAddress: 127.0.0.1\n")
        run = os.path.join(tmp, "run")
        sidecar = subprocess.Popen(
            [os.path.join(BUILD, "okg-sidecard", "okg-sidecard"), "--config", cfg,
             "--runtime-dir", run, "--state-dir", os.path.join(tmp, "state")],
            env=dict(os.environ, KUBECONFIG=kc, POD_NAME="bench-0", POD_NAMESPACE=ns,
                     OKG_BUS_CONFIG=os.path.join(BUILD, "units", "okg-bus.conf")),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        addr = f"unix:path={run}/bus"
        S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")
        deadline = time.monotonic() + 30
        while True:
            try:
                busctl(addr, "get-property", *S, "Backend")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(0.5)  # the start-up GET of the pod
        before = busctl(addr, "get-property", *S, "RequestsSent")
        path = f"/apis/game.kruise.io/v1alpha1/namespaces/{ns}/gameservers/bench-0"
        out = subprocess.run([os.path.join(BUILD, "bench", "storage-ack-bench"), addr, env.server,
                              env.ca, token, path, str(N)], capture_output=True, text=True)
        after = busctl(addr, "get-property", *S, "RequestsSent")
        print(f"okg-storaged against kube-apiserver 1.20.2 on loopback, {N} state changes each")
        print(out.stdout, end="")
        if out.returncode != 0:
            print("storage-ack-bench failed:", out.stderr)
        print(f"{'API requests per state change (okg-storaged)':<48} {(after - before) / N:8.2f}")
        # A steady state: nothing changes for a minute; count what okg-storaged sends.
        idle0 = busctl(addr, "get-property", *S, "RequestsSent")
        time.sleep(STEADY_SECONDS)
        idle1 = busctl(addr, "get-property", *S, "RequestsSent")
        per_hour = (idle1 - idle0) * 3600 / STEADY_SECONDS
        print(f"{'API requests per hour in a steady state':<48} {per_hour:8.0f}")
        lines = out.stdout.splitlines()
        p50 = [ln.split() for ln in lines if ln.startswith("bus SetGameServer")]
        raw = [ln.split() for ln in lines if ln.startswith("raw libcurl PATCH")]
        if p50 and raw:
            b, r = float(p50[0][-2]), float(raw[0][-2])
            summary("storage: bus write -> API acknowledged p50", f"{b:.1f}", "ms", f"{r:.1f}",
                    f"{b / r:.2f}", "")
        summary("API requests per state change", f"{(after - before) / N:.2f}", "", "", "", "1")
        summary("API requests per hour, steady state", f"{per_hour:.0f}", "1/h", "", "", "0")
    finally:
        if sidecar:
            sidecar.send_signal(signal.SIGTERM)
            sidecar.wait(30)
        env.stop()


if __name__ == "__main__":
    main()
