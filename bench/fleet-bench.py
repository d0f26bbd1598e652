#!/usr/bin/python3
"""Fleet rollout time through the Kubernetes API server's pod proxy: `okgctl fleet hot-update`
at --max-in-flight 1, 5 and 20 against a sequential `curl` loop POSTing to the same proxy URLs,
in the same run, on a fleet of real suites (default 20), each its own pod on its own pod IP.

The world is the end-to-end tests' (tests/component/fleet_env.py): a network namespace with
198.18.0.x addresses on its lo, a real kube-apiserver + etcd, one okg-sidecard suite per pod
(okg-storaged on the Kubernetes backend, okg-hotupdated in request reload mode). Every rollout
is a new version with new content, so every pod downloads, reloads and records. okgctl also
waits for each pod's annotation to show the outcome; the curl loop only takes the answers
(checked for "Succeeded" afterwards), so it does strictly less.

Usage (as root): bench/fleet-bench.py [BUILD_DIR] [RUNS] [PODS]. Prints figures; asserts
nothing beyond each rollout having reached its version."""
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-run"))
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
PODS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
os.environ["OKG_BUILD_DIR"] = BUILD
sys.path.insert(0, os.path.join(TOP, "tests", "component"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchsummary import summary  # noqa: E402
from fleet_env import FileServer, Fleet, NetNS, World, close_world  # noqa: E402
from kube import GAMESERVER_CRD, KubeEnv, build_apiserver  # noqa: E402

CURL_LOOP = r"""
set -u
for pod in $PODS; do
        curl -s --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
             -H 'Content-Type: application/json' -d "$BODY" \
             "$SERVER/api/v1/namespaces/$NS/pods/$pod:5000/proxy/hot-update"
        echo
done
"""


def main():
    os.environ["KUBE_APISERVER"] = build_apiserver()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="okg-fleet-bench-"))
    netns = NetNS()
    kube = files = fleet = None
    try:
        netns.enter()
        kube = KubeEnv(tmp / "kube")
        os.makedirs(kube.dir)
        kube.start()
        kube.admin.apply(GAMESERVER_CRD)
        files = FileServer()
        (tmp / "fleet").mkdir()   # apart from kube/: the leftover check greps for this path
        fleet = Fleet(World(netns, kube, files), tmp / "fleet")
        names = [f"game-{i}" for i in range(PODS)]
        for n in names:
            fleet.add_pod(n)
        t0 = time.monotonic()
        fleet.start()
        print(f"{PODS} suites ready as pods in {time.monotonic() - t0:.1f} s "
              f"({os.cpu_count()} cores)")

        methods = ["okgctl --max-in-flight 1", "okgctl --max-in-flight 5",
                   "okgctl --max-in-flight 20", "sequential curl loop"]
        times = {m: [] for m in methods}
        version = 0
        for run in range(RUNS):
            order = methods if run % 2 == 0 else list(reversed(methods))
            for m in order:
                version += 1
                v = f"v{version}"
                url, sha = files.put(f"/{fleet.ns}/{v}/index.html", f"{v} " * 1000)
                if m.startswith("okgctl"):
                    mif = m.split()[-1]
                    t = time.monotonic()
                    rc, out, err = fleet.hot_update(v, url, "--sha256", sha, "--max-in-flight", mif,
                                                    env={"OKG_NO_PROGRESS": "1"})
                    dt = time.monotonic() - t
                    if rc != 0:
                        raise SystemExit(f"{m} did not complete:\n{out}\n{err}")
                else:
                    body = f'{{"version":"{v}","url":"{url}","sha256":"{sha}"}}'
                    env = dict(os.environ, PODS=" ".join(names), CA=kube.ca, TOKEN=kube.admin_token,
                               BODY=body, SERVER=kube.server, NS=fleet.ns)
                    t = time.monotonic()
                    r = subprocess.run(["bash", "-c", CURL_LOOP], capture_output=True, text=True,
                                       env=env, timeout=600)
                    dt = time.monotonic() - t
                    ok = r.stdout.count('"state":"Succeeded"')
                    if ok != PODS:
                        raise SystemExit(f"curl loop: {ok}/{PODS} succeeded:\n{r.stdout[-2000:]}")
                times[m].append(dt)
                print(f"run {run + 1} {m:28s} {v:5s} {dt * 1000:8.0f} ms")

        base = statistics.median(times["sequential curl loop"])
        print(f"\nrollout of {PODS} pods through the pod proxy, median of {RUNS}:")
        for m in methods:
            med = statistics.median(times[m])
            print(f"  {m:28s} {med * 1000:8.0f} ms  ({PODS / med:5.1f} pods/s, "
                  f"{med / base:.2f}x the curl loop)")
        for mif in ("1", "5", "20"):
            med = statistics.median(times[f"okgctl --max-in-flight {mif}"])
            summary(f"fleet rollout, {PODS} pods via proxy, max-in-flight {mif}",
                    f"{med * 1000:.0f}", "ms", f"{base * 1000:.0f}", f"{med / base:.2f}",
                    "faster than a curl loop" if mif != "1" else "")
        print("command: bench/fleet-bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    finally:
        try:
            close_world(netns, kube, files, fleet)
        finally:
            subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
