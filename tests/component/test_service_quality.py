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

import pytest

from conftest import BUILD, free_port, make_config, scaled, wait_for
from probe_helpers import NAMESPACE, POD, nginx_game, start_suite

assert nginx_game   # fixture, used by name

SQ = ("io.kruise.game.ServiceQuality1", "/io/kruise/game/ServiceQuality1",
      "io.kruise.game.ServiceQuality1")
PROBE_IFACE = "io.kruise.game.ServiceQuality1.Probe"


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
    assert 'okg_service_quality_info{source="file"' in text
    assert ('okg_service_quality_condition{probe="closed",condition="game.kruise.io/closed"} 0'
            in text)
    assert ('okg_service_quality_condition{probe="open",condition="game.kruise.io/open"} 1'
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


def test_bad_annotation_is_refused_and_changes_nothing(suite_factory, tmp_path, nginx_game):
    """A refused probe list says why on the bus and keeps the probes that ran."""
    s = start_local(suite_factory, tmp_path, [
        probe("idle", {"httpGet": {"path": "/state", "port": nginx_game.port}}, delay=0)])
    wait_probe(s, 0, "True", "None")
    (tmp_path / "podprobe").write_text('[{"name":"x"}]')
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
