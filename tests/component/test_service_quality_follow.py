"""The service_quality plugin follows the PodProbeMarkers its pod names
(kruise.io/podprobemarker-list): an edit of the marker (what OKG does when a GameServerSet's
serviceQualities change) reaches the running pod, a deleted or unreadable marker falls back to
the kruise.io/podprobe annotation with the reason on the bus, and a steady state costs no pod
write and no marker read. Against a real kube-apiserver with Kruise's published PodProbeMarker
CRD installed, and with the local store (a file per marker)."""
import json
import os
import subprocess
import urllib.request

from conftest import BUILD, free_port, make_config, scaled, wait_for
from kube import sa_username
from probe_helpers import NAMESPACE, POD, nginx_game, start_suite
from test_service_quality import (KubePod, kruise_annotation, probe, probe_prop, sq_plugin,
                                  sq_prop, start_kube, wait_condition, wait_probe)
from test_service_quality_consumer import okg_kube

assert nginx_game and okg_kube   # fixtures, used by name

PPM_API = "/apis/apps.kruise.io/v1alpha1/namespaces/{ns}/podprobemarkers"
STORAGE = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")
LABELS = {"game.kruise.io/owner-gss": "game"}


def marker(name, probes, selector=None):
    """A PodProbeMarker as OKG makes one per GameServerSet (same name)."""
    return {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "PodProbeMarker",
            "metadata": {"name": name},
            "spec": {"selector": selector or {"matchLabels": dict(LABELS)}, "probes": probes}}


def idle_probe(port, path="/state"):
    return probe("idle", {"httpGet": {"path": path, "port": port}}, delay=1, period=1)


class MarkedPod(KubePod):
    """KubePod with the labels the marker selects, and the marker itself, created first as
    Kruise's webhook needs it (the annotations are what the webhook wrote from it)."""

    def __init__(self, kube, tmp_path, probes, rbac=None):
        self.kube = kube
        self.ns, _ = kube.sidecar_namespace("sqf")
        if rbac:
            rbac(kube, self.ns)
        self.name = "game-0"
        self.ppm_path = PPM_API.format(ns=self.ns) + "/game"
        kube.admin.check(kube.admin.post(PPM_API.format(ns=self.ns), marker("game", probes)),
                         201, what="the PodProbeMarker")
        kube.admin.create_pod(self.ns, self.name, labels=LABELS, annotations={
            "kruise.io/podprobe": kruise_annotation(probes),
            "kruise.io/podprobemarker-list": "game"}, spec={"containers": [
                {"name": "game", "image": "nginx:stable"},
                {"name": "sidecar", "image": "okg-sidecar:test"}]})
        self.token_file = str(tmp_path / "token")
        kube.admin.write_token_file(self.token_file, self.ns)
        self.kubeconfig = kube.write_kubeconfig(str(tmp_path / "kubeconfig"), self.ns,
                                                token_file=self.token_file)
        self.env = {"KUBECONFIG": self.kubeconfig, "POD_NAME": self.name,
                    "POD_NAMESPACE": self.ns}
        self.path = kube.admin.pod_path(self.ns, self.name)

    def edit_probes(self, probes):
        self.kube.admin.check(self.kube.admin.patch(self.ppm_path, {"spec": {"probes": probes}},
                                                    kind="merge"), what="the marker's edit")


def storage_prop(s, name):
    return s.busctl("get-property", *STORAGE, name, json_out=True)["data"]


def metrics(s):
    return urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics",
                                  timeout=scaled(10)).read().decode()


