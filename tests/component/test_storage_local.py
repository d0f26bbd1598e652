"""okg-storaged on the local store: the same bus API as with Kubernetes, persisted as a readable
JSON file that mirrors the objects; writes journaled before the call returns."""
import json
import os
import signal
import subprocess

import pytest

from conftest import HOT_UPDATE, free_port, make_config, wait_for

S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")


def storage_call(suite, method, sig, *args, check=True):
    return suite.busctl("call", *S, method, sig, *[str(a) for a in args], json_out=check, check=check)


def prop(suite, name):
    return suite.busctl("get-property", *S, name, json_out=True)["data"]


def store(suite):
    with open(suite.state / "local-store.json") as f:
        return json.load(f)


@pytest.fixture
def local_suite(suite_factory):
    s = suite_factory(make_config(free_port(), [(HOT_UPDATE, 0)]))
    s.start({"POD_NAME": "gs-demo-3", "POD_NAMESPACE": "games"})
    s.wait_ready()
    return s


def test_backend_and_identity(local_suite):
    assert prop(local_suite, "Backend") == "local"
    assert prop(local_suite, "PodName") == "gs-demo-3"
    assert prop(local_suite, "Namespace") == "games"
    assert prop(local_suite, "GameServerSet") == "gs-demo"   # from the pod name
    assert prop(local_suite, "ResultConfigMap") == "sidecar-result"


def test_each_write_type_lands_in_the_store(local_suite):
    s = local_suite
    seq1 = storage_call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "demo", 1,
                        "example.com/state", "Allocated")["data"][0]
    seq2 = storage_call(s, "SetGameServer", "sa{ss}a{ss}", "WaitToBeDeleted", 1, "tier", "gold",
                        0)["data"][0]
    seq3 = storage_call(s, "PutRecord", "s", '{"version":"v2","appliedAt":"2026-11-27T05:00:00Z"}')["data"][0]
    seq4 = storage_call(s, "PostEvent", "sss", "Normal", "HotUpdated", "v2 applied")["data"][0]
    assert seq1 < seq2 < seq3 < seq4
    wait_for(lambda: prop(s, "Pending") == 0, what="all acknowledged")
    doc = store(s)
    pod = doc["pods"]["games/gs-demo-3"]["metadata"]
    assert pod["labels"] == {"app": "demo"}
    assert pod["annotations"] == {"example.com/state": "Allocated"}
    gs = doc["gameservers"]["games/gs-demo-3"]
    assert gs["spec"]["opsState"] == "WaitToBeDeleted" and gs["metadata"]["labels"] == {"tier": "gold"}
    record = json.loads(doc["configmaps"]["games/sidecar-result"]["data"]["gs-demo-3"])
    assert record["version"] == "v2" and record["pod"] == "gs-demo-3"
    assert record["gameServerSet"] == "gs-demo"
    ev = doc["events"][-1]
    assert (ev["type"], ev["reason"], ev["message"]) == ("Normal", "HotUpdated", "v2 applied")
    assert ev["involvedObject"]["name"] == "gs-demo-3"
    assert prop(s, "WritesAcknowledged") == 4


def test_last_value_wins_and_other_keys_stay(local_suite):
    s = local_suite
    storage_call(s, "SetPodMetadata", "a{ss}a{ss}", 0, 2, "a/x", "1", "a/y", "1")
    storage_call(s, "SetPodMetadata", "a{ss}a{ss}", 0, 1, "a/x", "2")
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    assert store(s)["pods"]["games/gs-demo-3"]["metadata"]["annotations"] == {"a/x": "2", "a/y": "1"}


def test_records_read_back(local_suite):
    s = local_suite
    assert storage_call(s, "GetRecord", "")["data"] == ["", ""]
    storage_call(s, "PutRecord", "s", '{"version":"v1","appliedAt":"2026-01-01T00:00:00Z"}')
    rec, pod = storage_call(s, "GetRecord", "")["data"]
    assert json.loads(rec)["version"] == "v1" and pod == "gs-demo-3"


