"""The service_quality plugin (okg-probed --plugin service_quality): the probes of the pod's
kruise.io/podprobe annotation, written exactly as Kruise's webhook writes it, run against a real
nginx game, a closed port and an exec in the game's process tree; the results become pod
conditions through okg-storaged, against a real kube-apiserver (tests/kube/) and in the local
store. There is no kubelet: the test writes containerStatuses, podIP and startedAt into the
pod status as an admin."""
import json
import os
import socket
import subprocess
import threading

import pytest

from conftest import BUILD, SIDECARD, QuietHTTPServer, free_port, make_config, scaled, wait_for
from probe_helpers import NAMESPACE, POD, nginx_game, start_suite

assert nginx_game   # fixture, used by name

SQ = ("io.kruise.game.ServiceQuality1", "/io/kruise/game/ServiceQuality1",
      "io.kruise.game.ServiceQuality1")
PROBE_IFACE = "io.kruise.game.ServiceQuality1.Probe"


def replace_text(path, text):
    """Writes PATH whole by a rename, as the kubelet updates a downward-API file: the plugin
    never reads it empty or half-written (truncate-then-write let it see an empty list)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def sq_plugin(config=""):
    body = "".join(f"      {line}\n" for line in config.splitlines())
    return "  - name: service_quality\n    bootorder: 2\n" + (
        "    config:\n" + body if body else "")


def kruise_annotation(probes):
    """What Kruise's webhook writes: Go's json.Marshal of []PodContainerProbe (field order
    name, containerName, probe, podConditionType; no spaces)."""
    return json.dumps(probes, separators=(",", ":"))


def probe(name, handler, container="game", delay=None, period=1, timeout=None, success=None,
          failure=None):
    p = dict(handler)
    for k, v in (("initialDelaySeconds", delay), ("timeoutSeconds", timeout),
                 ("periodSeconds", period), ("successThreshold", success),
                 ("failureThreshold", failure)):
        if v is not None:
            p[k] = v
    return {"name": name, "containerName": container, "probe": p,
            "podConditionType": f"game.kruise.io/{name}"}


def closed_port():
    """A loopback port nobody listens on (bound, then closed: connect is refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sq_prop(s, name):
    return s.busctl("get-property", *SQ, name, json_out=True)["data"]


def probe_prop(s, index, name):
    return s.busctl("get-property", SQ[0], f"{SQ[1]}/probe/{index}", PROBE_IFACE, name,
                    json_out=True)["data"]


def wait_probe(s, index, status, message=None, what=None):
    def ok():
        try:
            return (probe_prop(s, index, "Status") == status and
                    (message is None or probe_prop(s, index, "Message") == message))
        except Exception:
            return False
    wait_for(ok, what=what or f"probe {index} {status} {message!r}")


def start_local(suite_factory, tmp_path, probes, config=None, env=None):
    ann = tmp_path / "podprobe"
    ann.write_text(kruise_annotation(probes))
    text = make_config(free_port(), []).replace("plugins:\n", "plugins:\n" + sq_plugin(
        config if config is not None else f"source: file\nfile: {ann}"))
    return start_suite(suite_factory, text, env)


def test_local_file_source_drives_conditions(suite_factory, tmp_path, nginx_game):
    """A local run (no cluster, no kubelet): the probes come from a downward-API style file;
    the game's page drives the condition through several messages and to False."""
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    assert sq_prop(s, "Source") == "file"
    assert "downward-API file" in sq_prop(s, "SourceReason")
    nginx_game.set_state("None")
    wait_probe(s, 0, "True", "None")
    nginx_game.set_state("WaitToBeDeleted")
    wait_probe(s, 0, "True", "WaitToBeDeleted")
    os.unlink(nginx_game.docroot / "state")
    wait_probe(s, 0, "False", "HTTP probe failed with statuscode: 404")
    assert probe_prop(s, 0, "ConditionType") == "game.kruise.io/idle"
    assert probe_prop(s, 0, "Source") == "file"

    # The local store mirrors the condition, merged by type, with okg-storaged's times.
    def local_condition():
        try:
            pod = json.loads((s.state / "local-store.json").read_text())["pods"][
                f"{NAMESPACE}/{POD}"]
        except (FileNotFoundError, KeyError, ValueError):
            return None
        return {c["type"]: c for c in pod["status"]["conditions"]}.get("game.kruise.io/idle")
    wait_for(lambda: (local_condition() or {}).get("message") ==
             "HTTP probe failed with statuscode: 404", what="the local store's condition")
    c = local_condition()
    assert c["status"] == "False" and "reason" not in c and c["lastTransitionTime"]


def test_local_tcp_closed_port_and_exec_without_shared_pid_namespace(suite_factory, tmp_path,
                                                                     nginx_game):
    """tcpSocket to a closed port gives False with Go's dial error, to the game's port True with
    an empty message; exec in a pod that does not share its process namespace gives False with
    a message saying why. /metrics shows the source and each condition."""
    port = closed_port()
    s = start_local(suite_factory, tmp_path, [
        probe("closed", {"tcpSocket": {"port": port}}, delay=0),
        probe("open", {"tcpSocket": {"port": nginx_game.port}}, delay=0),
        probe("healthy", {"exec": {"command": ["sh", "-c", "echo ok"]}}, delay=0)])
    wait_probe(s, 0, "False", f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    wait_probe(s, 1, "True", "")
    wait_probe(s, 2, "False")
    assert "shareProcessNamespace" in probe_prop(s, 2, "Message")
    assert probe_prop(s, 0, "Handler") == "tcpSocket"
    assert probe_prop(s, 0, "Target") == f"127.0.0.1:{port}"

    status, _ = s.http("/readyz")
    assert status == 200
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics",
                                  timeout=scaled(10)).read().decode()
    assert 'okg_sidecar_service_quality_info{source="file"' in text
    assert ('okg_sidecar_service_quality_condition{probe="closed",condition="game.kruise.io/closed"} 0'
            in text)
    assert ('okg_sidecar_service_quality_condition{probe="open",condition="game.kruise.io/open"} 1'
            in text)

    out = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address, "--json",
                          "service-quality"], capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"] == "file" and doc["writer"] == "okg-probed"
    assert [p["status"] for p in doc["probes"]] == ["False", "True", "False"]
    out = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address,
                          "service-quality"], capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0 and "source file (source file: the downward-API file" in out.stdout
    out = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address,
                          "log-level", "service_quality", "debug"], capture_output=True, text=True,
                         timeout=scaled(30))
    assert out.returncode == 0, out.stderr
    assert s.busctl("get-property", SQ[0], "/org/freedesktop/LogControl1",
                    "org.freedesktop.LogControl1", "LogLevel", json_out=True)["data"] == "debug"


