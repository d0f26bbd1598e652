"""OKG's consumer rule (okg_consumer.py) played against the pod conditions okg-storaged writes
to a real kube-apiserver that has OKG's and Kruise's real CRDs installed: which
serviceQualityAction of a GameServerSet (as the API server stored it, so checked against the
published schema) would fire for each result, as docs/service-quality.md tables it. The rule
itself is also checked without a cluster."""
import os

import pytest

import okg_consumer as okg
from conftest import wait_for
from kube import KubeEnv, build_apiserver
from test_storage_kube import Pod, prop, start_suite
from test_storage_podstatus import conditions, set_conditions

EXAMPLE = os.path.join(okg.TOP, "deploy", "examples", "service-quality", "manifest.yaml")

SQS = [{
    "name": "idle",
    "permanent": False,
    "containerName": "game",
    "exec": {"command": ["/bin/sh", "-c", "cat /tmp/state"]},
    "periodSeconds": 3,
    "serviceQualityAction": [
        {"state": True, "result": "idle", "opsState": "None", "labels": {"game.example/phase": "idle"}},
        {"state": True, "result": "busy", "opsState": "Allocated", "updatePriority": 10,
         "annotations": {"game.example/players": "some"}},
        {"state": True, "result": "maintenance", "opsState": "Maintaining", "networkDisabled": True},
        {"state": False, "opsState": "WaitToBeDeleted", "deletionPriority": 100},
    ],
}, {
    "name": "permanent-ready",
    "permanent": True,
    "tcpSocket": {"port": 8080},
    "serviceQualityAction": [{"state": True, "labels": {"game.example/ready": "yes"}}],
}]


# ---- the rule, without a cluster ----

def test_rule_result_and_status():
    sq = SQS[0]
    c = {"type": "game.kruise.io/idle", "status": "True", "message": "bu|sy\n"}
    assert okg.fired_actions(sq, c) == [1]          # | and newlines removed
    assert okg.fired_actions(sq, dict(c, message="busy\r")) == []   # a CR stays
    assert okg.fired_actions(sq, dict(c, status="Unknown")) == []
    assert okg.fired_actions(sq, dict(c, status="1", message="idle")) == [0]   # ParseBool
    assert okg.fired_actions(sq, dict(c, status="False", message="anything")) == [3]
    assert okg.fired_actions(sq, None) == []
    assert okg.find_condition([c], "idle") is c and okg.find_condition([c], "other") is None


def test_rule_changes_and_permanent():
    gss = okg.gameserverset("g", SQS)
    gs = okg.GameServer(spec={"opsState": "None"})
    conds = [{"type": "game.kruise.io/idle", "status": "True", "message": "busy"},
             {"type": "game.kruise.io/permanent-ready", "status": "True", "message": ""}]
    assert okg.sync(gss, conds, gs) == {"idle": [1], "permanent-ready": [0]}
    assert gs.spec == {"opsState": "Allocated", "updatePriority": 10}
    assert gs.labels == {"game.example/ready": "yes"}
    # Nothing changed: nothing runs again.
    assert okg.sync(gss, conds, gs) == {"idle": [], "permanent-ready": []}
    # A change runs the actions again, except for a permanent serviceQuality that acted.
    conds[0]["status"] = "False"
    conds[1]["status"] = "False"
    assert okg.sync(gss, conds, gs) == {"idle": [3], "permanent-ready": []}
    assert gs.spec["opsState"] == "WaitToBeDeleted" and gs.spec["deletionPriority"] == 100
    # Templates over the result.
    tgs = okg.GameServer()
    tmpl = okg.gameserverset("t", [{"name": "n", "permanent": False, "serviceQualityAction": [
        {"state": True, "opsState": "{{ .Result }}", "updatePriority": "{{.Result}}"}]}])
    okg.sync(tmpl, [{"type": "game.kruise.io/n", "status": "True", "message": "7"}], tgs)
    assert tgs.spec == {"opsState": "7", "updatePriority": 7}


