"""okg-storaged converges on what it accepted whatever the network and the objects do (issue
16), against a real kube-apiserver: a connection that stops carrying bytes, objects recreated
or changed by someone else, a field the API server refuses, a journal grown during an outage.
A TCP proxy of the test's freezes connections; nothing else is faked."""
import json

import pytest

from conftest import free_port, make_config, wait_for
from fake_kube import make_cert
from kube import kube, write_kubeconfig  # noqa: F401
from tcp_proxy import TcpProxy
from test_storage_kube import S, Pod, call, prop, start_suite


@pytest.fixture
def proxy(kube):
    host, port = kube.server.removeprefix("https://").rsplit(":", 1)
    p = TcpProxy(host, int(port))
    yield p
    p.close()


def point_at(pod, kube, tmp_path, server, ca=None, token=None):
    """The pod's sidecar talks to server (with the API server's CA unless ca is given)."""
    pod.env["KUBECONFIG"] = write_kubeconfig(str(tmp_path / "kubeconfig-elsewhere"), server,
                                             ca or kube.ca, token=token,
                                             token_file=None if token else pod.token_file,
                                             namespace=pod.ns)


def through(pod, proxy, kube, tmp_path):
    """The pod's sidecar talks to the API server through the proxy."""
    point_at(pod, kube, tmp_path, f"https://{proxy.address}")


def proxied_after_a_write(kube, suite_factory, tmp_path, proxy):
    """A sidecar talking through the proxy, one write acknowledged (so a connection is open
    and fresh): (pod, suite)."""
    pod = Pod(kube, tmp_path)
    through(pod, proxy, kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="the first write")
    return pod, s


def test_frozen_connection_is_replaced(kube, suite_factory, tmp_path, proxy):
    """S2: the connection freezes (bytes stop, the socket stays open); the write that times out
    on it is retried on a new connection and lands."""
    pod, s = proxied_after_a_write(kube, suite_factory, tmp_path, proxy)
    assert proxy.freeze() >= 1
    before = proxy.connections()
    call(s, "SetGameServer", "sa{ss}a{ss}", "Maintaining", 1, "okg.test/after", "freeze", 0)
    wait_for(lambda: prop(s, "Pending") == 0, timeout=150, what="the write after the freeze")
    gs = pod.get("gs")
    assert gs["spec"]["opsState"] == "Maintaining"
    assert gs["metadata"]["labels"]["okg.test/after"] == "freeze"
    assert proxy.connections() > before
    s.wait_log("the next one opens a new connection")


def test_frozen_pod_read_is_replaced(kube, suite_factory, tmp_path, proxy):
    """S2, another request kind: a record read through a frozen connection fails (Busy); the
    next read opens a new connection and answers."""
    pod = Pod(kube, tmp_path)
    through(pod, proxy, kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "PutRecord", "s", json.dumps({"version": "v1"}))
    wait_for(lambda: prop(s, "Pending") == 0, what="the record")
    assert proxy.freeze() >= 1
    before = proxy.connections()
    # The read waits for the request's own timeout (30 s), longer than busctl's default.
    out = s.busctl("--timeout=120", "call", *S, "GetFleetRecord", "s", "version", check=False)
    assert out.returncode != 0 and "Timeout was reached" in out.stderr
    got, who = call(s, "GetFleetRecord", "s", "version")["data"]
    assert json.loads(got)["version"] == "v1" and who == pod.name
    assert proxy.connections() > before


def recreate_gameserver(kube, pod):
    c = kube.admin
    c.check(c.delete(c.gameserver_path(pod.ns, pod.name)), 200, 202, what="delete the GameServer")
    wait_for(lambda: pod.get("gs") is None, what="the GameServer gone")
    kube.admin.create_gameserver(pod.ns, pod.name, labels={"game.kruise.io/owner-gss": pod.gss})
    return pod.get("gs")["metadata"]["uid"]


def ops_state(pod):
    gs = pod.get("gs")
    return gs and gs["spec"].get("opsState")


