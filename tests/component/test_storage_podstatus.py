"""okg-storaged's pod conditions (Storage1.SetPodConditions, GetPod, PodResourceVersion), the
write OKG's serviceQualities read (docs/service-quality.md): against a real kube-apiserver
(merged by type with a strategic merge patch of pods/NAME/status, other writers' conditions
untouched, re-asserted when a status replace wipes them, nothing sent in a steady state) and on
the local store."""
import json
import re
import subprocess
import time

from conftest import BUILD, free_port, make_config, scaled, wait_for  # noqa: F401
from kube import kube, sa_username  # noqa: F401
from test_storage_kube import NO_PLUGINS, Pod, call, prop, start_suite

S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")
SQ = "game.kruise.io/healthy"


def set_conditions(s, *conds, check=True):
    """conds: (type, status, message) triples, through busctl as a plugin would call it."""
    args = [str(len(conds))]
    for c in conds:
        args += [str(x) for x in c]
    return s.busctl("call", *S, "SetPodConditions", "a(sss)", *args, json_out=check, check=check)


def gvariant_str(v):
    out = "'"
    for ch in v:
        if ch in "'\\":
            out += "\\" + ch
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out += "\\u%04x" % ord(ch)
        else:
            out += ch
    return out + "'"


def call_error(s, method, gvariant_args=()):
    """Calls through gdbus, which shows the D-Bus error name; returns it (None on success)."""
    cmd = ["gdbus", "call", "--address", s.bus_address, "--dest", S[0], "--object-path", S[1],
           "--method", f"{S[2]}.{method}", *gvariant_args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(60))
    if r.returncode == 0:
        return None
    m = re.search(r"GDBus\.Error:([\w.]+)", r.stderr)
    assert m, r.stderr
    return m.group(1)


def set_conditions_error(s, *conds):
    text = "[" + ", ".join("(" + ", ".join(gvariant_str(x) for x in c) + ")" for c in conds) + "]"
    if not conds:
        text = "@a(sss) []"
    return call_error(s, "SetPodConditions", [text])


INVALID = "io.kruise.game.Storage1.Error.InvalidArgument"
NOT_KNOWN = "io.kruise.game.Storage1.Error.NotKnown"


def conditions(pod_obj):
    return {c["type"]: c for c in (pod_obj.get("status") or {}).get("conditions") or []}


def store(s):
    with open(s.state / "local-store.json") as f:
        return json.load(f)


def local_suite(suite_factory):
    s = suite_factory(make_config(free_port(), []).replace("plugins:\n", NO_PLUGINS))
    s.start({"POD_NAME": "gs-demo-3", "POD_NAMESPACE": "games"})
    s.wait_ready()
    assert prop(s, "Backend") == "local"
    return s


# ---- the local store ----