def test_kube_marker_edit_reaches_the_running_pod(okg_kube, suite_factory, tmp_path,
                                                  nginx_game):
    kube = okg_kube
    pod = MarkedPod(kube, tmp_path, [idle_probe(nginx_game.port)])
    pod.kubelet_status("a" * 64)
    uid = pod.get()["metadata"]["uid"]
    s = start_kube(suite_factory, pod)

    wait_for(lambda: sq_prop(s, "Source") == "podprobemarker", what="the marker as source")
    assert "PodProbeMarker game" in sq_prop(s, "SourceReason")
    assert "kruise.io/podprobemarker-list" in sq_prop(s, "SourceReason")
    assert sq_prop(s, "PodProbeMarkers") == [["game", "found"]]
    wait_condition(pod, "idle", "True", "None")

    # The GameServerSet's serviceQuality changed: OKG edits the marker. The pod stays.
    pod.edit_probes([idle_probe(nginx_game.port, "/missing")])
    wait_condition(pod, "idle", "False", "HTTP probe failed with statuscode: 404")
    assert pod.get()["metadata"]["uid"] == uid
    assert probe_prop(s, 0, "Target").endswith("/missing")
    assert sq_prop(s, "Writer") == "okg-probed", sq_prop(s, "WriterReason")
    assert 'okg_sidecar_service_quality_info{source="podprobemarker"' in metrics(s)
    assert ('okg_sidecar_service_quality_podprobemarker{name="game",state="found"} 1'
            in metrics(s))

    # Steady state: probes go on, nothing is written and the marker is not read again.
    wait_for(lambda: storage_prop(s, "Pending") == 0, what="storaged idle")
    # The audit event of okg-storaged's last write comes just after its answer: let it land
    # before the mark, or it would count as a write of the steady state.
    kube.audit.settle()
    rv = pod.rv()
    mark = kube.audit.mark()
    n = probe_prop(s, 0, "Probes")
    wait_for(lambda: probe_prop(s, 0, "Probes") >= n + 5, what="five more probes")
    kube.audit.settle()
    user = sa_username(pod.ns)
    assert pod.rv() == rv
    assert kube.audit.count(mark, user=user, verb={"patch", "update", "create"}) == 0
    assert kube.audit.count(mark, user=user, resource="podprobemarkers",
                            verb={"get", "list"}) == 0

    # The marker is deleted: back to the annotation Kruise wrote at creation, saying why.
    kube.admin.check(kube.admin.delete(pod.ppm_path), 200, what="delete the marker")
    wait_for(lambda: sq_prop(s, "Source") == "annotation", what="the annotation as fallback")
    reason = sq_prop(s, "SourceReason")
    assert "PodProbeMarker game is missing" in reason and "deleted" in reason, reason
    assert "kruise.io/podprobe annotation" in reason
    assert sq_prop(s, "PodProbeMarkers") == [["game", "notfound"]]
    wait_condition(pod, "idle", "True", "None")
    assert sq_prop(s, "Writer") == "okg-probed", sq_prop(s, "WriterReason")

    # Created again (a GameServerSet back with serviceQualities): followed again, by the watch.
    kube.audit.settle()
    mark = kube.audit.mark()
    kube.admin.check(kube.admin.post(PPM_API.format(ns=pod.ns), marker(
        "game", [idle_probe(nginx_game.port, "/missing")])), 201, what="the marker again")
    wait_for(lambda: sq_prop(s, "Source") == "podprobemarker", what="the marker again")
    wait_condition(pod, "idle", "False", "HTTP probe failed with statuscode: 404")
    assert kube.audit.count(mark, user=user, resource="podprobemarkers",
                            verb={"get", "list"}) == 0


def no_marker_rights(kube, ns):
    """The Role without podprobemarkers (an older deploy/rbac.yaml)."""
    status, role = kube.admin.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/"
                                  "okg-sidecar")
    assert status == 200
    role["rules"] = [r for r in role["rules"] if "podprobemarkers" not in r["resources"]]
    kube.admin.check(kube.admin.put(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/"
                                    "okg-sidecar", role), what="the Role without markers")
    kube.admin.wait_access(ns, "okg-sidecar", "get", "podprobemarkers", group="apps.kruise.io",
                           allowed=False)


