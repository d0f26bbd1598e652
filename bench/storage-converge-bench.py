#!/usr/bin/python3
"""Storage figures for convergence (issue 16) against a real kube-apiserver (tests/kube/):
bus write -> acknowledged through a frozen connection (a TCP proxy in front of the API server
stops carrying bytes; the time includes the request timeout and a new connection), and the
journal's size against the number of writes of one 60 KB annotation while nothing listens at
the API server's address (flat, not linear). Usage: bench/storage-converge-bench.py [BUILD_DIR].
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
import kube as k  # noqa: E402
from benchkube import bench_pod, busctl, start_kube  # noqa: E402
from benchsummary import summary  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sidecar(tmp, name, kubeconfig, ns):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"plugins: []\nhealthPort: {free_port()}\nhealthAddress: 127.0.0.1\n")
    p = subprocess.Popen(
        [os.path.join(BUILD, "okg-sidecard", "okg-sidecard"), "--config", cfg,
         "--runtime-dir", os.path.join(d, "run"), "--state-dir", os.path.join(d, "state")],
        env=dict(os.environ, KUBECONFIG=kubeconfig, POD_NAME="bench-0", POD_NAMESPACE=ns,
                 OKG_BUS_CONFIG=os.path.join(BUILD, "units", "okg-bus.conf")),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = f"unix:path={d}/run/bus"
    deadline = time.monotonic() + 30
    while True:
        try:
            busctl(addr, "get-property", *S, "Backend")
            return p, addr, os.path.join(d, "state", "storaged.journal")
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_pending_zero(addr, limit=300):
    deadline = time.monotonic() + limit
    while busctl(addr, "get-property", *S, "Pending") != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main():
    tmp = tempfile.mkdtemp(prefix="okg-converge-bench-")
    env = start_kube(tmp)
    procs = []
    proxy = None
    try:
        ns, token_file, _ = bench_pod(env, tmp)
        host, port = env.server.removeprefix("https://").rsplit(":", 1)
        proxy = TcpProxy(host, int(port))
        kc = k.write_kubeconfig(os.path.join(tmp, "kc-proxy"), f"https://{proxy.address}", env.ca,
                                token_file=token_file, namespace=ns)
        p, addr, _ = start_sidecar(tmp, "freeze", kc, ns)
        procs.append(p)
        busctl(addr, "call", *S, "SetGameServer", "sa{ss}a{ss}", "Allocated", "0", "0")
        wait_pending_zero(addr)
        proxy.freeze()
        t0 = time.monotonic()
        busctl(addr, "call", *S, "SetGameServer", "sa{ss}a{ss}", "Maintaining", "0", "0")
        ok = wait_pending_zero(addr)
        freeze_s = time.monotonic() - t0
        print("okg-storaged against kube-apiserver 1.20.2 on loopback")
        print(f"{'write -> acknowledged through a frozen connection':<52} {freeze_s:8.1f} s"
              f"{'' if ok else ' (not acknowledged)'}  connections opened: {proxy.connections()}")
        summary("storage: write acknowledged through a frozen connection", f"{freeze_s:.1f}", "s",
                "", "", "request timeout (30 s) + back-off")

        dead = k.write_kubeconfig(os.path.join(tmp, "kc-dead"), f"https://127.0.0.1:{free_port()}",
                                  env.ca, token="unused", namespace=ns)
        p, addr, journal = start_sidecar(tmp, "outage", dead, ns)
        procs.append(p)
        done = 0
        sizes = []
        for n in (10, 50, 100, 200, 400):
            while done < n:
                busctl(addr, "call", *S, "SetPodMetadata", "a{ss}a{ss}", "0", "1", "okg.bench/big",
                       f"{done:04d}" + "y" * 60_000)
                done += 1
            sizes.append((n, os.path.getsize(journal)))
            print(f"{'journal size after writes of one 60 KB annotation':<52} {n:5d} writes "
                  f"{sizes[-1][1] / 1024:8.0f} KiB")
        summary("storage: journal after 400 writes of one 60 KB field (outage)",
                f"{sizes[-1][1] / 1024:.0f}", "KiB", f"{400 * 60_000 / 1024:.0f}", "", "flat")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if proxy:
            proxy.close()
        env.stop()


if __name__ == "__main__":
    main()