def test_local_store_mirrors_conditions(suite_factory):
    s = local_suite(suite_factory)
    # Nothing known about the pod yet: a named error.
    assert call_error(s, "GetPod") == NOT_KNOWN
    assert prop(s, "PodResourceVersion") == ""

    set_conditions(s, (SQ, "True", "idle"), ("game.kruise.io/players", "False", "0|\n"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    pod = store(s)["pods"]["games/gs-demo-3"]
    c = conditions(pod)
    assert c[SQ]["status"] == "True" and c[SQ]["message"] == "idle"
    assert c["game.kruise.io/players"]["message"] == "0|\n"
    assert "reason" not in c[SQ] and c[SQ]["lastProbeTime"] and c[SQ]["lastTransitionTime"]
    rv1 = prop(s, "PodResourceVersion")
    assert rv1 != ""
    got = json.loads(call(s, "GetPod", "")["data"][0])
    assert conditions(got)[SQ]["message"] == "idle"

    # One type changes, by merge: the other stays; the resourceVersion moves.
    set_conditions(s, (SQ, "False", "busy"))
    wait_for(lambda: prop(s, "PodResourceVersion") != rv1, what="a newer pod")
    c = conditions(store(s)["pods"]["games/gs-demo-3"])
    assert c[SQ]["status"] == "False" and c[SQ]["message"] == "busy"
    assert c["game.kruise.io/players"]["status"] == "False"


def test_local_store_bad_arguments_change_nothing(suite_factory):
    s = local_suite(suite_factory)
    set_conditions(s, (SQ, "True", "ok"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    before = store(s)
    seq_before = set_conditions(s, (SQ, "True", "ok"))["data"][0]
    bad = [
        ("", "True", "m"),                              # empty type
        ("game.kruise.io/x", "true", "m"),              # status not True/False/Unknown
        ("game.kruise.io/x", "Yes", "m"),
        ("game.kruise.io/x", "True", "a\x01b"),         # control character
        ("game.kruise.io/x", "True", "x" * 1025),        # longer than Kruise's 1024 bytes
        ("bad type", "True", "m"),                      # not a qualified name
        ("Ready", "False", "m"),                        # kubelet's own
    ]
    for cond in bad:
        assert set_conditions_error(s, (SQ, "False", "changed"), cond) == INVALID, cond
    assert set_conditions_error(s, (SQ, "False", "a"), (SQ, "True", "b")) == INVALID
    assert set_conditions_error(s) == INVALID
    assert store(s) == before
    # Nothing was journaled: the next write gets the next sequence number.
    assert set_conditions(s, (SQ, "True", "ok"))["data"][0] == seq_before + 1


# ---- a real kube-apiserver ----

def set_ready(kube, pod, status="True"):
    """kubelet's part: Ready (and a readiness gate) written by the admin through pods/status."""
    kube.admin.check(kube.admin.patch(
        kube.admin.pod_path(pod.ns, pod.name) + "/status",
        {"status": {"conditions": [
            {"type": "Ready", "status": status},
            {"type": "example.com/gate", "status": "True", "reason": "Gate", "message": "open"}]}},
        kind="strategic"), what="Ready by the admin")


def test_kube_conditions_reach_the_pod_and_others_survive(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    set_ready(kube, pod)
    s = start_suite(suite_factory, pod)
    wait_for(lambda: prop(s, "PodResourceVersion") != "", what="the pod read")
    got = json.loads(call(s, "GetPod", "")["data"][0])
    assert got["metadata"]["name"] == pod.name and conditions(got)["Ready"]["status"] == "True"

    seq = set_conditions(s, (SQ, "True", "idle"), ("game.kruise.io/players", "False", "a|b\nc"))["data"][0]
    assert seq > 0
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    c = conditions(pod.get("pod"))
    assert c[SQ]["status"] == "True" and c[SQ]["message"] == "idle" and "reason" not in c[SQ]
    assert c[SQ]["lastProbeTime"] and c[SQ]["lastTransitionTime"]
    assert c["game.kruise.io/players"]["message"] == "a|b\nc"
    assert c["Ready"]["status"] == "True"
    gate = {k: v for k, v in c["example.com/gate"].items() if v is not None}
    assert gate == {"type": "example.com/gate", "status": "True", "reason": "Gate", "message": "open"}
    # The newer pod is seen, and GetPod shows it.
    wait_for(lambda: prop(s, "PodResourceVersion") == pod.rv("pod"), what="PodResourceVersion")
    assert conditions(json.loads(call(s, "GetPod", "")["data"][0]))[SQ]["message"] == "idle"
    first_transition = c[SQ]["lastTransitionTime"]

    # The admin flips Ready meanwhile; our next write leaves it alone.
    set_ready(kube, pod, "False")
    time.sleep(1.1)   # lastProbeTime has a resolution of one second
    set_conditions(s, (SQ, "True", "busy"))
    wait_for(lambda: conditions(pod.get("pod"))[SQ]["message"] == "busy", what="message changed")
    c = conditions(pod.get("pod"))
    assert c["Ready"]["status"] == "False" and c["example.com/gate"]["status"] == "True"
    # Same status: the transition time stays.
    assert c[SQ]["lastTransitionTime"] == first_transition
    set_conditions(s, (SQ, "False", "busy"))
    wait_for(lambda: conditions(pod.get("pod"))[SQ]["status"] == "False", what="status changed")
    assert conditions(pod.get("pod"))[SQ]["lastTransitionTime"] != first_transition
    # The API server saw strategic merge patches of the status subresource.
    kube.audit.settle()
    assert kube.audit.count(user=sa_username(pod.ns), verb="patch", resource="pods",
                            subresource="status", namespace=pod.ns) >= 3


def replace_status(kube, pod, keep=("Ready",)):
    """What some virtual-kubelet providers do: PUT the whole status, with only the conditions
    they know about (here kubelet's Ready). Returns the pod as the PUT wrote it (a later read
    may already show okg-storaged's re-assertion)."""
    c = kube.admin
    for _ in range(20):
        p = c.check(c.get(c.pod_path(pod.ns, pod.name)), what="read the pod")
        p["status"]["conditions"] = [x for x in p["status"].get("conditions") or []
                                     if x["type"] in keep]
        if not any(x["type"] == "Ready" for x in p["status"]["conditions"]):
            p["status"]["conditions"].append({"type": "Ready", "status": "True"})
        status, body = c.put(c.pod_path(pod.ns, pod.name) + "/status", p)
        if status != 409:   # okg-storaged wrote in between: read again, as a provider would
            break
    c.check((status, body), what="replace the status")
    return body


def test_kube_wiped_condition_is_reasserted(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "True", "idle"), ("game.kruise.io/players", "False", "7"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    assert SQ not in conditions(replace_status(kube, pod))
    wait_for(lambda: SQ in conditions(pod.get("pod")), what="the condition re-asserted")
    c = conditions(pod.get("pod"))
    assert c[SQ]["message"] == "idle" and c["game.kruise.io/players"]["message"] == "7"
    assert c["Ready"]["status"] == "True"
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged again")


def test_kube_reasserts_are_bounded(kube, suite_factory, tmp_path):
    """Someone keeps wiping: okg-storaged re-asserts with a growing interval, not once per
    wipe; when the wiping stops, its conditions are back."""
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "True", "idle"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    kube.audit.settle()
    mark = kube.audit.mark()
    wipes = 20
    for _ in range(wipes):
        replace_status(kube, pod)
        time.sleep(0.2)
    kube.audit.settle()
    patches = kube.audit.count(since=mark, user=sa_username(pod.ns), verb="patch",
                               resource="pods", subresource="status")
    # At once, then 1 s, 2 s, 4 s ... after the previous one: far fewer than the wipes.
    assert patches <= 6, f"{patches} re-asserts for {wipes} wipes"
    wait_for(lambda: SQ in conditions(pod.get("pod")), what="re-asserted after the wiping stopped")


def test_kube_steady_state_sends_nothing(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    set_ready(kube, pod)
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "True", "idle"), ("game.kruise.io/players", "True", ""))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    wait_for(lambda: prop(s, "PodResourceVersion") == pod.rv("pod"), what="the watch caught up")
    kube.audit.settle()
    mark = kube.audit.mark()
    rv = pod.rv("pod")
    sent = prop(s, "RequestsSent")
    # Several probe periods (3 s by default) of a plugin handing on the same results.
    for _ in range(4):
        set_conditions(s, (SQ, "True", "idle"), ("game.kruise.io/players", "True", ""))
        time.sleep(3)
    kube.audit.settle()
    assert pod.rv("pod") == rv
    assert kube.audit.count(since=mark, user=sa_username(pod.ns)) == 0
    assert prop(s, "RequestsSent") == sent
    assert prop(s, "PodResourceVersion") == rv


def test_kube_recreated_pod_gets_its_conditions_again(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "False", "down"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    c = kube.admin
    c.check(c.delete(c.pod_path(pod.ns, pod.name) + "?gracePeriodSeconds=0"), 200, what="delete")
    wait_for(lambda: c.get(c.pod_path(pod.ns, pod.name))[0] == 404, what="the pod gone")
    new = c.create_pod(pod.ns, pod.name, labels={"game.kruise.io/owner-gss": pod.gss})
    assert SQ not in conditions(new)
    wait_for(lambda: SQ in conditions(pod.get("pod") or {}), what="conditions on the new pod")
    got = pod.get("pod")
    assert got["metadata"]["uid"] == new["metadata"]["uid"]
    assert conditions(got)[SQ]["message"] == "down"
    wait_for(lambda: json.loads(call(s, "GetPod", "")["data"][0])["metadata"]["uid"]
             == new["metadata"]["uid"], what="GetPod shows the new pod")


def test_kube_restart_keeps_conditions_and_writes_only_what_is_missing(kube, suite_factory, tmp_path):
    """okg-storaged killed: the journal has the acknowledged conditions. A restart with the
    pod unchanged sends no write; one after a status replace writes them again."""
    import os
    import signal
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "True", "idle"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")

    def kill_storage():
        pid = s.pid("storage")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid) and s.units()["storage"]["ready"],
                 what="storage restarted")

    kube.audit.settle()
    mark = kube.audit.mark()
    rv = pod.rv("pod")
    kill_storage()
    wait_for(lambda: prop(s, "PodResourceVersion") == rv, what="the pod read after the restart")
    kube.audit.settle()
    assert kube.audit.count(since=mark, user=sa_username(pod.ns), verb="patch") == 0
    # One read of the pod at start, which checks the journal's conditions too.
    assert kube.audit.count(since=mark, user=sa_username(pod.ns), verb="get", resource="pods") == 1
    assert pod.rv("pod") == rv

    # Replaced while okg-storaged cannot see it (stopped), then a restart.
    pid = s.pid("storage")
    os.kill(pid, signal.SIGSTOP)
    try:
        replace_status(kube, pod)
    finally:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid) and s.units()["storage"]["ready"],
             what="storage restarted")
    wait_for(lambda: SQ in conditions(pod.get("pod")), what="re-asserted after the restart")
    assert conditions(pod.get("pod"))[SQ]["message"] == "idle"


def test_kube_watch_reopened_from_where_it_was(kube, suite_factory, tmp_path):
    """The watch ends after its timeoutSeconds (here 2 s instead of about 20 minutes) and is
    opened again from the last resourceVersion: no reads of the pod, no writes, and a status
    replace after a few re-opens is still noticed."""
    pod = Pod(kube, tmp_path)
    pod.env["OKG_STORAGED_WATCH_TIMEOUT_SEC"] = "2"
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "True", "idle"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    kube.audit.settle()
    mark = kube.audit.mark()
    rv = pod.rv("pod")
    user = sa_username(pod.ns)
    wait_for(lambda: kube.audit.count(since=mark, user=user, verb="watch", resource="pods") >= 3,
             what="the watch re-opened three times")
    kube.audit.settle()
    assert kube.audit.count(since=mark, user=user, verb="patch") == 0
    assert kube.audit.count(since=mark, user=user, verb="get", resource="pods") == 0
    assert pod.rv("pod") == rv
    replace_status(kube, pod)
    wait_for(lambda: SQ in conditions(pod.get("pod")), what="re-asserted")


def test_kube_signals_acknowledged_refused_and_resource_version(kube, suite_factory, tmp_path):
    """What the plugin sees: Acknowledged("podstatus", seq), PropertiesChanged carrying the new
    PodResourceVersion, and WriteFailed("podstatus", ...) naming the condition when the Role
    does not allow patching pods/status."""
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    wait_for(lambda: prop(s, "PodResourceVersion") != "", what="the pod read")
    with s.monitor(S[2], "Acknowledged").listen("st", "marker", 0) as acks, \
            s.monitor("org.freedesktop.DBus.Properties", "PropertiesChanged").listen(
                "sa{sv}as", "marker", 0, 0) as changes:
        seq = set_conditions(s, (SQ, "True", "idle"))["data"][0]
        acks.wait(lambda a: a == ["podstatus", seq], what="Acknowledged podstatus")
        rv = pod.rv("pod")
        changes.wait(lambda a: a[0] == S[2] and (a[1].get("PodResourceVersion") or {}).get("data") == rv,
                     what="PodResourceVersion changed to the pod's")

    # Without patch on pods/status: refused, reported, the condition named; nothing else held.
    c = kube.admin
    role = c.check(c.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{pod.ns}/roles/okg-sidecar"))
    role["rules"] = [r for r in role["rules"] if r.get("resources") != ["pods/status"]]
    c.check(c.put(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{pod.ns}/roles/okg-sidecar", role))
    c.wait_access(pod.ns, "okg-sidecar", "patch", "pods", subresource="status", allowed=False)
    with s.monitor(S[2], "WriteFailed").listen("sts", "marker", 0, "") as failed:
        seq = set_conditions(s, (SQ, "False", "down"))["data"][0]
        obj, fseq, message = failed.wait(lambda a: a[0] == "podstatus", what="WriteFailed podstatus")
    assert fseq == seq and f'condition "{SQ}"' in message and "forbidden" in message.lower()
    assert conditions(pod.get("pod"))[SQ]["status"] == "True"
    call(s, "SetPodMetadata", "a{ss}a{ss}", 1, "okg.test/after", "1", 0)
    wait_for(lambda: (pod.get("pod")["metadata"]["labels"] or {}).get("okg.test/after") == "1",
             what="a label written after the refusal")


def admin_condition(kube, pod, status, message):
    """Another writer of our condition type (kruise-daemon on a normal node, or a provider
    writing back a stale copy)."""
    kube.admin.check(kube.admin.patch(
        kube.admin.pod_path(pod.ns, pod.name) + "/status",
        {"status": {"conditions": [{"type": SQ, "status": status, "message": message}]}},
        kind="strategic"), what="the condition by the admin")


def test_kube_another_writer_is_not_fought_a_stale_copy_is(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path)
    s = start_suite(suite_factory, pod)
    set_conditions(s, (SQ, "True", "idle"))
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    set_conditions(s, (SQ, "True", "busy"))
    wait_for(lambda: conditions(pod.get("pod"))[SQ]["message"] == "busy", what="busy written")
    # A stale copy of the status (our value before): written again.
    admin_condition(kube, pod, "True", "idle")
    wait_for(lambda: conditions(pod.get("pod"))[SQ]["message"] == "busy", what="busy re-asserted")
    wait_for(lambda: prop(s, "Pending") == 0, what="acknowledged")
    # A value okg-storaged never wrote: another writer serves the condition; left alone.
    kube.audit.settle()
    mark = kube.audit.mark()
    admin_condition(kube, pod, "False", "written by kruise-daemon")
    s.wait_log(r"hold a value it never wrote")
    time.sleep(3)
    kube.audit.settle()
    assert kube.audit.count(since=mark, user=sa_username(pod.ns), verb="patch") == 0
    assert conditions(pod.get("pod"))[SQ]["message"] == "written by kruise-daemon"
    assert prop(s, "Pending") == 0
    # Until the plugin hands on a value again.
    set_conditions(s, (SQ, "True", "busy"))
    wait_for(lambda: conditions(pod.get("pod"))[SQ]["message"] == "busy", what="written again")
