#!/usr/bin/python3
"""Figures for okg-probed, against a real nginx on loopback:
  - CPU time per 10,000 probes of okg-probed (many endpoints at probeIntervalSeconds 1, in a
    steady state), next to a minimal libcurl program (bench/probe-bench-curl.c, easy interface
    in a loop) making the same requests in the same run, and the ratio. The loop runs back to
    back and paced at the daemon's rate, each with keep-alive and with a new connection per
    request: a tight loop keeps its caches warm, requests on a timer do not;
  - new connections opened per probe (from nginx's access log) for both;
  - wake-ups per minute of an idle okg-probed: no probe due (start delay of an hour), with and
    without the supervisor's watchdog, and between probes every 10 s.
okg-probed runs on its own with a private dbus-daemon (no okg-sidecard, no okg-storaged).
Usage: bench/probe-bench.py [BUILD_DIR] [PROBES] [ENDPOINTS] [IDLE_SECONDS] [ROUNDS] (the idle
figures only with IDLE_SECONDS >= 10; bench/run-all.sh runs it at 200 and at 1,000 endpoints).
okg-probed (PROBES probes, a fresh daemon each round) and the paced keep-alive loop are measured
in ROUNDS (default 3) alternating rounds and their medians compared.
Prints a table; asserts nothing."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import Nginx, build_curl_loop, connections, cpu_ns, curl_loop, status_field, \
    wait_for, wakeups
from benchsummary import summary

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
PROBES = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
ENDPOINTS = int(sys.argv[3]) if len(sys.argv) > 3 else 200
IDLE_SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 3
PROBED = os.path.join(BUILD, "okg-probed", "okg-probed")
BUS_CONF = os.path.join(BUILD, "units", "okg-bus.conf")


def probed_config(path, urls, interval, start_delay):
    with open(path, "w") as f:
        f.write("plugins:\n  - name: http_probe\n    config:\n")
        f.write(f"      probeIntervalSeconds: {interval}\n      startDelaySeconds: {start_delay}\n")
        f.write("      endpoints:\n")
        for u in urls:
            f.write(f"        - url: {u}\n          timeout: 1\n")


def start_probed(tmp, name, bus, urls, interval, start_delay, env=None):
    cfg = os.path.join(tmp, f"{name}.yaml")
    probed_config(cfg, urls, interval, start_delay)
    e = dict(os.environ, OKG_BUS_ADDRESS=bus, SYSTEMD_LOG_LEVEL="notice")
    e.pop("NOTIFY_SOCKET", None)
    e.pop("WATCHDOG_USEC", None)
    e.update(env or {})
    log = open(os.path.join(tmp, f"{name}.log"), "w")
    return subprocess.Popen([PROBED, "--config", cfg], stdout=log, stderr=subprocess.STDOUT, env=e)


def start_dbus(tmp, name, procs):
    """A private dbus-daemon per okg-probed: each one owns io.kruise.game.Probe1."""
    path = os.path.join(tmp, f"bus-{name}")
    addr = f"unix:path={path}"
    procs.append(subprocess.Popen(["dbus-daemon", f"--config-file={BUS_CONF}", f"--address={addr}",
                                   "--nofork"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for(lambda: os.path.exists(path), 10, "dbus-daemon")
    return addr


def total_probes(bus):
    out = subprocess.run(["busctl", f"--address={bus}", "call", "io.kruise.game.Probe1",
                          "/io/kruise/game/Probe1", "io.kruise.game.Probe1", "GetMetrics"],
                         capture_output=True, text=True).stdout
    # busctl prints the string with C escapes: \n between lines
    return sum(int(m) for m in re.findall(r'okg_sidecar_probe_probes_total\{[^}]*\} (\d+)', out))


def total_failures(bus):
    out = subprocess.run(["busctl", f"--address={bus}", "call", "io.kruise.game.Probe1",
                          "/io/kruise/game/Probe1", "io.kruise.game.Probe1", "GetMetrics"],
                         capture_output=True, text=True).stdout
    return sum(int(m) for m in re.findall(r'okg_sidecar_probe_failures_total\{[^}]*\} (\d+)', out))


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def measure_probed(tmp, name, procs, nginx):
    """One okg-probed with ENDPOINTS endpoints at 1 s, measured over PROBES probes in a steady
    state; stopped afterwards."""
    bus = start_dbus(tmp, name, procs)
    busy = start_probed(tmp, name, bus, [nginx.url(f"?e={i}") for i in range(ENDPOINTS)], 1, 0)
    procs.append(busy)
    # Past the first rounds (connections set up), then measure.
    wait_for(lambda: total_probes(bus) >= 3 * ENDPOINTS, 120, "first probes")
    lines_before = len(nginx.log_lines())
    p0, c0, w0, t0 = total_probes(bus), cpu_ns(busy.pid), wakeups(busy.pid), time.monotonic()
    # Asking for the count costs the daemon a little CPU too: sleep through most of the run,
    # then ask twice a second.
    time.sleep(PROBES / ENDPOINTS * 0.9)
    wait_for(lambda: total_probes(bus) >= p0 + PROBES, PROBES / ENDPOINTS * 3 + 60,
             f"{PROBES} probes", interval=0.5)
    p1, c1, w1, t1 = total_probes(bus), cpu_ns(busy.pid), wakeups(busy.pid), time.monotonic()
    failures = total_failures(bus)
    rss = int(status_field(busy.pid, "VmRSS"))
    busy.send_signal(signal.SIGTERM)
    busy.wait(10)
    time.sleep(1.2)   # nginx flushes its log buffer every second
    req, conn = connections(nginx.log_lines()[lines_before:], "okg-probed/")
    n = p1 - p0
    return {"n": n, "cpu": (c1 - c0) / 1e9 * 10000 / n, "wakeups": (w1 - w0) / n,
            "seconds": t1 - t0, "failures": failures, "rss": rss, "conn": conn / max(req, 1)}


def main():
    for exe in (PROBED, BUS_CONF):
        if not os.path.exists(exe):
            raise SystemExit(f"{exe} not found; build first (meson setup {BUILD} && ninja -C {BUILD})")
    tmp = tempfile.mkdtemp(prefix="probe-bench-")
    procs = []
    try:
        baseline = build_curl_loop(tmp)
        nginx = Nginx(os.path.join(tmp, "nginx"))
        # Idle daemons first: they are measured while the busy one runs (they only sleep).
        idle = {
            "no probe due": start_probed(tmp, "idle", start_dbus(tmp, "idle", procs),
                                         [nginx.url("?idle")], 10, 3600),
            "no probe due, watchdog 30 s": start_probed(
                tmp, "idle-wd", start_dbus(tmp, "idle-wd", procs), [nginx.url("?idle-wd")], 10,
                3600, {"WATCHDOG_USEC": str(30 * 10**6)}),
            "probing every 10 s (1 endpoint)": start_probed(
                tmp, "every10", start_dbus(tmp, "every10", procs), [nginx.url("?every10")], 10, 0),
        }
        procs += idle.values()
        time.sleep(1.0)
        idle_start = {k: (wakeups(p.pid), time.monotonic()) for k, p in idle.items()}

        # CPU per probe: ENDPOINTS endpoints, every second, against the paced keep-alive loop,
        # in ROUNDS alternating rounds (a fresh okg-probed each round): on a shared machine one
        # window of either can land on a busy moment, so the figures are medians of the rounds.
        paced = min(PROBES, 10 * ENDPOINTS)
        keep_label = f"keep-alive, paced at {ENDPOINTS}/s"
        rounds, keep_rounds = [], []
        for r in range(ROUNDS):
            rounds.append(measure_probed(tmp, f"busy{r}", procs, nginx))
            keep_rounds.append(curl_loop(baseline, nginx, nginx.url("?e=0"), paced, "reuse",
                                         ENDPOINTS))
        probed_cpu = median([x["cpu"] for x in rounds])
        n = sum(x["n"] for x in rounds)
        seconds = sum(x["seconds"] for x in rounds)
        failures = sum(x["failures"] for x in rounds)
        wake = median([x["wakeups"] for x in rounds])
        probed_conn = median([x["conn"] for x in rounds])
        rss = max(x["rss"] for x in rounds)
        ratios = [x["cpu"] / k[0] for x, k in zip(rounds, keep_rounds)]

        # The other baselines, same URL shape, same run, once each. Back to back, and paced at
        # the daemon's rate (ENDPOINTS per second, for 10 s): a tight loop keeps its caches
        # warm, probes on a timer do not.
        base = {}
        for label, mode, count, rate in (
                ("keep-alive, back to back", "reuse", PROBES, 0),
                ("new connection each, back to back", "fresh", PROBES, 0),
                (keep_label, None, 0, 0),
                (f"new connection each, paced at {ENDPOINTS}/s", "fresh", paced, ENDPOINTS)):
            if mode is None:
                base[label] = (median([k[0] for k in keep_rounds]), sum(k[1] for k in keep_rounds),
                               sum(k[2] for k in keep_rounds), median([k[3] for k in keep_rounds]))
                continue
            cpu, ok, made, conn = curl_loop(baseline, nginx, nginx.url("?e=0"), count, mode, rate)
            base[label] = (cpu, ok, made, conn)

        # Idle figures
        time.sleep(max(0.0, IDLE_SECONDS - (time.monotonic() - idle_start[next(iter(idle))][1])))
        idle_rows = []
        for k, p in idle.items():
            w_start, t_start = idle_start[k]
            minutes = (time.monotonic() - t_start) / 60
            idle_rows.append((k, (wakeups(p.pid) - w_start) / minutes))

        print(f"okg-probed {BUILD}, {ENDPOINTS} endpoints at probeIntervalSeconds 1, "
              f"nginx on loopback")
        print(f"  probes measured            {n} in {seconds:.1f} s, {ROUNDS} rounds "
              f"({failures} failed in all)")
        print(f"  CPU per 10,000 probes      {probed_cpu:.3f} s (median; rounds: "
              + ", ".join(f"{x['cpu']:.3f}" for x in rounds) + ")")
        print(f"  wake-ups per probe         {wake:.2f}")
        print(f"  new connections per probe  {probed_conn:.3f}")
        print(f"  RSS                        {rss} kB")
        print(f"  per round, okg-probed / paced keep-alive loop: "
              + ", ".join(f"{x:.2f}" for x in ratios) + f" (median {median(ratios):.2f})")
        for label, (cpu, ok, count, conn) in base.items():
            print(f"minimal libcurl loop ({label}), same URL, {ok}/{count} ok"
                  + (f", median of {ROUNDS} rounds" if label == keep_label else ""))
            print(f"  CPU per 10,000 probes      {cpu:.3f} s")
            print(f"  new connections per probe  {conn:.3f}")
            print(f"  okg-probed / baseline      {probed_cpu / cpu:.2f}")
        for label, (cpu, ok, count, conn) in base.items():
            summary(f"probes ({ENDPOINTS} endpoints): CPU per 10,000 (vs libcurl {label})",
                    f"{probed_cpu:.2f}", "s", f"{cpu:.2f}", f"{probed_cpu / cpu:.2f}",
                    "<= 1.05x" if label.startswith("keep-alive, paced") else "")
        keep = base[keep_label]
        summary(f"probes ({ENDPOINTS} endpoints): new connections per probe",
                f"{probed_conn:.3f}", "",
                f"{keep[3]:.3f}", "", "~0 (keep-alive endpoints)")
        if IDLE_SECONDS >= 10:
            print(f"idle okg-probed, wake-ups per minute (over {IDLE_SECONDS:.0f} s)")
            for k, v in idle_rows:
                print(f"  {k:<34}{v:.1f}")
                summary(f"okg-probed idle wake-ups/min ({k})", f"{v:.1f}", "1/min")
        nginx.stop()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