def test_bad_annotation_is_refused_and_changes_nothing(suite_factory, tmp_path, nginx_game):
    """A refused probe list says why on the bus and keeps the probes that ran."""
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", "None")
    replace_text(tmp_path / "podprobe", '[{"name":"x"}]')
    s.busctl("call", *SQ, "ProbeNow")
    wait_for(lambda: sq_prop(s, "ProbesError") == '[0]: "containerName" is missing',
             timeout=scaled(60), what="the refusal on the bus")
    assert sq_prop(s, "Probes") == 1
    nginx_game.set_state("Allocated")
    wait_probe(s, 0, "True", "Allocated")


def test_disabled_runs_nothing(suite_factory, tmp_path):
    s = start_local(suite_factory, tmp_path, [probe("idle", {"tcpSocket": {"port": 1}})],
                    config="enabled: false")
    wait_for(lambda: sq_prop(s, "Source") == "disabled", what="disabled on the bus")
    assert sq_prop(s, "Probes") == 0
    # Nobody writes: not "okg-probed (no other writer of these conditions seen)".
    assert sq_prop(s, "Writer") == "disabled"
    assert "enabled: false" in sq_prop(s, "WriterReason")
    out = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address,
                          "service-quality"], capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0 and "writer disabled" in out.stdout, out.stdout
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics",
                                  timeout=scaled(10)).read().decode()
    assert 'writer="disabled"' in text and 'writer="okg-probed"' not in text


def local_conditions(s):
    try:
        pod = json.loads((s.state / "local-store.json").read_text())["pods"][f"{NAMESPACE}/{POD}"]
    except (FileNotFoundError, KeyError, ValueError):
        return {}
    return {c["type"]: c for c in pod["status"].get("conditions", [])}


def wait_local(s, name, status, message, what=None):
    def ok():
        c = local_conditions(s).get(f"game.kruise.io/{name}") or {}
        return c.get("status") == status and (message is None or c.get("message") == message)
    wait_for(ok, timeout=scaled(60), what=what or f"condition {name} {status} {message!r}")


def test_probe_list_change_is_no_other_writer(suite_factory, tmp_path, nginx_game):
    """A new probe list (changed path and port) while the plugin runs: the plugin's own earlier
    values still on the pod are not another writer's; it keeps writing."""
    def probes(path, port):
        return [probe("idle", {"httpGet": {"path": path, "port": nginx_game.port}}, delay=0),
                probe("closed", {"tcpSocket": {"port": port}}, delay=0),
                probe("healthy", {"exec": {"command": ["sh", "-c", "echo ok"]}}, delay=0),
                probe("busy", {"httpGet": {"path": "/missing", "port": nginx_game.port}},
                      delay=0)]
    nginx_game.set_state("None")
    p1, p2, p3 = closed_port(), closed_port(), closed_port()
    s = start_local(suite_factory, tmp_path, probes("/state", p1))
    wait_local(s, "idle", "True", "None")
    wait_local(s, "closed", "False", f"dial tcp 127.0.0.1:{p1}: connect: connection refused")
    wait_local(s, "busy", "False", "HTTP probe failed with statuscode: 404")
    wait_local(s, "healthy", "False", None)
    for n, (path, port, state) in enumerate((("/state?a", p2, "Allocated"),
                                             ("/state?b", p3, "WaitToBeDeleted"),
                                             ("/state", p1, "None"))):
        nginx_game.set_state(state)
        replace_text(tmp_path / "podprobe", kruise_annotation(probes(path, port)))
        s.busctl("call", *SQ, "ProbeNow")
        wait_local(s, "closed", "False", f"dial tcp 127.0.0.1:{port}: connect: connection refused")
        wait_local(s, "idle", "True", state)
        # More pod reads after the change (each write is one): still the plugin's values.
        nginx_game.set_state(state + "-again")
        wait_local(s, "idle", "True", state + "-again")
        assert sq_prop(s, "Writer") == "okg-probed", sq_prop(s, "WriterReason")
    assert sq_prop(s, "Probes") == 4


@pytest.mark.parametrize("text,error", [
    ('[{"name":"x",', "not JSON: the text ends before the JSON array does"),
    ('[] trailing', "trailing data after the JSON array (offset 3)"),
    ('[}', "not JSON: "),
])
def test_bad_probe_text_says_why(suite_factory, tmp_path, nginx_game, text, error):
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", None)
    replace_text(tmp_path / "podprobe", text)
    s.busctl("call", *SQ, "ProbeNow")
    wait_for(lambda: sq_prop(s, "ProbesError").startswith(error), timeout=scaled(60),
             what=f"the refusal {error!r}")
    assert "continue" not in sq_prop(s, "ProbesError")
    assert "success" not in sq_prop(s, "ProbesError")
    assert sq_prop(s, "Probes") == 1


def test_null_probe_list_is_no_probes(suite_factory, tmp_path, nginx_game):
    """Kruise's json.Unmarshal of null gives an empty list: no probes, no error."""
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", None)
    replace_text(tmp_path / "podprobe", "null")
    s.busctl("call", *SQ, "ProbeNow")
    wait_for(lambda: sq_prop(s, "Probes") == 0, timeout=scaled(60), what="no probes")
    assert sq_prop(s, "ProbesError") == ""


