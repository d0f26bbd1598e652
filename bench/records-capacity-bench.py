#!/usr/bin/python3
"""How many pod records the result ConfigMap holds before the API server refuses a write, against
a real kube-apiserver (tests/kube/), for records of several sizes; then what okg-storaged does
with a full ConfigMap whose pods are gone: its own write is refused, pruning removes the
records of the gone pods, and the write goes through.
Usage: bench/records-capacity-bench.py [BUILD_DIR]. Prints figures; asserts nothing."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "component"))
import kube as k  # noqa: E402
from benchkube import busctl, start_kube  # noqa: E402
from benchsummary import summary  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
CM = "sidecar-result"
S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")


def hot_update_record(pod, gss, ns, pad=0):
    """A record shaped like okg-hotupdated's (docs/hot-update.md: the version in place, the
    previous one, the last result) with the fields okg-storaged adds; pad lengthens the URLs
    to reach a size."""
    url = "https://cdn.example.com/game/patches/" + "p" * pad
    sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

    def version(v, at):
        return {"version": v, "url": f"{url}/{v}/config.json", "sha256": sha,
                "fileName": "config.json", "appliedAt": at}
    rec = {"format": 1, **version("v2026.12.01-1", "2026-12-01T10:00:00.123Z"),
           "previous": version("v2026.11.30-3", "2026-11-30T18:00:00.456Z"),
           "lastResult": {"version": "v2026.12.01-1", "url": f"{url}/v2026.12.01-1/config.json",
                          "sha256": sha, "fileName": "config.json", "state": "Succeeded",
                          "success": True, "message": "updated; signalled 1 process",
                          "at": "2026-12-01T10:00:00.123Z", "currentVersion": "v2026.12.01-1"},
           "pod": pod, "namespace": ns, "gameServerSet": gss}
    return json.dumps(rec, separators=(",", ":"))


def record_of_size(pod, gss, ns, size):
    # The URL appears three times (current, previous, last result): each pad byte adds three.
    pad = max(0, (size - len(hot_update_record(pod, gss, ns))) // 3)
    return hot_update_record(pod, gss, ns, pad)


def fill(admin, ns, gss, size, first=0):
    """Adds records until the API server refuses one: many per patch while far from the
    limit (each patch rewrites the whole object in etcd, so one per record would write
    gigabytes), then one per patch, as okg-storaged sends them. The limit is on the whole
    object, so the count is the same. Pods are named from gss-<first>. Returns (records
    stored, bytes of the values, which is what the limit counts, the last refusal's status
    and message)."""
    admin.check(admin.post(admin.configmap_path(ns), {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": CM}}), 201)
    path = admin.configmap_path(ns, CM)
    n, stored, batch = 0, 0, 64
    while True:
        data = {}
        for i in range(first + n, first + n + batch):
            pod = f"{gss}-{i}"
            data[pod] = record_of_size(pod, gss, ns, size) if size else hot_update_record(pod, gss, ns)
        status, body = admin.patch(path, {"data": data})
        if status == 200:
            n += batch
            stored += sum(len(v) for v in data.values())
        elif batch > 1:
            batch = max(1, batch // 8)
        else:
            return n, stored, status, k.status_message(body)


def main():
    tmp = tempfile.mkdtemp(prefix="okg-records-bench-")
    env = start_kube(tmp)
    storaged = bus = None
    try:
        admin = env.admin
        print("result ConfigMap capacity, kube-apiserver 1.20.2 on loopback (merge patches of "
              "data keys, as okg-storaged writes)")
        print(f"{'record size (bytes)':<22} {'records stored':>15} {'value bytes':>12}  refusal")
        figures = {}
        for label, size in (("typical", 0), ("1.5 KiB", 1536), ("6 KiB", 6144)):
            ns = env.new_namespace("cap")
            n, stored, status, message = fill(admin, ns, "game", size)
            typical = len(hot_update_record("game-123", "game", ns))
            shown = f"{typical} ({label})" if size == 0 else f"{size} ({label})"
            print(f"{shown:<22} {n:>15} {stored:>12}  HTTP {status}: {message}")
            figures[label] = n
        summary("records per result ConfigMap, typical record", str(figures["typical"]), "", "", "", "")
        summary("records per result ConfigMap, 6 KiB records", str(figures["6 KiB"]), "", "", "", "")

        # A full ConfigMap of a set scaled in to 1 pod, game-0, which had no record yet:
        # okg-storaged of that pod.
        ns, _ = env.sidecar_namespace("full")
        n, _, _, _ = fill(admin, ns, "game", 2600, first=1)
        admin.create_pod(ns, "game-0", labels={"game.kruise.io/owner-gss": "game"})
        token_file = os.path.join(tmp, "token")
        admin.write_token_file(token_file, ns)
        kc = env.write_kubeconfig(os.path.join(tmp, "kubeconfig"), ns, token_file=token_file)
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w") as f:
            f.write("plugins: []\nstorage:\n  recordPruneAfterSeconds: 5\n")
        addr = f"unix:path={tmp}/bus"
        bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile",
                                f"--config-file={BUILD}/units/okg-bus.conf", f"--address={addr}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(f"{tmp}/bus"):
            time.sleep(0.05)
        log = open(os.path.join(tmp, "storaged.log"), "w")
        storaged = subprocess.Popen(
            [os.path.join(BUILD, "okg-storaged", "okg-storaged"), "--config", cfg],
            env=dict(os.environ, KUBECONFIG=kc, POD_NAME="game-0", POD_NAMESPACE=ns,
                     OKG_BUS_ADDRESS=addr, OKG_STATE_DIR=os.path.join(tmp, "state")),
            stdout=log, stderr=subprocess.STDOUT)
        while subprocess.run(["busctl", f"--address={addr}", "status", S[0]],
                             capture_output=True).returncode != 0:
            time.sleep(0.05)
        t0 = time.monotonic()
        busctl(addr, "call", *S, "PutRecord", "s", record_of_size("game-0", "game", ns, 2600))
        while busctl(addr, "get-property", *S, "Pending") != 0 and time.monotonic() - t0 < 300:
            time.sleep(0.1)
        t1 = time.monotonic()
        acked = busctl(addr, "get-property", *S, "Pending") == 0
        status, cm = admin.get(admin.configmap_path(ns, CM))
        left = len(cm.get("data") or {})
        text = open(os.path.join(tmp, "storaged.log")).read()
        refused = [ln for ln in text.splitlines() if "refused the records write" in ln]
        pruned = [ln for ln in text.splitlines() if "Removed the record(s)" in ln]
        print()
        print(f"full ConfigMap ({n} records of 2600 bytes, their pods gone), okg-storaged of the "
              "remaining pod, recordPruneAfterSeconds 5:")
        print(f"  first refusal: {refused[0].split(': ', 1)[-1] if refused else '(none)'}")
        removed = int(re.search(r"of (\d+) pod", pruned[0]).group(1)) if pruned else 0
        print(f"  records removed in one round: {removed}")
        print(f"  own record {'acknowledged' if acked else 'NOT acknowledged'} {t1 - t0:.1f} s "
              f"after PutRecord; keys left: {left}")
    finally:
        for p in (storaged, bus):
            if p:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        env.stop()


if __name__ == "__main__":
    main()