def test_recreated_gameserver_gets_the_write_again(kube, suite_factory, tmp_path):
    """S4: the GameServer is deleted and created again (new uid, opsState None); the same
    SetGameServer is checked against the object and lands."""
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 1, "okg.test/tier", "gold", 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="the first write")
    recreate_gameserver(kube, pod)
    assert ops_state(pod) == "None"
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: ops_state(pod) == "Allocated", timeout=120, what="opsState on the new GameServer")
    # The label acknowledged for the old object is written again too.
    wait_for(lambda: pod.get("gs")["metadata"].get("labels", {}).get("okg.test/tier") == "gold",
             what="the label on the new GameServer")
    s.wait_log("was recreated")


def test_value_changed_by_someone_else_is_written_again(kube, suite_factory, tmp_path):
    """S4, another member: someone else set another opsState; the same write converges."""
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="the first write")
    c = kube.admin
    c.check(c.patch(c.gameserver_path(pod.ns, pod.name), {"spec": {"opsState": "Maintaining"}}),
            200, what="someone else's write")
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: ops_state(pod) == "Allocated", timeout=120, what="opsState written again")
    s.wait_log("no longer hold what was acknowledged")


def test_restart_reads_the_objects_back(kube, suite_factory, tmp_path):
    """S4, after a restart: the journal's acknowledgements are checked against the objects,
    which were recreated while okg-storaged was down; no new write is needed."""
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="the first write")
    s.stop()
    recreate_gameserver(kube, pod)
    s.start(pod.env)
    s.wait_ready()
    wait_for(lambda: ops_state(pod) == "Allocated", timeout=120, what="opsState after the restart")


def test_state_folder_of_another_pod(kube, suite_factory, tmp_path):
    """S4: a state folder reused by a new pod (same name, another namespace): the old pod's
    acknowledgements do not suppress the new pod's writes."""
    old = Pod(kube, tmp_path)
    s = start_suite(suite_factory, old)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 1, "okg.test/tier", "gold", 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="the old pod's write")
    s.stop()
    new = Pod(kube, tmp_path / "new" if (tmp_path / "new").mkdir() is None else tmp_path)
    s.start(new.env)
    s.wait_ready()
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 1, "okg.test/tier", "gold", 0)
    wait_for(lambda: prop(s, "Pending") == 0 and ops_state(new) == "Allocated", timeout=120,
             what="the new pod's write")
    assert new.get("gs")["metadata"]["labels"]["okg.test/tier"] == "gold"


def crowd_annotations(kube, pod, size=205_000):
    """Another writer's big annotation (a kubectl last-applied-configuration, say)."""
    c = kube.admin
    c.check(c.patch(c.pod_path(pod.ns, pod.name),
                    {"metadata": {"annotations": {"other.example/blob": "x" * size}}}),
            200, what="another writer's annotation")


def test_refused_annotation_does_not_hold_a_later_label(kube, suite_factory, tmp_path):
    """S1: the pod's annotations would exceed 256 KiB with ours; the API server refuses it
    (422). A later small label is delivered, and the refusal names the annotation."""
    pod = Pod(kube, tmp_path)
    crowd_annotations(kube, pod)
    s = start_suite(suite_factory, pod)
    with s.monitor(S[2], "WriteFailed").listen("sts", "marker", 0, "") as mon:
        call(s, "SetPodMetadata", "a{ss}a{ss}", 0, 1, "okg.test/big", "y" * 60_000)
        _, _, err = mon.wait(lambda a: a[0] == "pod", what="the annotation refused")
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/small", "1", 0)
    wait_for(lambda: (pod.get("pod")["metadata"]["labels"] or {}).get("okg.test/small") == "1",
             timeout=120, what="the label delivered")
    assert "Too long" in err and 'annotation "okg.test/big"' in err
    # The refused annotation stays pending (it is not on the API server) until written again.
    wait_for(lambda: prop(s, "Pending") == 1, what="only the refused field pending")
    assert "okg.test/big" not in pod.get("pod")["metadata"]["annotations"]
    s.wait_log(r'refused the pod write \(HTTP 422\): annotation "okg.test/big": .*Too long')


