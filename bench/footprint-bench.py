#!/usr/bin/python3
"""Where the idle demo suite's memory goes: per process and per mapping (library, heap,
anonymous...), from /proc/PID/smaps_rollup and /proc/PID/smaps, one second after /readyz
answers 200 and again after the demo's first probe (its startDelaySeconds is 60).
For each BUILD_DIR: per process PSS, PSS as if the suite ran alone (see bench/benchlib.py) and
Private_Dirty, then the mappings that cost most. Several builds are started in turn (the first
is the baseline, e.g. a build of the previous commit) so their figures come from the same run.
Usage: bench/footprint-bench.py [--top N] [--after-probe] BUILD_DIR [BUILD_DIR...]
Prints tables; asserts nothing."""
import os
import shutil
import signal
import sys
import tempfile
import time

from benchlib import comm, demo_config, descendants, mappings, pss_alone, readyz, rollup, \
    start_sidecard, wait_for
from benchsummary import summary


def short(path):
    return os.path.basename(path) if path.startswith("/") else (path or "[anon]")


def snapshot(root):
    """{comm: (Pss, PSS alone, Private_Dirty, {mapping: (PSS alone, Private_Dirty)})}."""
    pids = descendants(root)
    alone, by_path = pss_alone(pids)
    out = {}
    for pid in pids:
        dirty = {}
        for m in mappings(pid):
            k = short(m["path"])
            dirty[k] = dirty.get(k, 0) + m.get("Private_Dirty", 0)
        libs = {}
        for path, kib in by_path[pid].items():
            k = short(path)
            libs[k] = (libs.get(k, (0, 0))[0] + kib, dirty.get(k, 0))
        out[comm(pid)] = (rollup(pid, "Pss"), alone[pid], rollup(pid, "Private_Dirty"), libs)
    return out


def print_snapshot(title, snap, top):
    print(title)
    print(f"  {'process':<16} {'PSS':>7} {'alone':>7} {'P_Dirty':>8}   KiB; costliest mappings "
          "(PSS alone/Private_Dirty KiB)")
    for name in sorted(snap):
        pss, alone, dirty, libs = snap[name]
        costly = sorted(libs.items(), key=lambda kv: -kv[1][0])[:top]
        print(f"  {name:<16} {pss:>7.0f} {alone:>7.0f} {dirty:>8.0f}   " +
              ", ".join(f"{k} {a:.0f}/{d:.0f}" for k, (a, d) in costly))
    print(f"  {'suite':<16} {sum(v[0] for v in snap.values()):>7.0f} "
          f"{sum(v[1] for v in snap.values()):>7.0f} {sum(v[2] for v in snap.values()):>8.0f}")


def measure(build, after_probe):
    tmp = tempfile.mkdtemp(prefix="okg-footprint-")
    try:
        cfg, port = demo_config(tmp)
        os.sync()
        p = start_sidecard(build, cfg, tmp)
        t0 = time.monotonic()
        wait_for(lambda: readyz(port)[0] == 200, 60, "/readyz 200", interval=0.005)
        time.sleep(1.0)
        snaps = [("idle, 1 s after /readyz", snapshot(p.pid))]
        if after_probe:
            # The demo's probe (nothing listens on localhost:8080: it fails) starts after 60 s.
            time.sleep(max(0.0, 63 - (time.monotonic() - t0)))
            snaps.append(("idle, after the first probe", snapshot(p.pid)))
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        return snaps
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    args, top, after = sys.argv[1:], 6, False
    while args and args[0].startswith("--"):
        if args[0] == "--top":
            top, args = int(args[1]), args[2:]
        elif args[0] == "--after-probe":
            after, args = True, args[1:]
        else:
            raise SystemExit(__doc__)
    builds = [os.path.abspath(b) for b in args] or [os.path.join(os.path.dirname(__file__), "..",
                                                                   "build-run")]
    results = []
    for b in builds:
        for title, snap in measure(b, after):
            print_snapshot(f"{b}: {title}", snap, top)
            results.append((b, title, snap))
        print()
    # The last build against the first (its baseline) when there are two or more.
    base = {t: s for b, t, s in results if b == builds[0]} if len(builds) > 1 else {}
    for b, t, s in results:
        if b != builds[-1]:
            continue
        a1 = sum(v[1] for v in s.values())
        a0 = sum(v[1] for v in base[t].values()) if base else 0
        summary(f"footprint ({t}): suite PSS alone", f"{a1 / 1024:.1f}", "MiB",
                f"{a0 / 1024:.1f}" if a0 else "", f"{a1 / a0:.2f}" if a0 else "", "<= 12")

if __name__ == "__main__":
    main()
