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


def journal_entries(suite):
    return [json.loads(line) for line in (suite.state / "storaged.journal").read_text().splitlines()]


def restart_storaged(s):
    pid = s.pid("storage")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid) and s.units()["storage"]["ready"],
             what="storage back")


def test_pod_metadata_write_stays_one_journal_entry(local_suite):
    """SetPodMetadata of labels and annotations is one journal entry when accepted, and stays
    one through the compaction at the next start (an earlier version wrote one entry per
    field there, so a damaged line could keep half of a write)."""
    s = local_suite
    seq = storage_call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "demo", 2,
                       "okg.test/a", "1", "okg.test/b", "2")["data"][0]
    seq2 = storage_call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 1, "tier", "gold", 0)["data"][0]
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    for when in ("accepted", "compacted"):
        sets = [e for e in journal_entries(s) if "set" in e]
        by_seq = {e["seq"]: e for e in sets}
        assert len(sets) == 2 and set(by_seq) == {seq, seq2}, (when, sets)
        assert by_seq[seq]["object"] == "pod"
        assert sorted((f["kind"], f["key"]) for f in by_seq[seq]["set"]) == [
            ("annotation", "okg.test/a"), ("annotation", "okg.test/b"), ("label", "app")], when
        assert sorted(f["kind"] for f in by_seq[seq2]["set"]) == ["label", "opsState"], when
        if when == "accepted":
            restart_storaged(s)
    # A later write to one of its fields takes that field into its own entry; the rest of the
    # first write stays together.
    seq3 = storage_call(s, "SetPodMetadata", "a{ss}a{ss}", 0, 1, "okg.test/b", "3")["data"][0]
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    restart_storaged(s)
    sets = {e["seq"]: sorted(f["key"] for f in e["set"]) for e in journal_entries(s) if "set" in e}
    assert sets == {seq: ["app", "okg.test/a"], seq2: ["", "tier"], seq3: ["okg.test/b"]}, sets
    meta = store(s)["pods"]["games/gs-demo-3"]["metadata"]
    assert meta["labels"]["app"] == "demo" and meta["annotations"]["okg.test/b"] == "3"


def test_journal_of_an_earlier_version_replays(suite_factory):
    """Journal compatibility: a write an earlier version compacted into one entry per field
    (same seq), and its acknowledgements one per field, replay as before: nothing is lost,
    the write is delivered, and sequence numbers go on."""
    s = suite_factory(make_config(free_port(), [(HOT_UPDATE, 0)]))
    s.state.mkdir()
    old = [{"nextSeq": 8},
           {"object": "pod", "namespace": "games", "name": "gs-demo-3", "ack": [
               {"kind": "label", "key": "old", "value": "1"}]},
           {"seq": 7, "object": "pod", "set": [{"kind": "label", "key": "app", "value": "demo"}]},
           {"seq": 7, "object": "pod", "set": [{"kind": "annotation", "key": "okg.test/a", "value": "1"}]}]
    (s.state / "storaged.journal").write_text("".join(json.dumps(e) + "\n" for e in old))
    s.start({"POD_NAME": "gs-demo-3", "POD_NAMESPACE": "games"})
    s.wait_ready()
    wait_for(lambda: prop(s, "Pending") == 0, what="the replayed write delivered")
    meta = store(s)["pods"]["games/gs-demo-3"]["metadata"]
    assert meta["labels"]["app"] == "demo" and meta["annotations"]["okg.test/a"] == "1"
    assert prop(s, "JournalDamage") == ""
    assert storage_call(s, "PutRecord", "s", '{"version":"v1"}')["data"][0] >= 8
    sets = [e for e in journal_entries(s) if "set" in e and e["object"] == "pod"]
    assert len(sets) == 1 and len(sets[0]["set"]) == 2, sets