def test_refused_field_is_isolated_from_its_own_request(kube, suite_factory, tmp_path):
    """S1, another member: the refused annotation and a label arrive in one call (one patch);
    the label is delivered, the annotation reported."""
    pod = Pod(kube, tmp_path)
    crowd_annotations(kube, pod)
    s = start_suite(suite_factory, pod)
    with s.monitor(S[2], "WriteFailed").listen("sts", "marker", 0, "") as mon:
        call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/with", "big", 2,
             "okg.test/big", "y" * 60_000, "okg.test/note", "fine")
        _, _, err = mon.wait(lambda a: a[0] == "pod", what="the annotation refused")
    wait_for(lambda: (pod.get("pod")["metadata"]["labels"] or {}).get("okg.test/with") == "big",
             timeout=120, what="the label delivered")
    wait_for(lambda: prop(s, "Pending") == 1, timeout=120, what="the rest delivered")
    assert 'annotation "okg.test/big"' in err
    meta = pod.get("pod")["metadata"]
    assert meta["labels"]["okg.test/with"] == "big"
    assert meta["annotations"]["okg.test/note"] == "fine"
    assert "okg.test/big" not in meta["annotations"]
    s.wait_log("sending them one at a time")


def test_journal_stays_small_during_an_outage(kube, suite_factory, tmp_path):
    """S3: nothing listens at the API server's address; 100 writes of one 60 KB annotation
    leave a journal the size of what is pending (one value), not of the outage."""
    pod = Pod(kube, tmp_path)
    point_at(pod, kube, tmp_path, f"https://127.0.0.1:{free_port()}", token="unused")
    s = start_suite(suite_factory, pod)
    for i in range(100):
        call(s, "SetPodMetadata", "a{ss}a{ss}", 0, 1, "okg.test/big", f"{i:04d}" + "y" * 60_000)
    assert prop(s, "Pending") == 1
    size = (s.state / "storaged.journal").stat().st_size
    # 100 x 60 KB would be 6 MB; compaction keeps it within twice the state plus 1 MiB.
    assert size < 2 * 1024 * 1024, size


def test_start_on_a_large_damaged_journal(kube, suite_factory, tmp_path):
    """S3: a journal of 69 MB (1,150 writes during an outage, before compaction bounded it)
    with a damaged line starts, the last value reaches the pod, and the loss is reported."""
    pod = Pod(kube, tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    with open(state / "storaged.journal", "w") as f:
        for i in range(1150):
            if i == 600:
                f.write('{"seq": 600, "object": "pod", "set": [{"kind": "annot\n')
            entry = {"seq": i + 1, "object": "pod",
                     "set": [{"kind": "annotation", "key": "okg.test/big",
                              "value": f"{i:04d}" + "y" * 60_000}]}
            f.write(json.dumps(entry) + "\n")
    assert (state / "storaged.journal").stat().st_size > 64 * 1024 * 1024
    s = suite_factory(make_config(free_port(), []).replace("plugins:\n", "plugins: []\n"))
    assert s.state == state
    s.start(pod.env)
    s.wait_ready()
    wait_for(lambda: (pod.get("pod")["metadata"].get("annotations") or {}).get("okg.test/big", "")[:4]
             == "1149", timeout=120, what="the last value on the pod")
    s.wait_log(r"journal damaged: 1 entry \(\d+ bytes\) could not be read; the writes they held are lost")
    assert (state / "storaged.journal").stat().st_size < 1024 * 1024


def test_event_retried_after_a_lost_answer_is_created_once(kube, suite_factory, tmp_path, proxy):
    """S5: the API server creates the Event but its answer is lost (the proxy drops it); the
    retry finds it created (409 AlreadyExists) and there is one Event, not two."""
    pod, s = proxied_after_a_write(kube, suite_factory, tmp_path, proxy)
    assert proxy.deafen() >= 1
    call(s, "PostEvent", "sss", "Normal", "OkgLostAnswer", "created once")

    def ours():
        items = kube.admin.get(f"/api/v1/namespaces/{pod.ns}/events")[1]["items"]
        return [e for e in items if e["reason"] == "OkgLostAnswer"]
    wait_for(lambda: len(ours()) == 1, what="the Event created")
    wait_for(lambda: prop(s, "Pending") == 0, timeout=150, what="the Event acknowledged")
    assert len(ours()) == 1
    assert ours()[0]["metadata"]["name"].startswith(pod.name + ".")
    s.wait_log("was created by an earlier try")


def tls_error_after_write(kube, suite_factory, tmp_path, server, ca):
    pod = Pod(kube, tmp_path)
    point_at(pod, kube, tmp_path, server, ca=ca)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: "SSL" in prop(s, "LastError"), what="the TLS failure")
    return s, prop(s, "LastError")