@pytest.mark.parametrize("text", ["", "\n"])
def test_empty_file_is_no_probes(suite_factory, tmp_path, nginx_game, text):
    """An empty downward-API file (the pod has no annotation) is no probe list, said once."""
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", None)
    replace_text(tmp_path / "podprobe", text)
    s.busctl("call", *SQ, "ProbeNow")
    wait_for(lambda: sq_prop(s, "Probes") == 0, timeout=scaled(60), what="no probes")
    assert sq_prop(s, "Source") == "none"
    assert sq_prop(s, "SourceReason") == f"source file: {tmp_path / 'podprobe'} is empty"
    assert sq_prop(s, "ProbesError") == ""


def test_http_path_with_space_is_escaped(suite_factory, tmp_path, nginx_game):
    """Kubernetes accepts a path with a space and kubelet escapes it: so does the plugin."""
    (nginx_game.docroot / "my state").write_text("spaced")
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/my state", "port": nginx_game.port}}, delay=0),
        probe("pct", {"httpGet": {"path": "/my%20state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", "spaced")
    wait_probe(s, 1, "True", "spaced")
    assert probe_prop(s, 0, "Target").endswith("/my%20state")


def test_tcp_host_name_is_resolved(suite_factory, tmp_path, nginx_game):
    """tcpSocket with a host name: dialled as kubelet does, True/False with the dial error;
    a name that does not resolve gives False with the lookup error."""
    port = closed_port()
    s = start_local(suite_factory, tmp_path, [
        probe("open", {"tcpSocket": {"host": "localhost", "port": nginx_game.port}}, delay=0),
        probe("closed", {"tcpSocket": {"host": "localhost", "port": port}}, delay=0),
        probe("nosuch", {"tcpSocket": {"host": "nosuch.invalid", "port": port}}, delay=0)])
    wait_probe(s, 0, "True", "")
    wait_probe(s, 1, "False")
    assert "connection refused" in probe_prop(s, 1, "Message")
    wait_probe(s, 2, "False")
    assert "lookup nosuch.invalid" in probe_prop(s, 2, "Message")


def test_check_config(tmp_path):
    """okg-sidecard --check-config takes the entry without a config and refuses bad keys with
    FILE:LINE:COLUMN: KEY: messages, every one of them; okg-probed refuses the same file."""
    good = tmp_path / "good.yaml"
    good.write_text("plugins:\n  - name: service_quality\n")
    r = subprocess.run([SIDECARD, "--check-config", str(good)], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("plugins:\n  - name: service_quality\n    config:\n      source: kubelet\n"
                   "      file: podinfo/podprobe\n      enable: true\n")
    r = subprocess.run([SIDECARD, "--check-config", str(bad)], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 3
    lines = [line for line in r.stderr.splitlines() if line.startswith(str(bad))]
    assert lines == [
        f"{bad}:4:15: plugins[0].config.source: invalid source \"kubelet\" "
        "(expected auto, annotation, file or podprobemarker)",
        f"{bad}:5:13: plugins[0].config.file: must be an absolute path, got \"podinfo/podprobe\"",
        f"{bad}:6:7: plugins[0].config: unknown key \"enable\" (did you mean \"enabled\"?)",
    ], r.stderr
    r = subprocess.run([os.path.join(BUILD, "okg-probed", "okg-probed"), "--config", str(bad),
                        "--plugin", "service_quality"], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 3 and "(expected auto, annotation, file or podprobemarker)" in r.stderr


# ---- a real kube-apiserver ----

from kube import AuditLog, kube  # noqa: E402,F401


class KubePod:
    """A namespace with deploy/rbac.yaml and a pod carrying the annotation exactly as Kruise's
    webhook writes it; kubelet's part (podIP, containerStatuses) is written by the admin."""

    def __init__(self, kube, tmp_path, probes, share_pid=True, name="game-0", game_port=80):
        self.kube = kube
        self.ns, _ = kube.sidecar_namespace("sq")
        self.name = name
        spec = {"shareProcessNamespace": share_pid, "containers": [
            {"name": "game", "image": "nginx:stable",
             "ports": [{"name": "http", "containerPort": game_port}]},
            {"name": "sidecar", "image": "okg-sidecar:test"}]}
        self.annotation = kruise_annotation(probes)
        kube.admin.create_pod(self.ns, name, annotations={
            "kruise.io/podprobe": self.annotation, "kruise.io/podprobemarker-list": "game"},
            spec=spec)
        self.token_file = str(tmp_path / f"token-{name}")
        kube.admin.write_token_file(self.token_file, self.ns)
        self.kubeconfig = kube.write_kubeconfig(str(tmp_path / f"kubeconfig-{name}"), self.ns,
                                                token_file=self.token_file)
        self.env = {"KUBECONFIG": self.kubeconfig, "POD_NAME": name, "POD_NAMESPACE": self.ns}
        self.path = kube.admin.pod_path(self.ns, name)

    def kubelet_status(self, game_id, started="2020-01-01T00:00:00Z"):
        """What kubelet would report: the pod IP (loopback: the game listens there) and both
        containers running since `started`."""
        def cs(name, cid):
            return {"name": name, "containerID": f"containerd://{cid}", "ready": True,
                    "restartCount": 0, "image": "x", "imageID": "",
                    "state": {"running": {"startedAt": started}}}
        self.kube.admin.check(self.kube.admin.patch(self.path + "/status", {"status": {
            "phase": "Running", "podIP": "127.0.0.1",
            "containerStatuses": [cs("game", game_id), cs("sidecar", "f" * 64)]}},
            kind="merge"), what="kubelet's status")

    def get(self):
        status, body = self.kube.admin.get(self.path)
        assert status == 200
        return body

    def conditions(self):
        return {c["type"]: c for c in self.get()["status"].get("conditions") or []}

    def condition(self, name):
        return self.conditions().get(f"game.kruise.io/{name}")

    def rv(self):
        return self.get()["metadata"]["resourceVersion"]


def start_kube(suite_factory, pod, config=""):
    text = make_config(free_port(), []).replace("plugins:\n", "plugins:\n" + sq_plugin(config))
    return start_suite(suite_factory, text, pod.env)


def wait_condition(pod, name, status, message, what=None):
    def ok():
        c = pod.condition(name)
        return c and c["status"] == status and c.get("message", "") == message
    wait_for(ok, what=what or f"condition {name} {status} {message!r}")


def test_kube_annotation_drives_conditions(kube, suite_factory, tmp_path, nginx_game):
    """The annotation as Kruise writes it, an empty plugin config: nginx's page drives
    game.kruise.io/idle through several messages and False; a closed port gives False; other
    writers' conditions survive; a steady state writes nothing."""
    port = closed_port()
    pod = KubePod(kube, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port, "scheme": "HTTP"}},
              delay=10, timeout=5, period=1, success=1, failure=3),
        probe("closed", {"tcpSocket": {"port": port}}, delay=1, period=1, failure=1)])
    pod.kubelet_status("a" * 64)
    kube.admin.check(kube.admin.patch(pod.path + "/status", {"status": {"conditions": [
        {"type": "Ready", "status": "True"}]}}, kind="strategic"), what="Ready")
    s = start_kube(suite_factory, pod)

    wait_for(lambda: sq_prop(s, "Source") == "annotation", what="the annotation as source")
    assert "kruise.io/podprobe" in sq_prop(s, "SourceReason")
    nginx_game.set_state("None")
    wait_condition(pod, "idle", "True", "None")
    wait_condition(pod, "closed", "False",
                   f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    for state in ("Allocated", "WaitToBeDeleted"):
        nginx_game.set_state(state)
        wait_condition(pod, "idle", "True", state)
    os.unlink(nginx_game.docroot / "state")
    wait_condition(pod, "idle", "False", "HTTP probe failed with statuscode: 404")
    c = pod.conditions()
    assert c["Ready"]["status"] == "True"                   # someone else's: untouched
    assert "reason" not in c["game.kruise.io/idle"]
    nginx_game.set_state("None")
    wait_condition(pod, "idle", "True", "None")

    # Steady state: several periods of probes, not one pod write.
    wait_for(lambda: s.busctl("get-property", "io.kruise.game.Storage1",
                              "/io/kruise/game/Storage1", "io.kruise.game.Storage1", "Pending",
                              json_out=True)["data"] == 0, what="storaged idle")
    rv = pod.rv()
    n = probe_prop(s, 0, "Probes")
    wait_for(lambda: probe_prop(s, 0, "Probes") >= n + 5, what="five more probes")
    assert pod.rv() == rv
    assert sq_prop(s, "Writer") == "okg-probed"


@pytest.fixture
def game_container():
    """A container ID whose "container" is a process the test puts in a cgroup named by that
    ID (as a runtime names its cgroups): the plugin's exec finds it in /proc/PID/cgroup."""
    cid = os.urandom(32).hex()
    cg = f"/sys/fs/cgroup/pids/{cid}"
    try:
        os.mkdir(cg)
    except OSError as e:
        pytest.skip(f"cannot make a cgroup to stand for a container: {e}")
    game = subprocess.Popen(["sleep", "600"])
    try:
        with open(f"{cg}/cgroup.procs", "w") as f:
            f.write(str(game.pid))
        yield cid
    finally:
        game.kill()
        game.wait()
        try:
            os.rmdir(cg)
        except OSError:
            pass


def test_kube_exec_probe_in_the_game_container(kube, suite_factory, tmp_path, game_container):
    """exec runs in the game container's file system (found by its container ID in
    /proc/PID/cgroup; here a process the test puts in a cgroup named by that ID): stdout on
    exit 0, stderr otherwise."""
    cid = game_container
    state = tmp_path / "exec-state"

    def set_state(text):
        # Replaced whole (rename), never truncated then written: a probe running between the
        # two would read an empty or half-written state and report it.
        tmp = tmp_path / "exec-state.new"
        tmp.write_text(text)
        os.replace(tmp, state)

    set_state("ready")
    script = (f"if grep -q hang {state}; then sleep 60; fi; "
              f"if [ -s {state} ]; then cat {state}; else echo broken >&2; exit 1; fi")
    pod = KubePod(kube, tmp_path, [probe("healthy", {"exec": {"command": ["sh", "-c", script]}},
                                         delay=1, period=1, failure=1)])
    pod.kubelet_status(cid)
    s = start_kube(suite_factory, pod)
    wait_condition(pod, "healthy", "True", "ready")
    set_state("")
    wait_condition(pod, "healthy", "False", "broken\n")
    set_state("ready again")
    wait_condition(pod, "healthy", "True", "ready again")
    assert probe_prop(s, 0, "Handler") == "exec"
    # A command that outlives timeoutSeconds (absent: 1) gives no result, as in Kruise:
    # the condition stays, the probe says why, the command is killed.
    set_state("hang")
    wait_for(lambda: probe_prop(s, 0, "LastError") == "command timed out after 1s",
             what="the timeout on the bus")
    assert pod.condition("healthy")["message"] == "ready again"
    set_state("ready")
    wait_condition(pod, "healthy", "True", "ready")


def test_kube_exec_without_shared_process_namespace_is_false(kube, suite_factory, tmp_path):
    pod = KubePod(kube, tmp_path, [probe("healthy", {"exec": {"command": ["true"]}}, delay=1,
                                         failure=1)], share_pid=False)
    pod.kubelet_status("b" * 64)
    start_kube(suite_factory, pod)
    wait_for(lambda: (pod.condition("healthy") or {}).get("status") == "False",
             what="False for exec")
    assert "shareProcessNamespace" in pod.condition("healthy")["message"]


def test_kube_other_writer_is_not_fought(kube, suite_factory, tmp_path, nginx_game):
    """kruise-daemon writing the same condition (here: the admin, twice, with values the plugin
    never wrote): the plugin stops writing and says why; the other writer's value stays."""
    pod = KubePod(kube, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": "http"}}, delay=1, period=1)],
        game_port=nginx_game.port)     # the named port resolves through the pod spec
    pod.kubelet_status("c" * 64)
    s = start_kube(suite_factory, pod)
    wait_condition(pod, "idle", "True", "None")
    for msg in ("from kruise-daemon", "from kruise-daemon again"):
        kube.admin.check(kube.admin.patch(pod.path + "/status", {"status": {"conditions": [
            {"type": "game.kruise.io/idle", "status": "False", "message": msg}]}},
            kind="strategic"), what="the other writer")
        wait_condition(pod, "idle", "False", msg)
    wait_for(lambda: sq_prop(s, "Writer") == "kruise-daemon", what="the plugin yields")
    assert "did not write" in sq_prop(s, "WriterReason")
    # The game's answer changes: the plugin sees it but hands nothing to okg-storaged.
    writes = sq_prop(s, "ConditionWrites")
    nginx_game.set_state("Allocated")
    wait_probe(s, 0, "True", "Allocated")
    n = probe_prop(s, 0, "Probes")
    wait_for(lambda: probe_prop(s, 0, "Probes") >= n + 3, what="more probes")
    assert sq_prop(s, "ConditionWrites") == writes
    # okg-storaged leaves the other writer's value alone too: nobody writes back over it.
    assert pod.condition("idle")["message"] == "from kruise-daemon again"


def test_kube_wiped_condition_comes_back(kube, suite_factory, tmp_path):
    """A provider that replaces the whole pod status wipes the condition: okg-storaged writes it
    again (the plugin's value), and the plugin does not count the wipe as another writer."""
    port = closed_port()
    pod = KubePod(kube, tmp_path, [probe("closed", {"tcpSocket": {"port": port}}, delay=1,
                                         failure=1)])
    pod.kubelet_status("d" * 64)
    s = start_kube(suite_factory, pod)
    msg = f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    wait_condition(pod, "closed", "False", msg)
    body = pod.get()
    body["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    kube.admin.check(kube.admin.put(pod.path + "/status", body), what="a status replace")
    wait_condition(pod, "closed", "False", msg, what="the condition written again")
    assert pod.conditions()["Ready"]["status"] == "True"
    assert sq_prop(s, "Writer") == "okg-probed"


def test_kube_probe_list_change_is_no_other_writer(kube, suite_factory, tmp_path, nginx_game):
    """The tryout's case against the API server: four probes, then the annotation changes
    idle's path and the tcpSocket port while the plugin runs. The plugin's own earlier values
    are no other writer's: it keeps writing the new results."""
    def probes(path, port):
        return [probe("idle", {"httpGet": {"path": path, "port": "http"}}, delay=1),
                probe("closed", {"tcpSocket": {"port": port}}, delay=1),
                probe("healthy", {"exec": {"command": ["sh", "-c", "echo ok"]}}, delay=1),
                probe("busy", {"httpGet": {"path": "/missing", "port": "http"}}, delay=1)]
    p1, p2 = closed_port(), closed_port()
    pod = KubePod(kube, tmp_path, probes("/state", p1), share_pid=False,
                  game_port=nginx_game.port)
    pod.kubelet_status("e" * 64)
    s = start_kube(suite_factory, pod)
    wait_condition(pod, "idle", "True", "None")
    wait_condition(pod, "closed", "False", f"dial tcp 127.0.0.1:{p1}: connect: connection refused")
    wait_condition(pod, "busy", "False", "HTTP probe failed with statuscode: 404")
    nginx_game.set_state("Allocated")
    kube.admin.check(kube.admin.patch(pod.path, {"metadata": {"annotations": {
        "kruise.io/podprobe": kruise_annotation(probes("/state?v=2", p2))}}}, kind="merge"),
        what="the new probe list")
    wait_condition(pod, "closed", "False", f"dial tcp 127.0.0.1:{p2}: connect: connection refused")
    wait_condition(pod, "idle", "True", "Allocated")
    for state in ("WaitToBeDeleted", "None", "Allocated"):     # more pod reads, one per write
        nginx_game.set_state(state)
        wait_condition(pod, "idle", "True", state)
    assert sq_prop(s, "Writer") == "okg-probed", sq_prop(s, "WriterReason")


# ---- the tryout's faults (issue 12: FB, FC, FF, FG, FI) ----

def start_local_pod(suite_factory, tmp_path, probes, containers, statuses):
    """A local run whose store already holds the pod (spec and kubelet's statuses), as
    okg-storaged hands it out; the probes come from the file."""
    ann = tmp_path / "podprobe"
    ann.write_text(kruise_annotation(probes))
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "local-store.json").write_text(json.dumps({"pods": {f"{NAMESPACE}/{POD}": {
        "metadata": {"name": POD, "namespace": NAMESPACE, "resourceVersion": "1"},
        "spec": {"shareProcessNamespace": True, "containers": containers},
        "status": {"podIP": "127.0.0.1", "containerStatuses": statuses}}}}))
    text = make_config(free_port(), []).replace("plugins:\n", "plugins:\n" + sq_plugin(
        f"source: file\nfile: {ann}"))
    return start_suite(suite_factory, text)


def running(name, cid):
    return {"name": name, "containerID": f"containerd://{cid}",
            "state": {"running": {"startedAt": "2020-01-01T00:00:00Z"}}}


def test_exec_probe_with_much_output(suite_factory, tmp_path, game_container):
    """An exec probe that prints more than a pipe holds (5 MB on stdout, 200 KB on stderr with
    exit 0): the command's own stdout and stderr block as usual (only the plugin's read ends
    are non-blocking), so it succeeds with the first 1024 bytes."""
    cid = game_container
    s = start_local_pod(suite_factory, tmp_path, [
        probe("big", {"exec": {"command": ["sh", "-c", "yes | head -c 5000000"]}},
              delay=1, timeout=30),
        probe("noisy", {"exec": {"command": [
            "sh", "-c", "head -c 200000 /dev/zero | tr '\\0' e >&2; echo done"]}},
            delay=1, timeout=30)],
        [{"name": "game"}], [running("game", cid)])
    wait_probe(s, 0, "True", "y\n" * 512, what="the big output's first 1024 bytes")
    wait_probe(s, 1, "True", "done\n")


def test_missing_container_says_why(suite_factory, tmp_path, nginx_game):
    """A containerName the pod does not have: no result (Unknown, as Kruise leaves it), and
    LastError says why and which containers there are; the other probe runs."""
    s = start_local_pod(suite_factory, tmp_path, [
        probe("typo", {"httpGet": {"path": "/state", "port": nginx_game.port}}, container="gmae",
              delay=0),
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)],
        [{"name": "game"}, {"name": "sidecar"}],
        [running("game", "a" * 64), running("sidecar", "b" * 64)])
    wait_probe(s, 1, "True", "None")
    wait_for(lambda: probe_prop(s, 0, "LastError") ==
             "container gmae is not in the pod (containers: game, sidecar)",
             what="why the probe does not run")
    assert probe_prop(s, 0, "Status") == "Unknown"
    out = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address,
                          "service-quality"], capture_output=True, text=True, timeout=scaled(30))
    assert "container gmae is not in the pod" in out.stdout, out.stdout


