"""okg-storaged against a real kube-apiserver (tests/kube/): every write type, no requests in a
steady state, an API outage, a crash with pending writes, 50 pods sharing one result ConfigMap,
an RBAC denial, and token rotation. The sidecar runs with the project's own RBAC from deploy/
and a TokenRequest token, as in a pod."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BUILD, free_port, make_config, spawn, wait_for
from kube import kube, sa_username  # noqa: F401

S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")
NO_PLUGINS = "plugins: []\n"


def call(s, method, sig, *args, check=True):
    return s.busctl("call", *S, method, sig, *[str(a) for a in args], json_out=check, check=check)


def prop(s, name):
    return s.busctl("get-property", *S, name, json_out=True)["data"]


class Pod:
    """A namespace with deploy/rbac.yaml, a pod and its GameServer, and a kubeconfig holding a
    TokenRequest token file for the okg-sidecar ServiceAccount."""

    def __init__(self, kube, tmp_path, name="game-0", gss="game"):
        self.kube = kube
        self.ns, self.sa = kube.sidecar_namespace("st")
        self.name = name
        self.gss = gss
        self.pod = kube.admin.create_pod(self.ns, name, labels={"game.kruise.io/owner-gss": gss})
        kube.admin.create_gameserver(self.ns, name, labels={"game.kruise.io/owner-gss": gss})
        self.token_file = str(tmp_path / f"token-{name}")
        kube.admin.write_token_file(self.token_file, self.ns)
        self.kubeconfig = kube.write_kubeconfig(str(tmp_path / f"kubeconfig-{name}"), self.ns,
                                                token_file=self.token_file)
        self.env = {"KUBECONFIG": self.kubeconfig, "POD_NAME": name, "POD_NAMESPACE": self.ns}

    def get(self, kind):
        c = self.kube.admin
        path = {"pod": c.pod_path(self.ns, self.name),
                "gs": c.gameserver_path(self.ns, self.name),
                "cm": c.configmap_path(self.ns, "sidecar-result")}[kind]
        status, body = c.get(path)
        return body if status == 200 else None

    def rv(self, kind):
        return self.get(kind)["metadata"]["resourceVersion"]


def start_suite(suite_factory, pod, extra=""):
    s = suite_factory(make_config(free_port(), []).replace("plugins:\n", NO_PLUGINS) + extra)
    s.start(pod.env)
    s.wait_ready()
    assert prop(s, "Backend") == "kubernetes"
    return s


def test_each_write_type(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    wait_for(lambda: prop(s, "GameServerSet") == "game", what="GameServerSet from the pod label")
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/version", "v2", 1,
         "sidecar.vke.volcengine.com/hot-update-result", '{"version":"v2","state":"Succeeded"}')
    call(s, "SetGameServer", "sa{ss}a{ss}", "WaitToBeDeleted", 1, "okg.test/state", "draining", 0)
    call(s, "PutRecord", "s", '{"version":"v2","appliedAt":"2026-11-27T00:00:00Z"}')
    call(s, "PostEvent", "sss", "Normal", "HotUpdateSucceeded", "updated to v2")
    wait_for(lambda: prop(s, "Pending") == 0, what="everything acknowledged")

    p = pod.get("pod")["metadata"]
    assert p["labels"]["okg.test/version"] == "v2"
    assert p["labels"]["game.kruise.io/owner-gss"] == "game"      # untouched
    assert json.loads(p["annotations"]["sidecar.vke.volcengine.com/hot-update-result"])["version"] == "v2"
    gs = pod.get("gs")
    assert gs["spec"]["opsState"] == "WaitToBeDeleted"
    assert gs["metadata"]["labels"]["okg.test/state"] == "draining"
    rec = json.loads(pod.get("cm")["data"][pod.name])
    assert rec["version"] == "v2" and rec["gameServerSet"] == "game" and rec["pod"] == pod.name
    events = kube.admin.get(f"/api/v1/namespaces/{pod.ns}/events")[1]["items"]
    ev = [e for e in events if e["reason"] == "HotUpdateSucceeded"]
    assert len(ev) == 1 and ev[0]["involvedObject"]["uid"] == pod.pod["metadata"]["uid"]
    assert ev[0]["message"] == "updated to v2" and ev[0]["source"]["component"] == "okg-sidecar"
    # Reading it back goes to the API server.
    got, who = call(s, "GetRecord", "")["data"]
    assert json.loads(got)["version"] == "v2" and who == pod.name


def test_steady_state_sends_nothing(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/a", "1", 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    kube.audit.settle()
    audit = kube.audit
    mark = audit.mark()
    rv_gs, rv_pod = pod.rv("gs"), pod.rv("pod")
    sent = prop(s, "RequestsSent")
    # The same values again, and time passing: nothing goes to the API server.
    for _ in range(5):
        call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
        call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/a", "1", 0)
    time.sleep(3)
    kube.audit.settle()
    assert audit.count(since=mark, user=sa_username(pod.ns)) == 0
    assert prop(s, "RequestsSent") == sent
    assert (pod.rv("gs"), pod.rv("pod")) == (rv_gs, rv_pod)


def test_api_outage_of_30s(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "None", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    kube.stop_apiserver()
    try:
        t0 = time.monotonic()
        states = ["Allocated", "Maintaining", "WaitToBeDeleted"]
        for i, st in enumerate(states):
            call(s, "SetGameServer", "sa{ss}a{ss}", st, 0, 0)
            call(s, "SetPodMetadata", "a{ss}a{ss}", 1, f"okg.test/l{i}", st, 0)
            call(s, "PutRecord", "s", json.dumps({"version": f"v{i}"}))
            time.sleep(5)
        time.sleep(max(0, 30 - (time.monotonic() - t0)))
        assert prop(s, "Pending") >= 3
        assert prop(s, "LastError") != ""
    finally:
        kube.start_apiserver()
    wait_for(lambda: prop(s, "Pending") == 0, timeout=90, what="applied after the outage")
    assert pod.get("gs")["spec"]["opsState"] == "WaitToBeDeleted"        # the last value won
    labels = pod.get("pod")["metadata"]["labels"]
    assert [labels[f"okg.test/l{i}"] for i in range(3)] == states
    assert json.loads(pod.get("cm")["data"][pod.name])["version"] == "v2"


def test_kill_9_with_pending_writes(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    kube.stop_apiserver()
    try:
        call(s, "SetGameServer", "sa{ss}a{ss}", "Kill", 0, 0)
        call(s, "PutRecord", "s", '{"version":"v9"}')
        call(s, "PostEvent", "sss", "Warning", "HotUpdateFailed", "download failed")
        assert prop(s, "Pending") == 3
        pid = s.pid("storage")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid)
                 and s.units()["storage"]["ready"], what="storage restarted")
        assert prop(s, "Pending") == 3                  # from the journal
    finally:
        kube.start_apiserver()
    wait_for(lambda: prop(s, "Pending") == 0, timeout=90, what="applied after the restart")
    assert pod.get("gs")["spec"]["opsState"] == "Kill"
    assert json.loads(pod.get("cm")["data"][pod.name])["version"] == "v9"
    events = kube.admin.get(f"/api/v1/namespaces/{pod.ns}/events")[1]["items"]
    assert [e["reason"] for e in events if e["reason"] == "HotUpdateFailed"] == ["HotUpdateFailed"]


def test_fifty_pods_share_one_configmap(kube, tmp_path):
    """50 okg-storaged, each with its own private bus as in its own pod, record at once."""
    ns, _ = kube.sidecar_namespace("fifty")
    token_file = str(tmp_path / "token")
    kube.admin.write_token_file(token_file, ns)
    kc = kube.write_kubeconfig(str(tmp_path / "kubeconfig"), ns, token_file=token_file)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(NO_PLUGINS)
    procs = []
    try:
        for i in range(50):
            name = f"fleet-{i}"
            kube.admin.create_pod(ns, name, labels={"game.kruise.io/owner-gss": "fleet"})
            d = tmp_path / name
            d.mkdir()
            bus = spawn(["dbus-daemon", "--nofork", "--nopidfile",
                                    f"--config-file={BUILD}/units/okg-bus.conf",
                                    f"--address=unix:path={d}/bus"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(bus)
        for i, bus in enumerate(procs[:50]):
            d = tmp_path / f"fleet-{i}"
            wait_for(lambda: (d / "bus").exists(), what="bus socket")
            env = dict(os.environ, KUBECONFIG=kc, POD_NAME=f"fleet-{i}", POD_NAMESPACE=ns,
                       OKG_BUS_ADDRESS=f"unix:path={d}/bus", OKG_STATE_DIR=str(d / "state"))
            env.pop("NOTIFY_SOCKET", None)
            procs.append(spawn([f"{BUILD}/okg-storaged/okg-storaged", "--config", str(cfg)],
                                          env=env, stdout=open(d / "log", "w"),
                                          stderr=subprocess.STDOUT))

        def busctl(i, *args):
            return subprocess.run(["busctl", f"--address=unix:path={tmp_path}/fleet-{i}/bus", *args],
                                  capture_output=True, text=True)

        for i in range(50):
            wait_for(lambda: busctl(i, "status", S[0]).returncode == 0, what=f"storaged {i}")
        # All at once: 50 concurrent callers.
        calls = [spawn(["busctl", f"--address=unix:path={tmp_path}/fleet-{i}/bus",
                                   "call", *S, "PutRecord", "s", json.dumps({"version": f"v-{i}"})],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i in range(50)]
        for c in calls:
            assert c.wait(30) == 0, c.stderr.read()

        def entries():
            status, cm = kube.admin.get(kube.admin.configmap_path(ns, "sidecar-result"))
            return cm.get("data", {}) if status == 200 else {}
        wait_for(lambda: len(entries()) == 50, what="50 entries")
        data = entries()
        for i in range(50):
            rec = json.loads(data[f"fleet-{i}"])
            assert rec["version"] == f"v-{i}" and rec["gameServerSet"] == "fleet"
        # A new pod of the set finds the newest... by the field the plugins choose.
        out = busctl(7, "call", *S, "GetFleetRecord", "s", "version")
        assert out.returncode == 0 and '"version\\":\\"v-9\\"' in out.stdout
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_rbac_denial_names_verb_and_resource(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    # A ServiceAccount without the Role: what a missing RoleBinding looks like.
    kube.admin.apply([{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}}], pod.ns)
    kube.admin.write_token_file(pod.token_file, pod.ns, service_account="nobody")
    s = start_suite(suite_factory, pod)
    # The refusal of this write, from its own WriteFailed signal: LastError and Failures also
    # count other requests (the start-up GET of the pod is denied too, and may be reported last).
    with s.monitor(S[2], "WriteFailed").listen("sts", "marker", 0, "") as mon:
        call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
        _, _, err = mon.wait(lambda a: a[0] == "gameserver", what="the GameServer write refused")
    assert 'cannot patch resource "gameservers" in API group "game.kruise.io"' in err
    assert f'system:serviceaccount:{pod.ns}:nobody' in err
    wait_for(lambda: err in s.log_text(), what="the refusal in the log")
    assert pod.get("gs")["spec"]["opsState"] == "None"


def test_rotated_token_file_is_used_for_the_next_request(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    other = kube.add_service_account(pod.ns, "okg-sidecar-rotated")
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="first write")
    kube.audit.settle()
    mark = kube.audit.mark()
    # The kubelet rotates the projected token; here the new one belongs to another account so
    # the audit log can tell them apart.
    kube.admin.write_token_file(pod.token_file, pod.ns, service_account=other)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Maintaining", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="second write")
    kube.audit.wait_count(1, since=mark, user=sa_username(pod.ns, other), verb="patch",
                          resource="gameservers")
    assert kube.audit.count(since=mark, user=sa_username(pod.ns), verb="patch") == 0
    assert pod.get("gs")["spec"]["opsState"] == "Maintaining"


def test_in_cluster_service_account_files(kube, suite_factory, tmp_path):
    """As in a pod: KUBERNETES_SERVICE_HOST/PORT and the service-account token, ca.crt and
    namespace files (here in a folder of the test's, named by OKG_SERVICEACCOUNT_DIR)."""
    pod = Pod(kube, tmp_path)
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    kube.admin.write_token_file(str(sa_dir / "token"), pod.ns)
    (sa_dir / "ca.crt").write_text(open(kube.ca).read())
    (sa_dir / "namespace").write_text(pod.ns)
    host, port = kube.server.removeprefix("https://").rsplit(":", 1)
    s = suite_factory(make_config(free_port(), []).replace("plugins:\n", NO_PLUGINS))
    s.start({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
             "OKG_SERVICEACCOUNT_DIR": str(sa_dir), "POD_NAME": pod.name})
    s.wait_ready()
    assert prop(s, "Backend") == "kubernetes"
    assert prop(s, "Namespace") == pod.ns               # from the namespace file
    assert "credentials: in-cluster" in s.log_text()
    call(s, "SetGameServer", "sa{ss}a{ss}", "Maintaining", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="applied")
    assert pod.get("gs")["spec"]["opsState"] == "Maintaining"


def test_backend_kubernetes_without_credentials_fails_clearly(suite_factory, tmp_path):
    cfg = make_config(free_port(), []).replace("plugins:\n", NO_PLUGINS)
    s = suite_factory(cfg + "storage:\n  backend: kubernetes\nstartTimeoutSeconds: 2\n")
    env = {k: "" for k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    s.start(env)
    s.wait_log("storage.backend is kubernetes, but neither the in-cluster service account nor "
               r"\$KUBECONFIG is there")
    s.wait_log(r"storage \(PID \d+\) exited with status 1")