def test_kube_unreadable_marker_falls_back_without_a_storm(okg_kube, suite_factory, tmp_path,
                                                           nginx_game):
    """403 (no right to read podprobemarkers): the annotation, the refusal in SourceReason,
    and the refused read is not repeated while the plugin keeps asking okg-storaged."""
    kube = okg_kube
    pod = MarkedPod(kube, tmp_path, [idle_probe(nginx_game.port)], rbac=no_marker_rights)
    pod.kubelet_status("b" * 64)
    mark = kube.audit.mark()
    s = start_kube(suite_factory, pod)
    wait_for(lambda: sq_prop(s, "Source") == "annotation", what="the annotation")
    reason = sq_prop(s, "SourceReason")
    assert "PodProbeMarker game cannot be read" in reason and "forbidden" in reason, reason
    assert sq_prop(s, "PodProbeMarkers") == [["game", "error"]]
    wait_condition(pod, "idle", "True", "None")
    user = sa_username(pod.ns)
    assert kube.audit.wait_count(1, mark, user=user, resource="podprobemarkers") >= 1
    refused = kube.audit.count(mark, user=user, resource="podprobemarkers")
    # The plugin asks okg-storaged again on every change and every 10 s; it does not ask the
    # API server again (the next try is minutes away).
    n = probe_prop(s, 0, "Probes")
    nginx_game.set_state("Allocated")
    wait_condition(pod, "idle", "True", "Allocated")
    wait_for(lambda: probe_prop(s, 0, "Probes") >= n + 5, what="five more probes")
    s.busctl("call", "io.kruise.game.ServiceQuality1", "/io/kruise/game/ServiceQuality1",
             "io.kruise.game.ServiceQuality1", "ProbeNow")
    kube.audit.settle()
    assert kube.audit.count(mark, user=user, resource="podprobemarkers") == refused == 1
    assert sq_prop(s, "Source") == "annotation"


def test_kube_explicit_source_without_marker_runs_nothing(okg_kube, suite_factory, tmp_path,
                                                          nginx_game):
    """source: podprobemarker does not fall back: a deleted marker stops the probes."""
    kube = okg_kube
    pod = MarkedPod(kube, tmp_path, [idle_probe(nginx_game.port)])
    pod.kubelet_status("c" * 64)
    s = start_kube(suite_factory, pod, "source: podprobemarker")
    wait_for(lambda: sq_prop(s, "Source") == "podprobemarker", what="the marker as source")
    wait_condition(pod, "idle", "True", "None")
    kube.admin.check(kube.admin.delete(pod.ppm_path), 200, what="delete the marker")
    wait_for(lambda: sq_prop(s, "Source") == "none", what="no source")
    assert sq_prop(s, "SourceReason").startswith("source podprobemarker: PodProbeMarker game is "
                                                 "missing")
    assert sq_prop(s, "Probes") == 0


# ---- the local store: a file per marker ----

def local_pod(state, probes, labels=LABELS):
    state.mkdir(parents=True, exist_ok=True)
    (state / "local-store.json").write_text(json.dumps({"pods": {f"{NAMESPACE}/{POD}": {
        "metadata": {"name": POD, "namespace": NAMESPACE, "labels": labels, "annotations": {
            "kruise.io/podprobe": kruise_annotation(probes),
            "kruise.io/podprobemarker-list": "game"}}}}}))


def write_marker(state, probes, **kw):
    d = state / "podprobemarkers"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".game.json.tmp"
    tmp.write_text(json.dumps(marker("game", probes, **kw)))
    os.rename(tmp, d / "game.json")


def local_sq_config(tmp_path):
    """A suite config with the service_quality plugin and no downward-API file: the probes come
    from the markers or the annotation."""
    return make_config(free_port(), []).replace("plugins:\n", "plugins:\n" + sq_plugin(
        f"file: {tmp_path / 'no-such-file'}"))


def start_local_marker_suite(suite_factory, tmp_path, port):
    """The local store with the pod naming the marker "game" and its file (an idle probe of
    port's /state), the suite started and following it. Returns (suite, state dir, probes)."""
    state = tmp_path / "state"
    probes = [idle_probe(port)]
    local_pod(state, probes)
    write_marker(state, probes)
    s = start_suite(suite_factory, local_sq_config(tmp_path))
    wait_for(lambda: sq_prop(s, "Source") == "podprobemarker", what="the marker file")
    return s, state, probes


def local_condition(s, name):
    try:
        pod = json.loads((s.state / "local-store.json").read_text())["pods"][f"{NAMESPACE}/{POD}"]
    except (FileNotFoundError, KeyError, ValueError):
        return {}
    return {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}.get(
        f"game.kruise.io/{name}", {})


def wait_local(s, name, status, message):
    wait_for(lambda: (local_condition(s, name).get("status"), local_condition(s, name).get(
        "message")) == (status, message), timeout=scaled(60),
        what=f"local condition {name} {status} {message!r}")


