#!/usr/bin/python3
"""Figures for okg-sidecard on the proposal's demo config:
  - exec of okg-sidecard -> first /readyz 200 (every daemon ready)
  - PSS of the idle suite, summed over okg-sidecard and all its processes (dbus-daemon included)
  - kill -9 of a plugin -> /readyz 200 again with the replacement (its READY=1)
Usage: bench/sidecard-bench.py [BUILD_DIR] [RUNS]. Prints a table; asserts nothing."""
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
SIDECARD = os.path.join(BUILD, "okg-sidecard", "okg-sidecard")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readyz(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/readyz")
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        return r.status, body
    except (OSError, ValueError):
        return None, None


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def main():
    config_src = os.path.join(TOP, "deploy", "examples", "config.yaml")
    ready_ms, restart_ms, pss = [], [], []
    per_proc = {}
    for _ in range(RUNS):
        tmp = tempfile.mkdtemp(prefix="okg-bench-")
        port = free_port()
        cfg = os.path.join(tmp, "config.yaml")
        with open(config_src) as f:
            text = f.read().replace("healthPort: 5001", f"healthPort: {port}")
        with open(cfg, "w") as f:
            f.write(text)
        env = dict(os.environ, OKG_BUS_CONFIG=os.path.join(BUILD, "units", "okg-bus.conf"))
        t0 = time.perf_counter()
        p = subprocess.Popen([SIDECARD, "--config", cfg, "--runtime-dir", tmp + "/run",
                              "--state-dir", tmp + "/state"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        while readyz(port)[0] != 200:
            time.sleep(0.001)
        ready_ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(1.0)  # idle
        procs = descendants(p.pid)
        total = 0
        for pid in procs:
            k = pss_kib(pid)
            total += k
            per_proc.setdefault(comm(pid), []).append(k)
        pss.append(total)
        old = {u["name"]: u["pid"] for u in readyz(port)[1]["units"]}["hot_update"]
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        while True:
            st, body = readyz(port)
            if st == 200 and {u["name"]: u["pid"] for u in body["units"]}["hot_update"] != old:
                break
            time.sleep(0.0005)
        restart_ms.append((time.perf_counter() - t0) * 1000)
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name, values, unit):
        print(f"{name:<44} {statistics.median(values):>9.1f} {min(values):>9.1f} "
              f"{max(values):>9.1f}  {unit}")

    print(f"okg-sidecard on deploy/examples/config.yaml, {RUNS} runs, build {BUILD}")
    print(f"{'figure':<44} {'median':>9} {'min':>9} {'max':>9}")
    row("exec -> /readyz 200", ready_ms, "ms")
    row("idle suite PSS, all processes", [k / 1024 for k in pss], "MiB")
    row("kill -9 hot_update -> replacement ready", restart_ms, "ms (first back-off step 100 ms)")
    print("PSS by process (median KiB):",
          ", ".join(f"{n} {statistics.median(v):.0f}" for n, v in sorted(per_proc.items())))


if __name__ == "__main__":
    main()
