#!/usr/bin/python3
"""Figures for the service_quality plugin, in one suite (okg-sidecard, its dbus-daemon, okg-storaged
on the local store) against a real nginx on loopback:
  - CPU time per 10,000 probes of the service_quality okg-probed: PROBES httpGet probes of the
    kruise.io/podprobe list (from a downward-API style file) at periodSeconds 1, next to the
    http_probe okg-probed of the same suite probing the same number of endpoints every second,
    and next to a minimal libcurl loop (bench/probe-bench-curl.c) making keep-alive requests
    paced at the same rate, in the same run;
  - new connections per probe of both plugins (from nginx's access log; kept-alive: goal ~0);
  - condition writes handed to okg-storaged, and okg-storaged's writes, in the steady state
    (goal 0): every answer stays the same during the measurement.
Usage: bench/sq-bench.py [BUILD_DIR] [PROBES] [SECONDS]. Prints a table; asserts nothing."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import Nginx, build_curl_loop, child_pid, connections, cpu_ns, curl_loop, \
    free_port, wait_for
from benchsummary import summary

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 50
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0


def metrics(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except OSError:
        return ""


def total(text, name):
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def main():
    tmp = tempfile.mkdtemp(prefix="sq-bench-")
    procs, nginx = [], None
    try:
        nginx = Nginx(os.path.join(tmp, "nginx"), "None")
        port = nginx.port
        baseline = build_curl_loop(tmp)
        probes = [{"name": f"q{i}", "containerName": "game", "probe": {
            "httpGet": {"path": f"/state?q={i}", "port": port}, "periodSeconds": 1},
            "podConditionType": f"game.kruise.io/q{i}"} for i in range(N)]
        ann = os.path.join(tmp, "podprobe")
        with open(ann, "w") as f:
            f.write(json.dumps(probes, separators=(",", ":")))
        health = free_port()
        eps = "".join(f"        - url: http://127.0.0.1:{port}/state?e={i}\n"
                      f"          storageConfig:\n            inKube:\n"
                      f"              annotationKey: okg.bench/e{i}\n" for i in range(N))
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w") as f:
            f.write("plugins:\n  - name: service_quality\n    config:\n      source: file\n"
                    f"      file: {ann}\n  - name: http_probe\n    config:\n"
                    f"      probeIntervalSeconds: 1\n      endpoints:\n{eps}"
                    f"healthPort: {health}\nhealthAddress: 127.0.0.1\n")
        env = dict(os.environ, OKG_LIBEXECDIR=os.path.join(TMPLIB(tmp)),
                   OKG_BUS_CONFIG=os.path.join(BUILD, "units", "okg-bus.conf"),
                   POD_NAME="game-0", POD_NAMESPACE="default")
        env.pop("KUBECONFIG", None)
        log = open(os.path.join(tmp, "suite.log"), "w")
        suite = subprocess.Popen([os.path.join(BUILD, "okg-sidecard", "okg-sidecard"), "--config", cfg,
                                  "--runtime-dir", os.path.join(tmp, "run"),
                                  "--state-dir", os.path.join(tmp, "state")],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append(suite)
        m = lambda: metrics(health)  # noqa: E731
        wait_for(lambda: total(m(), "okg_sidecar_service_quality_probes_total") >= 3 * N and
                 total(m(), "okg_sidecar_probe_probes_total") >= 3 * N, 120, "first probes",
                 interval=0.5)
        sq = child_pid(suite.pid, lambda c: "service_quality" in c)
        hp = child_pid(suite.pid, lambda c: "okg-probed" in c and "service_quality" not in c)
        lines_before = len(nginx.log_lines())
        t0 = m()
        c0 = {k: cpu_ns(p) for k, p in (("sq", sq), ("hp", hp))}
        time.sleep(SECONDS)
        t1 = m()
        c1 = {k: cpu_ns(p) for k, p in (("sq", sq), ("hp", hp))}
        n_sq = total(t1, "okg_sidecar_service_quality_probes_total") - total(t0, "okg_sidecar_service_quality_probes_total")
        n_hp = total(t1, "okg_sidecar_probe_probes_total") - total(t0, "okg_sidecar_probe_probes_total")
        cpu_sq = (c1["sq"] - c0["sq"]) / 1e9 * 10000 / n_sq
        cpu_hp = (c1["hp"] - c0["hp"]) / 1e9 * 10000 / n_hp
        w_sq = (total(t1, "okg_sidecar_service_quality_condition_writes_total") -
                total(t0, "okg_sidecar_service_quality_condition_writes_total"))
        time.sleep(1.2)   # nginx flushes its log buffer every second
        lines = nginx.log_lines()[lines_before:]
        req_sq, conn_sq = connections(lines, '"kube-probe')
        req_hp, conn_hp = connections(lines, '"okg-probed/')
        new_sq, new_hp = conn_sq / max(req_sq, 1), conn_hp / max(req_hp, 1)
        # The baseline: keep-alive requests paced at the plugin's rate (N per second, 10 s).
        cpu_loop, ok, made, new_loop = curl_loop(baseline, nginx, nginx.url("?loop"), 10 * N,
                                                 "reuse", N)
        w_st = (total(t1, "okg_sidecar_storage_writes_acknowledged_total") - total(t0, "okg_sidecar_storage_writes_acknowledged_total"))
        print(f"suite {BUILD}, nginx on loopback, {N} probes each at 1 s, {SECONDS:.0f} s measured")
        print(f"  service_quality: {n_sq:.0f} probes, CPU per 10,000 probes {cpu_sq:.2f} s")
        print(f"  http_probe:      {n_hp:.0f} probes, CPU per 10,000 probes {cpu_hp:.2f} s "
              f"(ratio {cpu_sq / cpu_hp:.2f})")
        print(f"  libcurl loop, keep-alive, paced at {N}/s: {ok}/{made} ok, CPU per 10,000 "
              f"{cpu_loop:.2f} s (service_quality / loop {cpu_sq / cpu_loop:.2f})")
        print(f"  new connections per probe: service_quality {new_sq:.3f}, http_probe {new_hp:.3f}, "
              f"loop {new_loop:.3f}")
        print(f"  steady state: condition writes handed on {w_sq:.0f}, okg-storaged writes {w_st:.0f} "
              f"(per hour: {w_st * 3600 / SECONDS:.0f})")
        summary(f"service_quality: CPU per 10,000 probes ({N} at 1 s)", f"{cpu_sq:.2f}", "s",
                f"http_probe {cpu_hp:.2f} s", f"{cpu_sq / cpu_hp:.2f}")
        summary(f"service_quality: CPU per 10,000 probes (vs libcurl keep-alive, paced {N}/s)",
                f"{cpu_sq:.2f}", "s", f"{cpu_loop:.2f}", f"{cpu_sq / cpu_loop:.2f}", "<= 1.05x")
        summary("service_quality: new connections per probe", f"{new_sq:.3f}", "",
                f"{new_loop:.3f}", "", "~0 (keep-alive endpoints)")
        summary("service_quality: writes per hour, steady state", f"{w_st * 3600 / SECONDS:.0f}",
                "", "", "", "0")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if nginx:
            nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def TMPLIB(tmp):
    """okg-sidecard finds its daemons in OKG_LIBEXECDIR: links to the build's."""
    lib = os.path.join(tmp, "libexec")
    os.makedirs(lib, exist_ok=True)
    for d, b in (("okg-storaged", "okg-storaged"), ("okg-probed", "okg-probed"),
                 ("okg-hotupdated", "okg-hotupdated")):
        os.symlink(os.path.join(BUILD, d, b), os.path.join(lib, b))
    return lib


if __name__ == "__main__":
    main()