def test_fleet_record_is_the_newest_of_the_set(suite_factory, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    rec = lambda **kw: json.dumps(kw)
    (state / "local-store.json").write_text(json.dumps({"configmaps": {"games/sidecar-result": {
        "metadata": {"name": "sidecar-result", "namespace": "games"},
        "data": {
            "gs-demo-0": rec(version="v8", appliedAt="2026-11-01T00:00:00Z", gameServerSet="gs-demo"),
            "gs-demo-1": rec(version="v9", appliedAt="2026-11-02T00:00:00Z", gameServerSet="gs-demo"),
            "gs-demo-2": rec(version="v7", appliedAt="2026-10-01T00:00:00Z"),   # by its name
            "other-0": rec(version="v99", appliedAt="2026-12-01T00:00:00Z", gameServerSet="other"),
            "gs-demo-x": rec(version="v98", appliedAt="2026-12-01T00:00:00Z"),  # not a member
            "broken": "not json",
        }}}}))
    s = suite_factory(make_config(free_port(), [(HOT_UPDATE, 0)]))
    s.start({"POD_NAME": "gs-demo-3", "POD_NAMESPACE": "games"})
    s.wait_ready()
    rec_text, pod = storage_call(s, "GetFleetRecord", "s", "appliedAt")["data"]
    assert pod == "gs-demo-1" and json.loads(rec_text)["version"] == "v9"
    assert storage_call(s, "GetRecord", "")["data"] == ["", ""]      # none of our own yet
    # Our own newer record then wins.
    storage_call(s, "PutRecord", "s", rec(version="v10", appliedAt="2026-11-03T00:00:00Z"))
    rec_text, pod = storage_call(s, "GetFleetRecord", "s", "appliedAt")["data"]
    assert pod == "gs-demo-3" and json.loads(rec_text)["version"] == "v10"


def test_bad_input_is_refused_and_changes_nothing(local_suite):
    s = local_suite
    storage_call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "demo", 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    before = (s.state / "local-store.json").read_text()
    journal_before = (s.state / "storaged.journal").read_text()
    cases = [
        (("SetPodMetadata", "a{ss}a{ss}", 1, "bad key!", "x", 0), 'label "bad key!"'),
        (("SetPodMetadata", "a{ss}a{ss}", 1, "app", "no spaces", 0), 'label "app"'),
        (("SetPodMetadata", "a{ss}a{ss}", 0, 0), "nothing to set"),
        (("SetGameServer", "sa{ss}a{ss}", "x" * 64, 0, 0), "opsState is longer than 63"),
        (("PutRecord", "s", "not json"), "a record must be a JSON object"),
        (("PutRecord", "s", "[1,2]"), "a record must be a JSON object"),
        (("PostEvent", "sss", "Loud", "Reason", "m"), "Normal or Warning"),
        (("PostEvent", "sss", "Normal", "has space", "m"), "letters and digits"),
        (("GetFleetRecord", "s", ""), "name the field"),
    ]
    for args, reason in cases:
        r = storage_call(s, *args, check=False)
        assert r.returncode != 0 and reason in r.stderr, (args, r.stderr)
    assert (s.state / "local-store.json").read_text() == before
    assert (s.state / "storaged.journal").read_text() == journal_before
    assert prop(s, "Pending") == 0


def test_state_survives_kill_9_of_storaged(local_suite):
    s = local_suite
    storage_call(s, "PutRecord", "s", '{"version":"v7"}')
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    pid = s.pid("storage")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid) and s.units()["storage"]["ready"],
             what="storage back")
    rec, _ = storage_call(s, "GetRecord", "")["data"]
    assert json.loads(rec)["version"] == "v7"
    # Sequence numbers go on from where they were.
    assert storage_call(s, "PutRecord", "s", '{"version":"v8"}')["data"][0] == 2
