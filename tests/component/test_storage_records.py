"""The result ConfigMap against a real kube-apiserver (tests/kube/): records of pods that are
gone (a GameServerSet's scale-in, a pod that never came back) are removed after
storage.recordPruneAfterSeconds; records of pods that exist, with or without the GameServerSet
label, and of other sets are kept; a list the API server refuses removes nothing. The sidecar
runs with the project's own RBAC from deploy/ and a TokenRequest token, as in a pod."""
import json

from conftest import wait_for
from kube import kube  # noqa: F401
from test_storage_kube import Pod, call, prop, start_suite

CM = "sidecar-result"
# Safety nets against hangs only: rounds run every second with a grace period of 2 s.
TIMEOUT = 90


def record(gss=None, version="v1", namespace=None):
    # A URL as real records have: a '/' is escaped differently by json-c and Go.
    r = {"version": version, "appliedAt": "2026-12-01T00:00:00.000Z",
         "url": f"https://cdn.example.com/game/{version}/config.json?a=1&b=<2>"}
    if gss:
        r["gameServerSet"] = gss
    if namespace:
        r["namespace"] = namespace
    return json.dumps(r)


def seed(kube, ns, data):
    """The ConfigMap as other pods' sidecars left it."""
    kube.admin.check(kube.admin.post(kube.admin.configmap_path(ns),
                                     {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": CM}, "data": data}), 201,
                     what="seed the result ConfigMap")


def keys(kube, ns):
    status, cm = kube.admin.get(kube.admin.configmap_path(ns, CM))
    assert status == 200, cm
    return set((cm.get("data") or {}).keys())


def test_records_of_gone_pods_are_pruned_live_ones_kept(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path, name="game-0", gss="game")
    a = kube.admin
    a.create_pod(pod.ns, "game-1", labels={"game.kruise.io/owner-gss": "game"})
    a.create_pod(pod.ns, "game-2", labels={"game.kruise.io/owner-gss": "game"})
    a.create_pod(pod.ns, "game-4")                   # of the set by name, without the label
    a.create_pod(pod.ns, "other-1", labels={"game.kruise.io/owner-gss": "other"})
    seed(kube, pod.ns, {
        "game-1": record("game"),                    # alive
        "game-2": record("game"),                    # deleted below (scale-in)
        "game-3": record("game"),                    # its pod is long gone
        "game-4": record("game"),                    # alive, not in the labelled list
        "game-7": record(),                          # gone, an old record without its set
        "game-8": record("game", namespace=pod.ns),  # gone, as okg-storaged writes it now
        "game-9": record("game", namespace="elsewhere"),  # another namespace's pod
        "other-1": record("other"),                  # another set's, alive
        "other-2": record("other"),                  # another set's, gone: its own pods prune it
        "lobby": json.dumps({"note": "not a record of a set"}),
    })
    s = start_suite(suite_factory, pod, "storage:\n  recordPruneAfterSeconds: 2\n")
    call(s, "PutRecord", "s", record(version="v2"))
    wait_for(lambda: prop(s, "Pending") == 0, timeout=TIMEOUT, what="own record written")
    a.check(a.delete(a.pod_path(pod.ns, "game-2")), 200, what="delete pod game-2")

    gone = {"game-2", "game-3", "game-7", "game-8"}
    wait_for(lambda: not keys(kube, pod.ns) & gone, timeout=TIMEOUT,
             what="records of gone pods removed")
    left = keys(kube, pod.ns)
    assert left == {"game-0", "game-1", "game-4", "game-9", "other-1", "other-2", "lobby"}
    own = json.loads(pod.get("cm")["data"]["game-0"])
    assert own["version"] == "v2" and own["namespace"] == pod.ns
    s.wait_log(r"Removed the record\(s\) of \d pod\(s\) gone for at least 2 s from ConfigMap "
               rf"{pod.ns}/{CM}: ", timeout=TIMEOUT)
    # A pod of the set that starts later finds the newest record of the set among those kept.
    got, who = call(s, "GetFleetRecord", "s", "version")["data"]
    assert who == "game-0" and json.loads(got)["version"] == "v2"


def test_refused_pod_list_prunes_nothing(kube, suite_factory, tmp_path):
    pod = Pod(kube, tmp_path, name="game-0", gss="game")
    a = kube.admin
    # The Role of a deployment made before pruning: no list on pods.
    role_path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{pod.ns}/roles/okg-sidecar"
    status, role = a.get(role_path)
    assert status == 200, role
    for rule in role["rules"]:
        if "pods" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "list"]
    a.check(a.put(role_path, role), 200, what="Role without list")
    a.wait_access(pod.ns, "okg-sidecar", "list", "pods", allowed=False)
    seed(kube, pod.ns, {"game-3": record("game"), "game-5": record()})
    s = start_suite(suite_factory, pod, "storage:\n  recordPruneAfterSeconds: 1\n")
    call(s, "PutRecord", "s", record(version="v2"))
    wait_for(lambda: prop(s, "Pending") == 0, timeout=TIMEOUT, what="own record written")
    # Several rounds, each refused: nothing is removed, and the log says why.
    for n in (1, 3):
        wait_for(lambda: s.log_text().count("Not pruning records this round: cannot list the "
                                            "pods (HTTP 403)") >= n,
                 timeout=TIMEOUT, what=f"{n} refused list(s)")
    assert 'cannot list resource \\"pods\\"' in s.log_text() or \
        'cannot list resource "pods"' in s.log_text()
    assert keys(kube, pod.ns) == {"game-0", "game-3", "game-5"}
    assert "Removed the record" not in s.log_text()
