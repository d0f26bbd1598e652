#!/usr/bin/python3
"""Hot update latency, okg-hotupdated against the shell pipeline, in the same run:
  - POST /hot-update (1 MiB file over loopback) -> SIGHUP received by the game
  - `curl -o tmp URL && mv tmp FILE && kill -HUP PID` -> SIGHUP received by the game
The game is a small receiver process that notes CLOCK_MONOTONIC when SIGHUP arrives; the two
methods alternate, each update a new version with new content. okg-hotupdated also checks the
checksum (sha256 given), records the outcome through okg-storaged (local store) and answers;
its POST round trip is printed as well, but the ratio is taken signal to signal.
Usage: bench/hotupdate-bench.py [BUILD_DIR] [RUNS]. Prints figures; asserts nothing."""
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from benchsummary import summary

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
SIDECARD = os.path.join(BUILD, "okg-sidecard", "okg-sidecard")
SIZE = 1024 * 1024

RECEIVER = r"""
import os, signal, sys, time
def hup(signum, frame):
    os.write(1, b"%d\n" % time.monotonic_ns())
signal.signal(signal.SIGHUP, hup)
os.write(1, b"ready\n")
while True:
    signal.pause()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Files(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    content = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = self.content.get(urllib.parse.urlsplit(self.path).path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    tmp = tempfile.mkdtemp(prefix="okg-hotupdate-bench-")
    downloads = os.path.join(tmp, "downloads")
    os.mkdir(downloads)
    receiver = os.path.join(tmp, "game-receiver.py")
    with open(receiver, "w") as f:
        f.write(RECEIVER)
    game = subprocess.Popen([sys.executable, receiver], stdout=subprocess.PIPE)
    assert game.stdout.readline() == b"ready\n"
    signals = []
    arrived = threading.Condition()

    def read_signals():
        for line in game.stdout:
            with arrived:
                signals.append(int(line))
                arrived.notify_all()
    threading.Thread(target=read_signals, daemon=True).start()

    def wait_signal(n):
        with arrived:
            if not arrived.wait_for(lambda: len(signals) >= n, timeout=30):
                raise RuntimeError("the game did not get SIGHUP")
            return signals[n - 1]

    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"

    port, health = free_port(), free_port()
    title = f"{sys.executable} {receiver}"
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"""plugins:
  - name: hot_update
    config:
      signal:
        processName: '{title}'
      bindAddress: 127.0.0.1
      port: {port}
      downloadDir: {downloads}
storage:
  backend: local
healthPort: {health}
healthAddress: 127.0.0.1
""")
    env = dict(os.environ, OKG_BUS_CONFIG=os.path.join(BUILD, "units", "okg-bus.conf"),
               POD_NAME="bench-0", POD_NAMESPACE="bench")
    suite = subprocess.Popen([SIDECARD, "--config", cfg, "--runtime-dir", tmp + "/run",
                              "--state-dir", tmp + "/state"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the suite did not get ready")
        time.sleep(0.01)

    sidecar_ms, post_ms, shell_ms = [], [], []
    target = os.path.join(downloads, "game.bin")
    n = 0
    try:
        for i in range(2 * RUNS):
            data = os.urandom(SIZE - 16) + b"%016d" % i
            path = f"/v{i}/game.bin"
            Files.content[path] = data
            url = base + path
            if i % 2 == 0:
                body = urllib.parse.urlencode({"version": f"v{i}", "url": url,
                                               "sha256": hashlib.sha256(data).hexdigest()}).encode()
                t0 = time.monotonic_ns()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hot-update", data=body,
                                            timeout=60) as r:
                    res = json.loads(r.read())
                t2 = time.monotonic_ns()
                if res["state"] != "Succeeded":
                    raise RuntimeError(f"update failed: {res}")
                n += 1
                sidecar_ms.append((wait_signal(n) - t0) / 1e6)
                post_ms.append((t2 - t0) / 1e6)
            else:
                part = os.path.join(downloads, ".bench-tmp")
                t0 = time.monotonic_ns()
                subprocess.run(["bash", "-c", f"curl -s -o {part} {url} && mv {part} {target} "
                                              f"&& kill -HUP {game.pid}"], check=True)
                n += 1
                shell_ms.append((wait_signal(n) - t0) / 1e6)
                with open(target, "rb") as f:
                    assert f.read() == data
    finally:
        suite.send_signal(signal.SIGTERM)
        suite.wait(30)
        game.kill()
        game.wait()
        files.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name, values):
        v = sorted(values)
        print(f"{name:<52} {statistics.median(v):>8.2f} {v[int(0.9 * (len(v) - 1))]:>8.2f} "
              f"{v[0]:>8.2f} {v[-1]:>8.2f}")

    print(f"hot update of a 1 MiB file over loopback, {RUNS} runs each (alternating), build {BUILD}")
    print(f"{'figure (ms)':<52} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}")
    row("okg-hotupdated: POST -> SIGHUP received", sidecar_ms)
    row("shell: curl -o tmp && mv && kill -HUP -> received", shell_ms)
    row("okg-hotupdated: POST -> response (recorded)", post_ms)
    ratio = statistics.median(sidecar_ms) / statistics.median(shell_ms)
    print(f"ratio okg-hotupdated / shell (medians, signal to signal): {ratio:.2f}")
    summary("hot update 1 MiB: POST -> SIGHUP", f"{statistics.median(sidecar_ms):.1f}", "ms",
            f"{statistics.median(shell_ms):.1f}", f"{ratio:.2f}", "<= 1.0x")


if __name__ == "__main__":
    main()