@pytest.mark.parametrize("text", ["/* c */[]", "['x']", "[] // c", "[{\"name\":\"x\",}]"])
def test_probe_text_that_only_json_c_reads_is_refused(suite_factory, tmp_path, nginx_game,
                                                      text):
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", None)
    replace_text(tmp_path / "podprobe", text)
    s.busctl("call", *SQ, "ProbeNow")
    wait_for(lambda: sq_prop(s, "ProbesError").startswith("not JSON: "), timeout=scaled(60),
             what=f"the refusal of {text!r}")
    assert sq_prop(s, "Probes") == 1


@pytest.mark.parametrize("value", ["", " "])
def test_empty_annotation_is_no_probes(suite_factory, tmp_path, value):
    """An empty annotation value is what an empty downward-API file is: no probe list, said in
    one line in SourceReason, no ProbesError."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "local-store.json").write_text(json.dumps({"pods": {f"{NAMESPACE}/{POD}": {
        "metadata": {"name": POD, "namespace": NAMESPACE, "resourceVersion": "1",
                     "annotations": {"kruise.io/podprobe": value}}}}}))
    text = make_config(free_port(), []).replace("plugins:\n", "plugins:\n" + sq_plugin(
        "source: annotation"))
    s = start_suite(suite_factory, text)
    wait_for(lambda: sq_prop(s, "SourceReason") ==
             "source annotation: the pod's kruise.io/podprobe annotation is empty",
             what="the empty annotation on the bus")
    assert sq_prop(s, "Source") == "none"
    assert sq_prop(s, "ProbesError") == ""


class RedirectingGame:
    """nginx with redirects: to its own page (relative and absolute, same host name), a loop,
    to another host name (localhost, 127.0.0.2) for the same server."""

    def __init__(self, base):
        from probe_helpers import NginxGame
        self.game = NginxGame(base)
        conf = self.game.dir / "nginx.conf"
        port = self.game.port
        text = conf.read_text().replace(f"listen 127.0.0.1:{port};", f"listen {port};").replace(
            "location / { }", f"""location / {{ }}
        location = /moved {{ return 302 /state; }}
        location = /moved-abs {{ return 301 http://127.0.0.1:{port}/hop; }}
        location = /hop {{ return 307 /state; }}
        location = /loop {{ return 302 /loop; }}
        location = /elsewhere {{ return 302 http://localhost:{port}/state; }}
        location = /other-ip {{ return 302 http://127.0.0.2:{port}/state; }}
        location = /not-modified {{ return 304; }}""")
        conf.write_text(text)
        self.port = port

    def __enter__(self):
        self.game.start()
        return self.game

    def __exit__(self, *exc):
        self.game.stop()


def test_http_redirects_to_nginx(suite_factory, tmp_path):
    """kubelet's rule (Kruise's prober does not follow redirects to other hosts): a redirect to
    the same host name is followed, up to 10, and the final page is the result; a loop fails
    with Go's error; a redirect to another host name (localhost, 127.0.0.2 for 127.0.0.1) is
    not followed: a success with "Probe terminated redirects, Response body: ..."."""
    with RedirectingGame(tmp_path / "r") as game:
        game.set_state("None")
        port = game.port
        paths = ["/moved", "/moved-abs", "/loop", "/elsewhere", "/other-ip", "/not-modified"]
        # The loop is probed once (its next probe is an hour away; one failure is False), so
        # its requests can be counted whole: not while a probe is half-way through it.
        s = start_local(suite_factory, tmp_path, [
            probe(f"p{i}", {"httpGet": {"path": p, "port": port}}, delay=0, timeout=10,
                  **({"period": 3600, "failure": 1} if p == "/loop" else {}))
            for i, p in enumerate(paths)])
        wait_probe(s, 0, "True", "None")
        wait_probe(s, 1, "True", "None")
        # nginx makes the Location absolute; Go's error names it as given.
        wait_probe(s, 2, "False", f'Get "http://127.0.0.1:{port}/loop": stopped after 10 redirects')
        wait_probe(s, 3, "True")
        assert probe_prop(s, 3, "Message").startswith(
            "Probe terminated redirects, Response body: <html>")
        assert "302 Found" in probe_prop(s, 3, "Message")
        wait_probe(s, 4, "True")
        assert probe_prop(s, 4, "Message").startswith("Probe terminated redirects, Response body:")
        wait_probe(s, 5, "True", "Probe terminated redirects, Response body: ")
        # Ten requests for the loop, none to the other host names. nginx logs a request after
        # its answer: the last one may reach the log after the result reached the bus.
        def loops():
            return sum(1 for line in game.requests() if '"GET /loop ' in line)
        wait_for(lambda: loops() >= 10, what="the loop's requests in the access log")
        assert probe_prop(s, 2, "Probes") == 1
        assert loops() == 10
        assert not any(line.startswith("127.0.0.2") for line in game.requests())


def test_okgctl_service_quality_table_and_arguments(suite_factory, tmp_path, nginx_game):
    """A long message is cut in the table (one line per probe, columns aligned), whole with
    --json; an extra argument is refused with a plain sentence."""
    long = "x" * 300
    nginx_game.set_state(long)
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0),
        probe("open", {"tcpSocket": {"port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", long)
    wait_probe(s, 1, "True", "")
    okgctl = os.path.join(BUILD, "okgctl", "okgctl")
    out = subprocess.run([okgctl, "-a", s.bus_address, "service-quality"], capture_output=True,
                         text=True, timeout=scaled(30))
    lines = out.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("PROBE"))
    rows = lines[head + 1:]
    assert len(rows) == 2
    col = lines[head].index("LAST ERROR")
    assert all(len(r.rstrip()) <= col for r in rows), rows
    assert "x" * 27 + "..." in rows[0]
    assert "PODPROBEMARKER" not in out.stdout   # the pod names no markers
    out = subprocess.run([okgctl, "-a", s.bus_address, "--json", "service-quality"],
                         capture_output=True, text=True, timeout=scaled(30))
    assert json.loads(out.stdout)["probes"][0]["message"] == long
    assert json.loads(out.stdout)["podProbeMarkers"] == []
    out = subprocess.run([okgctl, "-a", s.bus_address, "service-quality", "extra"],
                         capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 2
    assert "'service-quality' takes no arguments, got 1" in out.stderr, out.stderr
    out = subprocess.run([okgctl, "-a", s.bus_address, "hot-update", "1", "2", "3", "4", "5"],
                         capture_output=True, text=True, timeout=scaled(30))
    assert "'hot-update' takes at most 4 arguments, got 5" in out.stderr, out.stderr


# ---- a lagging write path is no other writer (FA) ----

class CounterGame:
    """A game whose answer changes at every probe (a player count): GET /counter answers
    "players N", N one more each time, until frozen."""

    def __init__(self):
        import http.server
        import threading
        game = self
        self.n = 0
        self.frozen = False

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if not game.frozen:
                    game.n += 1
                b = f"players {game.n}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

        self.server = QuietHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def freeze(self):
        self.frozen = True
        return f"players {self.n}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counter_game():
    g = CounterGame()
    yield g
    g.close()


def lag_then_settle(s, game, condition, lag):
    """The message changes every period; lag() holds the write path back for more than
    SQ_HISTORY (4) periods of changes; then the latest value must reach the pod
    (condition() reads it) and the plugin must still be the writer."""
    writes = sq_prop(s, "ConditionWrites")
    wait_for(lambda: sq_prop(s, "ConditionWrites") >= writes + 3, what="changes handed on")
    with lag():
        writes = sq_prop(s, "ConditionWrites")
        wait_for(lambda: sq_prop(s, "ConditionWrites") >= writes + 8,
                 timeout=scaled(120), what="eight changes handed on while the writes lag")
    # Several pod reads after the lag while the message goes on changing.
    writes = sq_prop(s, "ConditionWrites")
    wait_for(lambda: sq_prop(s, "ConditionWrites") >= writes + 4 or
             sq_prop(s, "Writer") != "okg-probed", timeout=scaled(120),
             what="more changes after the lag")
    last = game.freeze()
    wait_for(lambda: (condition() or {}).get("message") == last or
             sq_prop(s, "Writer") != "okg-probed", timeout=scaled(120),
             what=f"the latest value {last!r} on the pod")
    assert sq_prop(s, "Writer") == "okg-probed", sq_prop(s, "WriterReason")
    assert (condition() or {}).get("message") == last
    assert "did not write" not in sq_prop(s, "WriterReason")


@pytest.mark.parametrize("how", ["stopped", "restarted"])
def test_lagging_storaged_is_no_other_writer(suite_factory, tmp_path, counter_game, how):
    """The tryout's case: okg-storaged stopped (SIGSTOP) for more than four periods while the
    message changes every period; then it goes on (SIGCONT), or is killed and started again
    (its journal replayed). The plugin's own older values on the pod are not another writer's:
    the latest value reaches the store and the plugin goes on writing."""
    import contextlib
    import signal
    s = start_local(suite_factory, tmp_path, [
        probe("counter", {"httpGet": {"path": "/counter", "port": counter_game.port}},
              delay=0, period=1, timeout=1)])
    wait_local(s, "counter", "True", None)

    @contextlib.contextmanager
    def storaged_stopped():
        pid = s.pid("storage")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            if how == "stopped":
                os.kill(pid, signal.SIGCONT)
            else:
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid) and
                         s.units()["storage"]["ready"], what="okg-storaged started again")

    lag_then_settle(s, counter_game,
                    lambda: local_conditions(s).get("game.kruise.io/counter"), storaged_stopped)



def test_kube_apiserver_outage_is_no_other_writer(kube, suite_factory, tmp_path, counter_game):
    """The same against the API server: it is away (stopped) for more than four periods while
    the message changes every period. okg-storaged keeps the writes and sends them when it is
    back; the plugin's own older values on the pod are not another writer's."""
    import contextlib
    from kube import start_apiserver, stop_apiserver
    pod = KubePod(kube, tmp_path, [
        probe("counter", {"httpGet": {"path": "/counter", "port": counter_game.port}},
              delay=1, period=1, timeout=1)])
    pod.kubelet_status("9" * 64)
    s = start_kube(suite_factory, pod)
    wait_for(lambda: (pod.condition("counter") or {}).get("status") == "True",
             what="the first value")

    @contextlib.contextmanager
    def outage():
        stop_apiserver()
        try:
            yield
        finally:
            start_apiserver()

    lag_then_settle(s, counter_game, lambda: pod.condition("counter"), outage)
    # The other writer test (test_kube_other_writer_is_not_fought) still sees a real one.


def test_same_probe_name_twice_gives_distinct_series(suite_factory, tmp_path, nginx_game):
    """Two PodProbeMarkers selecting one pod may name their probes alike, with different
    condition types: the per-probe series of /metrics carry the condition too, so no series is
    there twice (a valid exposition)."""
    import urllib.request
    a = probe("idle", {"tcpSocket": {"port": nginx_game.port}}, delay=0)
    b = dict(probe("idle", {"tcpSocket": {"port": nginx_game.port}}, delay=0),
             podConditionType="game.kruise.io/other")
    s = start_local(suite_factory, tmp_path, [a, b])
    wait_probe(s, 0, "True", "")
    wait_probe(s, 1, "True", "")
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics",
                                  timeout=scaled(10)).read().decode()
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines()
              if line.startswith("okg_sidecar_service_quality_")]
    assert len(series) == len(set(series)), sorted(series)
    for family in ("probes_total", "probe_failures_total"):
        for cond in ("game.kruise.io/idle", "game.kruise.io/other"):
            assert (f'okg_sidecar_service_quality_{family}{{probe="idle",condition="{cond}"}}'
                    in series)


# Failure messages as Kruise's daemon writes them (Go's net/http texts, docs/service-quality.md
# "Messages"), against loopback peers that fail in each way.

class _Peer:
    """A loopback TCP server whose handler does one thing to each connection: one after the
    other, or each in its own thread (threaded: a handler that holds its connection does not
    keep the next one waiting)."""

    def __init__(self, handler, backlog=16, threaded=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.threaded = threaded
        if handler:
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.threaded:
                threading.Thread(target=self._one, args=(c,), daemon=True).start()
            else:
                self._one(c)

    def _one(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def _go_nameserver():
    """The server Go's pure resolver names in a lookup error: the first of resolv.conf."""
    try:
        for line in open("/etc/resolv.conf"):
            f = line.split()
            if len(f) >= 2 and f[0] == "nameserver":
                return f"[{f[1]}]:53" if ":" in f[1] else f"{f[1]}:53"
    except OSError:
        pass
    return "127.0.0.1:53"


def test_http_failure_messages_are_gos(suite_factory, tmp_path):
    """httpGet failures give Go's client texts: refused, no answer within the timeout, closed
    without an answer, a host name that does not resolve."""
    refused = closed_port()
    silent = _Peer(None)             # the kernel accepts; nobody ever answers

    def read_then_close(c):
        c.recv(4096)
    closer = _Peer(read_then_close)
    try:
        s = start_local(suite_factory, tmp_path, [
            probe("refused", {"httpGet": {"path": "/x", "port": refused}}, delay=0),
            probe("silent", {"httpGet": {"path": "/x", "port": silent.port}}, delay=0,
                  timeout=1),
            probe("empty", {"httpGet": {"path": "/", "port": closer.port}}, delay=0),
            probe("nosuch", {"httpGet": {"host": "nosuch.invalid", "path": "/x",
                                         "port": refused}}, delay=0)])
        wait_probe(s, 0, "False", f'Get "http://127.0.0.1:{refused}/x": dial tcp '
                   f'127.0.0.1:{refused}: connect: connection refused')
        wait_probe(s, 1, "False", f'Get "http://127.0.0.1:{silent.port}/x": context deadline '
                   'exceeded (Client.Timeout exceeded while awaiting headers)')
        wait_probe(s, 2, "False", f'Get "http://127.0.0.1:{closer.port}/": EOF')
        wait_probe(s, 3, "False", f'Get "http://nosuch.invalid:{refused}/x": dial tcp: lookup '
                   f'nosuch.invalid on {_go_nameserver()}: no such host')
    finally:
        silent.close()
        closer.close()


def test_connect_timeout_messages_are_gos(suite_factory, tmp_path):
    """A listener whose backlog is full drops new connections: the dial times out, for
    tcpSocket and httpGet, with Go's texts."""
    full = _Peer(None, backlog=0)
    fill = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", full.port))
        except BlockingIOError:
            pass
        fill.append(c)
    try:
        s = start_local(suite_factory, tmp_path, [
            probe("tcp", {"tcpSocket": {"port": full.port}}, delay=0, timeout=1),
            probe("http", {"httpGet": {"path": "/", "port": full.port}}, delay=0, timeout=1)])
        wait_probe(s, 0, "False", f"dial tcp 127.0.0.1:{full.port}: i/o timeout")
        wait_probe(s, 1, "False", f'Get "http://127.0.0.1:{full.port}/": dial tcp '
                   f'127.0.0.1:{full.port}: i/o timeout (Client.Timeout exceeded while '
                   'awaiting headers)')
    finally:
        for c in fill:
            c.close()
        full.close()


def test_http_redirects_as_kubelet(suite_factory, tmp_path):
    """kubelet follows a redirect to the same host (the target's body is the message) and stops
    at one to another host: a success with its warning text."""
    def redirector(c):
        req = c.recv(4096)
        if b"GET /there " in req:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nthere!")
        elif b"GET /away " in req:
            c.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://localhost:1/\r\n"
                      b"Content-Length: 5\r\nConnection: close\r\n\r\nmoved")
        else:
            c.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /there\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
    peer = _Peer(redirector)
    try:
        s = start_local(suite_factory, tmp_path, [
            probe("same", {"httpGet": {"path": "/here", "port": peer.port}}, delay=0),
            probe("other", {"httpGet": {"path": "/away", "port": peer.port}}, delay=0)])
        wait_probe(s, 0, "True", "there!")
        wait_probe(s, 1, "True", "Probe terminated redirects, Response body: moved")
    finally:
        peer.close()


def test_silent_answer_on_kept_alive_connection_is_one_message(suite_factory, tmp_path):
    """Connections are kept alive between probes, and a transfer may take the idle connection
    another probe of the same server left: a server that never answers one path still gives
    the 'context deadline exceeded' text (not a dial timeout) every period, so the condition
    is written once."""
    import threading

    def keepalive(c):
        # Answers /fast at once on a kept-alive connection; never answers anything else.
        buf = b""
        while True:
            data = c.recv(4096)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                req, buf = buf.split(b"\r\n\r\n", 1)
                if not req.startswith(b"GET /fast "):
                    threading.Event().wait(scaled(60))
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    peer = _Peer(keepalive, threaded=True)
    try:
        s = start_local(suite_factory, tmp_path, [
            probe("fast", {"httpGet": {"path": "/fast", "port": peer.port}}, delay=0),
            probe("silent", {"httpGet": {"path": "/slow", "port": peer.port}}, delay=0,
                  period=1, timeout=1)])
        want = (f'Get "http://127.0.0.1:{peer.port}/slow": context deadline exceeded '
                '(Client.Timeout exceeded while awaiting headers)')
        wait_probe(s, 0, "True", "ok")
        wait_probe(s, 1, "False", want)
        writes = probe_prop(s, 1, "Writes")
        n = probe_prop(s, 1, "Probes")
        seen = set()

        def more():
            seen.add(probe_prop(s, 1, "Message"))
            return probe_prop(s, 1, "Probes") >= n + 8
        wait_for(more, timeout=scaled(120), what="eight more probes")
        assert seen == {want}
        assert probe_prop(s, 1, "Writes") == writes
    finally:
        peer.close()