def test_missing_fixtures_fail_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("OKG_FIXTURES_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match="not found in .*nowhere; set OKG_FIXTURES_DIR"):
        okg.fixtures_dir()


def test_fixture_crd_text_drops_only_the_grpc_default():
    d = okg.fixtures_dir()
    for f in okg.FIXTURE_FILES:
        raw = open(os.path.join(d, f)).read()
        fixed = okg.fixture_crd_text(os.path.join(d, f))
        assert raw.count('default: ""') - fixed.count('default: ""') == (0 if "gameservers." in f else 1)
        assert len(raw.splitlines()) - len(fixed.splitlines()) <= 1


# ---- against a real API server with the real CRDs ----

@pytest.fixture(scope="module")
def okg_kube(tmp_path_factory):
    """An API server of its own (the session's has the project's test CRDs, which other tests
    rely on) with OKG's and Kruise's published CRDs. Fails, never skips, without them."""
    os.environ.setdefault("KUBE_APISERVER", build_apiserver())
    env = KubeEnv(tmp_path_factory.mktemp("okg-kube"))
    env.start()
    try:
        okg.install_fixture_crds(env.admin)
        yield env
    finally:
        env.stop()


def example_gameserverset():
    """The GameServerSet of deploy/examples/service-quality, whose actions
    docs/service-quality.md tables."""
    import yaml
    with open(EXAMPLE) as f:
        return next(o for o in yaml.safe_load_all(f) if o and o.get("kind") == "GameServerSet")


# docs/service-quality.md's table: (status, message) of game.kruise.io/state -> the actions of
# the example's "state" serviceQuality that run, and what the GameServer's spec then holds.
TABLE = [
    (("True", "idle\n"), [0], {"opsState": "None"}),
    (("True", "busy"), [1], {"opsState": "Allocated", "updatePriority": 10}),
    (("True", "maintenance"), [2], {"opsState": "Maintaining", "networkDisabled": True}),
    (("True", "bu|sy"), [1], {"opsState": "Allocated", "updatePriority": 10}),
    (("True", "something else"), [], {}),
    (("False", "HTTP probe failed with statuscode: 503"), [3],
     {"opsState": "WaitToBeDeleted", "deletionPriority": 100}),
    (("Unknown", "idle"), [], {}),
]


def test_actions_fire_from_the_conditions_storaged_wrote(okg_kube, suite_factory, tmp_path):
    kube = okg_kube
    pod = Pod(kube, tmp_path, name="sq-gs-0", gss="sq-gs")
    c = kube.admin
    gss = example_gameserverset()
    stored = c.create(gss, namespace=pod.ns)
    # The published schema kept every field of the example's serviceQualities.
    assert stored["spec"]["serviceQualities"] == gss["spec"]["serviceQualities"]
    s = start_suite(suite_factory, pod)
    gs = okg.GameServer(spec={"opsState": "None"})

    for (status, message), actions, spec in TABLE:
        set_conditions(s, ("game.kruise.io/state", status, message))
        wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
        held = list(conditions(pod.get("pod")).values())
        gs.spec = {"opsState": "Unchanged"}
        assert okg.sync(stored, held, gs)["state"] == actions, (status, message)
        assert gs.spec == dict({"opsState": "Unchanged"}, **spec), (status, message)
    assert gs.labels == {"game.example/phase": "idle"}
    assert gs.annotations == {"game.example/players": "some"}
    # listening: no condition yet, nothing; then True and False set the label.
    assert okg.sync(stored, list(conditions(pod.get("pod")).values()), gs)["listening"] == []
    for status, label in (("True", "yes"), ("False", "no")):
        set_conditions(s, ("game.kruise.io/listening", status, ""))
        wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
        assert okg.sync(stored, list(conditions(pod.get("pod")).values()), gs)["listening"] != []
        assert gs.labels["game.example/listening"] == label
    # Kubelet's Ready is not a serviceQuality: the pod's conditions keep it apart.
    assert "Ready" not in [sq["name"] for sq in stored["spec"]["serviceQualities"]]
