"""What the storage benchmarks share: a real kube-apiserver (tests/kube/, built once and cached)
started in a folder of the run, and busctl with JSON output."""
import json
import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "component"))
import kube as k  # noqa: E402


def start_kube(tmp):
    """A started KubeEnv under tmp/kube; the caller stops it."""
    os.environ["KUBE_APISERVER"] = k.build_apiserver()
    env = k.KubeEnv(os.path.join(tmp, "kube"))
    os.makedirs(env.dir)
    env.start()
    return env


def bench_pod(env, tmp):
    """The GameServer CRD, a namespace with pod and GameServer bench-0, and a service-account
    token for it in TMP/token. Returns (namespace, token file, token)."""
    env.admin.apply(k.GAMESERVER_CRD)
    env.admin.wait_crd("gameservers.game.kruise.io")
    ns, _ = env.sidecar_namespace("bench")
    env.admin.create_pod(ns, "bench-0")
    env.admin.create_gameserver(ns, "bench-0")
    token_file = os.path.join(tmp, "token")
    token = env.admin.write_token_file(token_file, ns)
    return ns, token_file, token


def busctl(addr, *args):
    out = subprocess.run(["busctl", f"--address={addr}", "--json=short", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["data"] if out.strip() else None
