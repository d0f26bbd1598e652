"""okg-storaged against a fake API server that produces the faults a real one will not make on
demand: 5xx, 429 with Retry-After, 403 (reported, not retried), and 401 until the token file
is rotated. The real API server tests are in test_storage_kube.py."""
import json
import os

import pytest

from conftest import HOT_UPDATE, free_port, make_config, wait_for
from fake_kube import FakeKube

S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")


@pytest.fixture
def fake(tmp_path):
    f = FakeKube(tmp_path)
    yield f
    f.close()


def start(suite_factory, tmp_path, fake, token="t-1"):
    tok = tmp_path / "token"
    tok.write_text(token + "\n")
    s = suite_factory(make_config(free_port(), [(HOT_UPDATE, 0)]))
    s.start({"KUBECONFIG": fake.kubeconfig(str(tok)), "POD_NAME": "gs-1", "POD_NAMESPACE": "games"})
    s.wait_ready()
    return s, tok


def call(s, method, sig, *args, check=True):
    return s.busctl("call", *S, method, sig, *[str(a) for a in args], json_out=check, check=check)


def prop(s, name):
    return s.busctl("get-property", *S, name, json_out=True)["data"]


def test_server_errors_are_retried_until_applied(suite_factory, tmp_path, fake):
    fake.script = [(500, {}, {"kind": "Status", "message": "etcd is sad", "code": 500}),
                   (503, {}, {"kind": "Status", "message": "try later", "code": 503})]
    s, _ = start(suite_factory, tmp_path, fake)
    assert prop(s, "Backend") == "kubernetes"
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="applied after the errors")
    writes = fake.writes()
    assert len(writes) == 3
    assert all(w[2] == "/apis/game.kruise.io/v1alpha1/namespaces/games/gameservers/gs-1" for w in writes)
    assert json.loads(writes[-1][4]) == {"spec": {"opsState": "Allocated"}}
    assert prop(s, "Retries") >= 2
    assert prop(s, "LastError") == "try later"


def test_retry_after_is_honoured(suite_factory, tmp_path, fake):
    fake.script = [(429, {"Retry-After": "2"}, {"kind": "Status", "message": "slow down", "code": 429})]
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "x", 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="applied")
    first, second = fake.writes()[:2]
    # The server asked for 2 s; the retry must not come earlier.
    assert second[0] - first[0] >= 2.0


def test_forbidden_is_reported_not_retried(suite_factory, tmp_path, fake):
    msg = ('pods "gs-1" is forbidden: User "system:serviceaccount:games:okg-sidecar" cannot patch '
           'resource "pods" in API group "" in the namespace "games"')
    # Refusals are tried a few times (an API server that just restarted denies until its RBAC
    # caches are filled), then reported and left alone.
    fake.script = [(403, {}, {"kind": "Status", "message": msg, "reason": "Forbidden", "code": 403})] * 6
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "x", 0)
    wait_for(lambda: prop(s, "Failures") == 1, what="failure reported")
    # The refused field is named; the message is the API server's.
    assert prop(s, "LastError") == f'label "app": {msg}'
    assert msg in s.log_text()
    s.wait_log(r'refused the pod write \(HTTP 403\): label "app": .*not retrying it until it is written again')
    import time
    time.sleep(1.5)
    assert len(fake.writes()) == 6
    assert prop(s, "Pending") == 1
    # A new write to the object tries again (and now succeeds).
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "y", 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="applied")
    assert json.loads(fake.writes()[-1][4]) == {"metadata": {"labels": {"app": "y"}}}


def test_refused_ops_state_is_named_as_itself(suite_factory, tmp_path, fake):
    """opsState has no key: the refusal reads "opsState: why", with no space before the colon
    (it read "opsState : why"), in LastError, WriteFailed's text and the log."""
    msg = "spec.opsState: Unsupported value"
    fake.script = [(422, {}, {"kind": "Status", "message": msg, "reason": "Invalid",
                              "code": 422})] * 6
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Failures") == 1, what="failure reported")
    assert prop(s, "LastError") == f"opsState: {msg}"
    s.wait_log(r"refused the \w+ write \(HTTP 422\): opsState: spec\.opsState: Unsupported "
               r"value; not retrying")


def test_a_passing_refusal_is_not_lost(suite_factory, tmp_path, fake):
    fake.script = [(403, {}, {"kind": "Status", "message": "not yet", "code": 403})] * 2
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="applied on the third try")
    assert len(fake.writes()) == 3 and prop(s, "Failures") == 0


def test_rotated_token_is_picked_up(suite_factory, tmp_path, fake):
    fake.require_token = "t-2"
    s, tok = start(suite_factory, tmp_path, fake, token="t-1")
    call(s, "PutRecord", "s", '{"version":"v1"}')
    wait_for(lambda: prop(s, "LastError") == "Unauthorized", what="401 seen")
    assert prop(s, "Pending") == 1
    tok.write_text("t-2\n")
    wait_for(lambda: prop(s, "Pending") == 0, what="applied with the new token")
    tokens = [w[3] for w in fake.writes()]
    assert tokens[0] == "t-1" and tokens[-1] == "t-2"
    # The record went to the ConfigMap, on our own key only.
    body = json.loads(fake.writes()[-1][4])
    assert list(body["data"]) == ["gs-1"]