def test_local_marker_file_is_followed(suite_factory, tmp_path, nginx_game):
    s, state, _ = start_local_marker_suite(suite_factory, tmp_path, nginx_game.port)
    wait_local(s, "idle", "True", "None")
    out = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address,
                          "service-quality"], capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0, out.stderr
    assert "source podprobemarker (source auto: PodProbeMarker game, named by" in out.stdout, \
        out.stdout

    write_marker(state, [idle_probe(nginx_game.port, "/missing")])
    wait_local(s, "idle", "False", "HTTP probe failed with statuscode: 404")
    wait_probe(s, 0, "False", "HTTP probe failed with statuscode: 404")

    # A selector that no longer selects the pod: the marker gives it no probes.
    write_marker(state, [idle_probe(nginx_game.port)], selector={"matchLabels": {"x": "y"}})
    wait_for(lambda: sq_prop(s, "Probes") == 0, what="no probes")
    assert "no longer selects the pod" in sq_prop(s, "SourceReason")

    os.unlink(state / "podprobemarkers" / "game.json")
    wait_for(lambda: sq_prop(s, "Source") == "annotation", what="the annotation as fallback")
    assert "no file" in sq_prop(s, "SourceReason") and "game.json" in sq_prop(s, "SourceReason")
    assert sq_prop(s, "PodProbeMarkers") == [["game", "notfound"]]
    wait_local(s, "idle", "True", "None")
    assert storage_prop(s, "PodProbeMarkersVersion") > 0


def okgctl_service_quality(s, *args):
    r = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", s.bus_address, *args,
                        "service-quality"], capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_okgctl_service_quality_lists_the_markers(suite_factory, tmp_path, nginx_game):
    """okgctl service-quality has a line per PodProbeMarker the pod names: its state and, when
    it is not found, okg-storaged's reason; --json has them as podProbeMarkers."""
    s, state, probes = start_local_marker_suite(suite_factory, tmp_path, nginx_game.port)

    def markers():
        lines = okgctl_service_quality(s).splitlines()
        head = next(i for i, line in enumerate(lines) if line.startswith("PODPROBEMARKER"))
        assert lines[head].split() == ["PODPROBEMARKER", "STATE", "REASON"], lines
        assert lines[head + 2] == "" and lines[head + 3].startswith("PROBE"), lines
        return lines[head + 1], json.loads(okgctl_service_quality(s, "--json"))["podProbeMarkers"]

    row, doc = markers()
    assert row.split() == ["game", "found", "-"], row
    assert doc == [{"name": "game", "state": "found", "reason": ""}]

    path = state / "podprobemarkers" / "game.json"
    os.unlink(path)
    for make, state_, why in ((None, "notfound", f"no file {path}"),
                              (os.mkfifo, "error", f"{path}: not a regular file")):
        if make:
            make(path)
        wait_for(lambda: sq_prop(s, "PodProbeMarkers") == [["game", state_]],
                 what=f"the marker {state_}")
        row, doc = markers()
        assert doc == [{"name": "game", "state": state_, "reason": doc[0]["reason"]}], doc
        assert why in doc[0]["reason"], doc
        stored = s.busctl("call", *STORAGE, "GetPodProbeMarkers", json_out=True)["data"][0]
        assert doc[0]["reason"] == stored[0][2], (doc, stored)
        assert row.split(None, 2) == ["game", state_, doc[0]["reason"]], row
    os.unlink(path)
    write_marker(state, probes)
    wait_for(lambda: sq_prop(s, "PodProbeMarkers") == [["game", "found"]], what="found again")
    assert markers()[1] == [{"name": "game", "state": "found", "reason": ""}]


