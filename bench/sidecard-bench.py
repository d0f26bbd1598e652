#!/usr/bin/python3
"""Figures for okg-sidecard on the proposal's demo config:
  - exec of okg-sidecard -> first /readyz 200 (every daemon ready), measured quietly: the bench
    sleeps on okg-sidecard's NOTIFY_SOCKET until its READY=1 (sent when the start sequence is
    complete) and only then asks /readyz (then every 5 ms until 200), so that no polling
    competes with the daemons for the CPU while they start; median of RUNS
  - PSS of the idle suite, summed over okg-sidecard and all its processes (dbus-daemon included),
    as measured and as if the suite ran alone (an estimate that does not depend on what else
    the machine runs), and each process's Private_Dirty
  - kill -9 of a plugin -> /readyz 200 again with the replacement (its READY=1)
  - bus method round trip (Sidecar1.GetVersion) against dbus-daemon's own GetId, same run
  - wake-ups per second of each process while idle
With BASELINE_BUILD_DIR (e.g. a build of the previous commit; bench/run-all.sh makes one) the
start-up and footprint figures are measured on both builds, in turn, in the same run, and given
as ratios.
Usage: bench/sidecard-bench.py [BUILD_DIR] [RUNS] [BASELINE_BUILD_DIR]. Prints a table; asserts
nothing. With BENCH_SUMMARY=FILE it also appends its headline figures there (bench/run-all.sh)."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import TOP, comm, cpu_ns, demo_config, descendants, pss_alone, readyz, rollup, \
    start_sidecard, wakeups
from benchsummary import summary

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
BASE = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
IDLE_SECONDS = 20


class Figures:
    def __init__(self):
        self.ready_ms, self.restart_ms, self.pss, self.alone = [], [], [], []
        self.per_proc, self.per_proc_alone, self.per_proc_dirty, self.cpu_ms = {}, {}, {}, {}
        self.rtt, self.wakeups = [], {}

    def dirty(self):
        return sum(statistics.median(v) for v in self.per_proc_dirty.values())

    def cpu(self):
        return sum(statistics.median(v) for v in self.cpu_ms.values())


def one_run(build, fig, extras):
    tmp = tempfile.mkdtemp(prefix="okg-bench-")
    try:
        cfg, port = demo_config(tmp)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(os.path.join(tmp, "notify"))
        notify.settimeout(120)
        t0 = time.perf_counter()
        p = start_sidecard(build, cfg, tmp, {"NOTIFY_SOCKET": os.path.join(tmp, "notify")})
        while b"READY=1" not in notify.recv(4096):
            pass
        while readyz(port)[0] != 200:
            time.sleep(0.005)
        fig.ready_ms.append((time.perf_counter() - t0) * 1000)
        notify.close()
        # Where the time to ready goes: each process's time on CPU so far (the daemons start
        # one after another, so their start-up CPU adds up on the way to /readyz).
        for pid in descendants(p.pid):
            fig.cpu_ms.setdefault(comm(pid), []).append(cpu_ns(pid) / 1e6)
        time.sleep(1.0)  # idle
        procs = descendants(p.pid)
        est, _ = pss_alone(procs)
        fig.pss.append(sum(rollup(pid, "Pss") for pid in procs))
        fig.alone.append(sum(est.values()))
        for pid in procs:
            fig.per_proc.setdefault(comm(pid), []).append(rollup(pid, "Pss"))
            fig.per_proc_alone.setdefault(comm(pid), []).append(est[pid])
            fig.per_proc_dirty.setdefault(comm(pid), []).append(rollup(pid, "Private_Dirty"))
        if extras:
            old = {u["name"]: u["pid"] for u in readyz(port)[1]["units"]}["hot_update"]
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            while True:
                st, body = readyz(port)
                if st == 200 and {u["name"]: u["pid"] for u in body["units"]}["hot_update"] != old:
                    break
                time.sleep(0.0005)
            fig.restart_ms.append((time.perf_counter() - t0) * 1000)
        if extras and not fig.rtt:
            out = subprocess.run([os.path.join(build, "bench", "bus-rtt-bench"),
                                  f"unix:path={tmp}/run/bus", "2000"], capture_output=True, text=True)
            if out.returncode == 0:
                fig.rtt.extend(float(x) for x in out.stdout.split())
            # Idle: nothing is asked of the suite (the demo's probe starts after 60 s).
            procs = {pid: comm(pid) for pid in descendants(p.pid)}
            before = {pid: wakeups(pid) for pid in procs}
            time.sleep(IDLE_SECONDS)
            for pid, name in procs.items():
                fig.wakeups[name] = (wakeups(pid) - before[pid]) / IDLE_SECONDS
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    # Freshly built binaries are dirty in the page cache until written back, and smaps counts
    # such pages as private dirty.
    os.sync()
    fig, base = Figures(), Figures() if BASE else None
    for _ in range(RUNS):
        one_run(BUILD, fig, True)
        if BASE:
            one_run(BASE, base, False)

    def row(name, values, unit):
        print(f"{name:<44} {statistics.median(values):>9.1f} {min(values):>9.1f} "
              f"{max(values):>9.1f}  {unit}")

    def table(f, build):
        print(f"okg-sidecard on deploy/examples/config.yaml, {RUNS} runs, build {build}")
        print(f"{'figure':<44} {'median':>9} {'min':>9} {'max':>9}")
        row("exec -> /readyz 200", f.ready_ms, "ms")
        row("idle suite PSS, all processes", [k / 1024 for k in f.pss], "MiB")
        print("CPU time until /readyz 200 (median ms):",
              ", ".join(f"{n} {statistics.median(v):.1f}" for n, v in sorted(f.cpu_ms.items())),
              f"(sum {f.cpu():.1f})")
        if f.restart_ms:
            row("kill -9 hot_update -> replacement ready", f.restart_ms,
                "ms (first back-off step 100 ms)")
        row("idle suite PSS, suite alone (estimate)", [k / 1024 for k in f.alone], "MiB")
        print(f"{'by process (median KiB)':<20} {'PSS':>8} {'PSS alone':>10} {'Private_Dirty':>14}")
        for n in sorted(f.per_proc):
            print(f"{n:<20} {statistics.median(f.per_proc[n]):>8.0f} "
                  f"{statistics.median(f.per_proc_alone[n]):>10.0f} "
                  f"{statistics.median(f.per_proc_dirty[n]):>14.0f}")

    table(fig, BUILD)
    if base:
        table(base, BASE)
    if fig.rtt:
        print(f"{'bus round trip Sidecar1.GetVersion p50/p99':<44} {fig.rtt[0]:>9.1f} {fig.rtt[1]:>9.1f}  us")
        print(f"{'baseline dbus-daemon GetId p50/p99':<44} {fig.rtt[2]:>9.1f} {fig.rtt[3]:>9.1f}  us")
    print(f"idle wake-ups per second over {IDLE_SECONDS} s:",
          ", ".join(f"{n} {v:.2f}" for n, v in sorted(fig.wakeups.items())))

    def vs(figure, value, unit, b, goal, fmt="{:.1f}"):
        """A summary row, against the baseline build's figure when there is one."""
        summary(figure, fmt.format(value), unit, fmt.format(b) if base else "",
                f"{value / b:.2f}" if base and b else "", goal)

    med = statistics.median
    vs("idle suite PSS (all processes, as measured)", med(fig.pss) / 1024, "MiB",
       base and med(base.pss) / 1024, "")
    vs("idle suite PSS, suite alone (estimate)", med(fig.alone) / 1024, "MiB",
       base and med(base.alone) / 1024, "<= 12")
    vs("idle suite Private_Dirty (all processes)", fig.dirty() / 1024, "MiB",
       base and base.dirty() / 1024, "")
    for n in sorted(fig.per_proc):
        vs(f"  {n}: PSS alone", med(fig.per_proc_alone[n]), "KiB",
           base and med(base.per_proc_alone.get(n, [0])), "", "{:.0f}")
        vs(f"  {n}: Private_Dirty", med(fig.per_proc_dirty[n]), "KiB",
           base and med(base.per_proc_dirty.get(n, [0])), "", "{:.0f}")
    vs("exec -> /readyz 200 (quiet wait, median)", med(fig.ready_ms), "ms",
       base and med(base.ready_ms), "<= 100", "{:.0f}")
    vs("  CPU time of the suite until then", fig.cpu(), "ms", base and base.cpu(), "", "{:.0f}")
    summary("kill -9 plugin -> replacement ready", f"{med(fig.restart_ms):.0f}", "ms",
            "", "", "first back-off 100 ms")
    if fig.rtt:
        summary("bus method round trip p50", f"{fig.rtt[0]:.0f}", "us", f"{fig.rtt[2]:.0f}",
                f"{fig.rtt[0] / fig.rtt[2]:.2f}", "")
    summary("idle wake-ups/s, whole suite", f"{sum(fig.wakeups.values()):.2f}", "1/s", "", "", "")


if __name__ == "__main__":
    main()