def test_tls_failure_says_why_unknown_ca(kube, suite_factory, tmp_path):
    """S6: the API server's certificate is signed by a CA the kubeconfig does not name; the
    reason is in LastError and the log, not only curl's generic text."""
    _, other_ca = make_cert(str(tmp_path))
    s, err = tls_error_after_write(kube, suite_factory, tmp_path, kube.server, other_ca)
    assert err.startswith("SSL peer certificate or SSH remote key was not OK: ")
    assert "unable to get local issuer certificate" in err
    s.wait_log("unable to get local issuer certificate")


def test_tls_failure_says_why_name_mismatch(kube, suite_factory, tmp_path):
    """S6, another member: the address is not a name the certificate holds."""
    port = kube.server.rsplit(":", 1)[1]
    s, err = tls_error_after_write(kube, suite_factory, tmp_path, f"https://[::ffff:127.0.0.1]:{port}",
                                   kube.ca)
    assert "no alternative certificate subject name matches target host name" in err
    s.wait_log("no alternative certificate subject name matches")


def test_start_reads_back_over_one_connection(kube, suite_factory, tmp_path, proxy):
    """A start with acknowledged values in the journal reads the pod and reads back the pod,
    the GameServer and the result ConfigMap at once: those requests share one connection
    (they used to open one each, 4 in all), counted by the proxy the sidecar talks through."""
    pod = Pod(kube, tmp_path)
    through(pod, proxy, kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/a", "1", 0)
    call(s, "PutRecord", "s", json.dumps({"version": "v1"}))
    wait_for(lambda: prop(s, "Pending") == 0, what="the writes")
    s.stop()
    before = proxy.connections()
    s.start(pod.env)
    s.wait_ready()
    # The pod's read, three read-backs and the pod watch.
    wait_for(lambda: prop(s, "PodResourceVersion") != "" and prop(s, "RequestsSent") >= 5,
             what="the start's requests")
    assert proxy.connections() - before == 1


def test_start_with_pending_writes_uses_one_connection(kube, suite_factory, tmp_path, proxy):
    """Another member: a journal with writes to three objects still pending; the start sends
    them and reads the pod at once, over one connection."""
    pod = Pod(kube, tmp_path)
    through(pod, proxy, kube, tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    entries = [
        {"seq": 1, "object": "gameserver", "set": [{"kind": "opsState", "key": "", "value": "Allocated"}]},
        {"seq": 2, "object": "pod", "set": [{"kind": "label", "key": "okg.test/a", "value": "1"}]},
        {"seq": 3, "object": "records", "set": [{"kind": "data", "key": pod.name,
                                                 "value": json.dumps({"version": "v1"})}]},
    ]
    (state / "storaged.journal").write_text("".join(json.dumps(e) + "\n" for e in entries))
    s = start_suite(suite_factory, pod)
    assert s.state == state
    wait_for(lambda: prop(s, "Pending") == 0 and prop(s, "PodResourceVersion") != "",
             what="the pending writes")
    assert ops_state(pod) == "Allocated"
    assert proxy.connections() == 1