def test_local_marker_fifo_is_refused_not_waited_on(suite_factory, tmp_path, nginx_game):
    """A FIFO (or a device) in place of a marker file is not opened for a writer that never
    comes: the marker is in error with "not a regular file", the annotation is the fallback,
    and okg-storaged keeps answering (before, its read hung and the watchdog restarted it)."""
    s, state, probes = start_local_marker_suite(suite_factory, tmp_path, nginx_game.port)
    path = state / "podprobemarkers" / "game.json"
    for kind, make in (("a FIFO", os.mkfifo), ("a device", lambda p: os.symlink("/dev/zero", p))):
        write_marker(state, probes)
        wait_for(lambda: sq_prop(s, "Source") == "podprobemarker", what="the marker file again")
        os.unlink(path)
        make(path)
        wait_for(lambda: sq_prop(s, "PodProbeMarkers") == [["game", "error"]],
                 what=f"the marker in error for {kind}")
        assert sq_prop(s, "Source") == "annotation"
        reason = sq_prop(s, "SourceReason")
        assert f"{path}: not a regular file" in reason, reason
        # okg-storaged answers, and a write of the suite goes through.
        assert storage_prop(s, "PodProbeMarkersVersion") > 0
        wait_local(s, "idle", "True", "None")
        os.unlink(path)


def test_local_file_source_fifo_is_refused_not_waited_on(suite_factory, tmp_path):
    """source: file naming a FIFO, a device or a directory: one line on the bus says why, no
    probes run, and okg-probed keeps answering (before, a FIFO hung it at its first read)."""
    cases = (("fifo", os.mkfifo, "not a regular file"),
             ("zero", lambda p: os.symlink("/dev/zero", p), "not a regular file"),
             ("dir", os.mkdir, "Is a directory"))
    for name, make, why in cases:
        path = tmp_path / name
        make(path)
        text = make_config(free_port(), []).replace("plugins:\n", "plugins:\n" + sq_plugin(
            f"source: file\nfile: {path}"))
        s = start_suite(suite_factory, text)
        wait_for(lambda: "cannot read" in sq_prop(s, "SourceReason"), what=f"the reason ({name})")
        assert sq_prop(s, "SourceReason") == f"source file: cannot read {path}: {why}"
        assert sq_prop(s, "Source") == "none"
        assert sq_prop(s, "Probes") == 0
        s.stop()


def test_kube_marker_watch_resumes_without_reading_again(okg_kube, suite_factory, tmp_path,
                                                         nginx_game):
    """The marker's watch ends every few seconds here (OKG_STORAGED_WATCH_TIMEOUT_SEC; about
    20 minutes otherwise): it is opened again from where it was, the marker is not read again,
    and an edit after several of them still arrives."""
    kube = okg_kube
    pod = MarkedPod(kube, tmp_path, [idle_probe(nginx_game.port)])
    pod.kubelet_status("d" * 64)
    pod.env["OKG_STORAGED_WATCH_TIMEOUT_SEC"] = "2"
    mark = kube.audit.mark()
    s = start_kube(suite_factory, pod)
    wait_condition(pod, "idle", "True", "None")
    user = sa_username(pod.ns)
    assert kube.audit.wait_count(4, mark, timeout=120, user=user, resource="podprobemarkers",
                                 verb="watch") >= 4
    pod.edit_probes([idle_probe(nginx_game.port, "/missing")])
    wait_condition(pod, "idle", "False", "HTTP probe failed with statuscode: 404")
    assert kube.audit.count(mark, user=user, resource="podprobemarkers",
                            verb={"get", "list"}) == 1
    assert sq_prop(s, "Source") == "podprobemarker"


def test_local_unusable_marker_with_empty_annotation_names_the_marker(suite_factory, tmp_path):
    """source auto, a marker that cannot be used and an empty kruise.io/podprobe annotation: the
    reason names the marker as well as the empty annotation."""
    state = tmp_path / "state"
    local_pod(state, [])
    store = json.loads((state / "local-store.json").read_text())
    ann = store["pods"][f"{NAMESPACE}/{POD}"]["metadata"]["annotations"]
    ann["kruise.io/podprobe"] = ""
    ann["kruise.io/podprobemarker-list"] = "missing"
    (state / "local-store.json").write_text(json.dumps(store))
    s = start_suite(suite_factory, local_sq_config(tmp_path))
    wait_for(lambda: "annotation is empty" in sq_prop(s, "SourceReason"),
             what="the empty annotation")
    reason = sq_prop(s, "SourceReason")
    assert reason.startswith("source auto, PodProbeMarker missing is missing"), reason
    assert reason.endswith("; the pod's kruise.io/podprobe annotation is empty"), reason
    assert sq_prop(s, "Source") == "none"