def test_missing_configmap_is_created_and_conflict_handled(suite_factory, tmp_path, fake):
    fake.script = [(404, {}, {"kind": "Status", "message": "configmaps \"sidecar-result\" not found", "code": 404}),
                   (409, {}, {"kind": "Status", "message": "already exists", "code": 409})]
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "PutRecord", "s", '{"version":"v1"}')
    wait_for(lambda: prop(s, "Pending") == 0, what="applied")
    methods = [(w[1], w[2]) for w in fake.writes()]
    assert methods == [("PATCH", "/api/v1/namespaces/games/configmaps/sidecar-result"),
                       ("POST", "/api/v1/namespaces/games/configmaps"),
                       ("PATCH", "/api/v1/namespaces/games/configmaps/sidecar-result")]
    created = json.loads(fake.writes()[1][4])
    assert created["kind"] == "ConfigMap" and created["metadata"]["name"] == "sidecar-result"


def test_missing_crd_names_the_resource_type(suite_factory, tmp_path, fake):
    """S7: without the GameServer CRD the API server answers "404 page not found" (text, not a
    Status); the message says the resource type is not served and names the URL. (A fake: the
    real API server's CRD is shared by the session's tests.)"""
    fake.script = [(404, {}, b"404 page not found\n")]
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: "does not serve" in prop(s, "LastError"), what="the message")
    err = prop(s, "LastError")
    assert "/apis/game.kruise.io/v1alpha1/namespaces/games/gameservers/gs-1" in err
    assert "GameServer CRD" in err
    # Retried: once the CRD is there (the script ran out), the write lands.
    wait_for(lambda: prop(s, "Pending") == 0, what="applied once served")


def test_missing_resource_type_other_than_the_crd(suite_factory, tmp_path, fake):
    """S7, another member: a 404 page for the pod path names the URL, without the CRD hint."""
    fake.script = [(404, {}, b"404 page not found\n")]
    s, _ = start(suite_factory, tmp_path, fake)
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "app", "x", 0)
    wait_for(lambda: "does not serve" in prop(s, "LastError"), what="the message")
    err = prop(s, "LastError")
    assert "/api/v1/namespaces/games/pods/gs-1" in err and "CRD" not in err
    wait_for(lambda: prop(s, "Pending") == 0, what="applied once served")


def start_on_journal(suite_factory, tmp_path, fake, make_journal):
    """okg-storaged started on a state folder whose journal make_journal(path) wrote."""
    state = tmp_path / "state"
    state.mkdir()
    make_journal(state / "storaged.journal")
    s, _ = start(suite_factory, tmp_path, fake)
    assert s.state == state
    return s


def metric(s, name):
    text = call(s, "GetMetrics", "")["data"][0]
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_journal_damage_stays_visible_after_later_errors(suite_factory, tmp_path, fake):
    """A damaged journal entry found at start is reported in LastError, which the next error
    of any kind replaces (here the API server's 500 to the pending write): JournalDamage and a
    metric keep it visible for as long as the daemon runs."""
    def journal(path):
        path.write_text('{"seq": 1, "object": "gameserver", "set": [{"kind": "opsState", '
                        '"key": "", "value": "Allocated"}]}\n'
                        '{"seq": 2, "object": "pod", "set": [{"kind": "annot\n'
                        '{"seq": 3, "object": "pod", "set": [{"kind": "label", "key": "app", '
                        '"value": "x"}]}\n')
    fake.script = [(500, {}, {"kind": "Status", "message": "etcd is sad", "code": 500})] * 3
    s = start_on_journal(suite_factory, tmp_path, fake, journal)
    wait_for(lambda: prop(s, "LastError") == "etcd is sad", what="a later error")
    damage = prop(s, "JournalDamage")
    assert damage.startswith("journal damaged: 1 entry (")
    assert "the writes they held are lost" in damage
    assert damage.endswith(f"({s.state / 'storaged.journal'})")
    assert metric(s, "okg_sidecar_storage_journal_damaged_entries") == 1
    # The entries around the damaged one were replayed and are delivered.
    wait_for(lambda: prop(s, "Pending") == 0, what="the replayed writes")
    assert prop(s, "JournalDamage") == damage


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_unreadable_journal_stays_visible_after_later_errors(suite_factory, tmp_path, fake, kind):
    """Another member: a journal that cannot be read at all (a folder or a FIFO in its place:
    the FIFO is not waited on) is moved aside; that too stays in JournalDamage after a later
    error."""
    fake.script = [(500, {}, {"kind": "Status", "message": "etcd is sad", "code": 500})]
    s = start_on_journal(suite_factory, tmp_path, fake,
                         (lambda path: path.mkdir()) if kind == "directory" else os.mkfifo)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "LastError") == "etcd is sad", what="a later error")
    damage = prop(s, "JournalDamage")
    assert "the file could not be read to its end (kept as " in damage, damage
    aside = s.state / "storaged.journal.unreadable"
    assert aside.is_dir() if kind == "directory" else aside.is_fifo()
    assert metric(s, "okg_sidecar_storage_journal_damaged_entries") == 0
    assert prop(s, "JournalDamage") == damage
