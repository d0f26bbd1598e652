"""The real-Kubernetes test harness (tests/kube/, kube.py) does what the storage tests rely on:
verified TLS and token auth, the GameServer CRD, the project's RBAC as a bound service-account
token, the audit log, and an API server outage that keeps the data."""
import ssl
import threading

import pytest

from kube import (KubeClient, KubeUnreachable, kube, load_manifests,  # noqa: F401
                  sa_username, start_apiserver, status_message, stop_apiserver, wait_status,
                  write_atomic)


def test_apiserver_answers_with_verified_tls_and_token_auth(kube):
    status, version = kube.admin.get("/version")
    assert status == 200, version
    assert version["gitVersion"].startswith("v1.20."), version
    assert kube.admin.get("/readyz")[0] == 200

    # No token: authenticated as nobody, so RBAC refuses.
    status, body = kube.client().get("/api/v1/namespaces")
    assert status in (401, 403), body
    # A wrong token is rejected.
    assert kube.client(token="not-a-token").get("/api/v1/namespaces")[0] == 401

    # The serving certificate only verifies against the test CA.
    other = KubeClient(kube.server, kube.ca, token=kube.admin_token)
    other.ctx = ssl.create_default_context()
    with pytest.raises(KubeUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        other.get("/version")


def test_gameserver_crd_create_and_merge_patch(kube):
    ns = kube.new_namespace("gs")
    c = kube.admin
    gs = c.create_gameserver(ns, "game-0", ops_state="None",
                             spec={"deletionPriority": 10, "containers": [{"name": "game"}]})
    assert gs["spec"]["opsState"] == "None"
    path = c.gameserver_path(ns, "game-0")
    rv1 = c.resource_version(path)

    status, body = c.patch(path, {"spec": {"opsState": "WaitToBeDeleted"},
                                  "metadata": {"labels": {"okg-test": "yes"}}})
    assert status == 200, status_message(body)
    rv2 = c.resource_version(path)
    assert rv2 != rv1
    got = c.check(c.get(path), 200)
    assert got["spec"]["opsState"] == "WaitToBeDeleted"
    assert got["metadata"]["labels"] == {"okg-test": "yes"}
    # Fields the CRD does not type are kept as sent.
    assert got["spec"]["deletionPriority"] == 10
    assert got["spec"]["containers"] == [{"name": "game"}]

    # A merge patch that changes nothing does not bump the resourceVersion.
    assert c.patch(path, {"spec": {"opsState": "WaitToBeDeleted"}})[0] == 200
    assert c.resource_version(path) == rv2

    # opsState is typed: a number is refused.
    status, body = c.patch(path, {"spec": {"opsState": 3}})
    assert status == 422, body
    # Custom resources take no strategic merge patch (clients must use merge patch).
    assert c.patch(path, {"spec": {"opsState": "None"}}, kind="strategic")[0] == 415
    status, body = c.patch(path, [{"op": "replace", "path": "/spec/opsState", "value": "None"}],
                           kind="json")
    assert status == 200 and body["spec"]["opsState"] == "None", body

    # A GameServerSet can own a pod and a GameServer.
    gss = c.create_gameserverset(ns, "game", replicas=1)
    pod = c.create_pod(ns, "game-1", owner=gss)
    assert pod["metadata"]["ownerReferences"][0]["uid"] == gss["metadata"]["uid"]
    assert pod["status"]["phase"] == "Pending"


def sidecar_with_objects(kube, prefix):
    ns, sa = kube.sidecar_namespace(prefix)
    kube.admin.create_pod(ns, "game-0")
    kube.admin.create_gameserver(ns, "game-0")
    return ns, sa


def test_rbac_allows_what_the_sidecar_needs(kube):
    ns, sa = sidecar_with_objects(kube, "rbac-ok")

    pod_path = sa.pod_path(ns, "game-0")
    pod = sa.check(sa.get(pod_path), 200, what="get own pod")
    assert pod["metadata"]["name"] == "game-0"
    body = sa.check(sa.patch(pod_path, {"metadata": {
        "annotations": {"okg.test/hot-update": "v2"}, "labels": {"okg.test/version": "v2"}}}),
        200, what="patch own pod")
    assert body["metadata"]["annotations"]["okg.test/hot-update"] == "v2"

    gs_path = sa.gameserver_path(ns, "game-0")
    sa.check(sa.get(gs_path), 200, what="get gameserver")
    body = sa.check(sa.patch(gs_path, {"spec": {"opsState": "Allocated"}}), 200,
                    what="patch gameserver")
    assert body["spec"]["opsState"] == "Allocated"

    cm_path = sa.configmap_path(ns, "sidecar-result")
    assert sa.get(cm_path)[0] == 404
    sa.check(sa.post(sa.configmap_path(ns), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sidecar-result"},
        "data": {"game-0": '{"version":"v1"}'}}), 201, what="create configmap")
    sa.check(sa.patch(cm_path, {"data": {"game-1": '{"version":"v2"}'}}), 200,
             what="patch configmap key")
    assert sa.check(sa.get(cm_path), 200)["data"] == {
        "game-0": '{"version":"v1"}', "game-1": '{"version":"v2"}'}
    # Pruning: list the pods of its namespace (by label), remove a key on condition that the
    # ConfigMap is as read: a stale resourceVersion is refused (409) and removes nothing.
    pods = sa.check(sa.get(sa.pod_path(ns), params={"labelSelector": "game.kruise.io/owner-gss=game"}),
                    200, what="list pods")
    assert pods["kind"] == "PodList"
    rv = sa.check(sa.get(cm_path), 200)["metadata"]["resourceVersion"]
    sa.check(sa.patch(cm_path, {"data": {"game-2": '{"version":"v3"}'}}), 200)
    status, body = sa.patch(cm_path, {"metadata": {"resourceVersion": rv}, "data": {"game-1": None}})
    assert status == 409, (status, body)
    assert set(sa.check(sa.get(cm_path), 200)["data"]) == {"game-0", "game-1", "game-2"}
    rv = sa.check(sa.get(cm_path), 200)["metadata"]["resourceVersion"]
    sa.check(sa.patch(cm_path, {"metadata": {"resourceVersion": rv}, "data": {"game-1": None}}), 200,
             what="remove a configmap key")
    assert set(sa.check(sa.get(cm_path), 200)["data"]) == {"game-0", "game-2"}

    sa.check(sa.post(f"/api/v1/namespaces/{ns}/events", {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "game-0.hot-update", "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "game-0",
                           "namespace": ns, "uid": pod["metadata"]["uid"]},
        "reason": "HotUpdateSucceeded", "message": "updated to v2", "type": "Normal",
        "source": {"component": "okg-sidecar"}}), 201, what="create event")


@pytest.mark.parametrize("method,verb,resource", [
    ("other-ns-list-pods", "list", "pods"),
    ("delete-pod", "delete", "pods"),
    ("update-pod", "update", "pods"),
    ("get-secret", "get", "secrets"),
    ("list-secrets", "list", "secrets"),
    ("delete-gameserver", "delete", "gameservers"),
    ("list-configmaps", "list", "configmaps"),
    ("other-ns-pod", "get", "pods"),
    ("other-ns-configmap", "patch", "configmaps"),
    ("other-ns-gameserver", "patch", "gameservers"),
])
def test_rbac_denies_everything_else(kube, method, verb, resource):
    ns, sa = sidecar_with_objects(kube, "rbac-no")
    other = kube.new_namespace("other")
    kube.admin.create_pod(other, "game-0")
    kube.admin.create_gameserver(other, "game-0")
    kube.admin.check(kube.admin.post(kube.admin.configmap_path(other), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sidecar-result"}}), 201)

    calls = {
        "other-ns-list-pods": lambda: sa.get(sa.pod_path(other)),
        "delete-pod": lambda: sa.delete(sa.pod_path(ns, "game-0")),
        "update-pod": lambda: sa.put(sa.pod_path(ns, "game-0"),
                                     sa.check(sa.get(sa.pod_path(ns, "game-0")), 200)),
        "get-secret": lambda: sa.get(f"/api/v1/namespaces/{ns}/secrets/anything"),
        "list-secrets": lambda: sa.get(f"/api/v1/namespaces/{ns}/secrets"),
        "delete-gameserver": lambda: sa.delete(sa.gameserver_path(ns, "game-0")),
        "list-configmaps": lambda: sa.get(sa.configmap_path(ns)),
        "other-ns-pod": lambda: sa.get(sa.pod_path(other, "game-0")),
        "other-ns-configmap": lambda: sa.patch(sa.configmap_path(other, "sidecar-result"),
                                               {"data": {"x": "y"}}),
        "other-ns-gameserver": lambda: sa.patch(sa.gameserver_path(other, "game-0"),
                                                {"spec": {"opsState": "None"}}),
    }
    status, body = calls[method]()
    assert status == 403, f"{method}: HTTP {status}: {status_message(body)}"
    # The server's message names who, which verb and which resource: what okg-storaged reports.
    msg = body["message"]
    assert f'User "{sa_username(ns)}" cannot {verb} resource "{resource}"' in msg, msg
    assert body["reason"] == "Forbidden" and body["details"]["kind"] == resource, body
    # Nothing was deleted.
    assert kube.admin.get(kube.admin.pod_path(ns, "game-0"))[0] == 200
    assert kube.admin.get(kube.admin.gameserver_path(ns, "game-0"))[0] == 200


def test_audit_log_records_each_request(kube):
    ns, sa = sidecar_with_objects(kube, "audit")
    user = sa_username(ns)
    audit = kube.audit
    mark = audit.mark()

    sa.get(sa.pod_path(ns, "game-0"))
    sa.patch(sa.gameserver_path(ns, "game-0"), {"spec": {"opsState": "Maintaining"}})
    sa.patch(sa.gameserver_path(ns, "game-0"), {"spec": {"opsState": "None"}})
    assert sa.get(f"/api/v1/namespaces/{ns}/secrets")[0] == 403

    assert audit.wait_count(4, since=mark, user=user) == 4
    audit.settle()
    assert audit.count(mark, user=user) == 4
    assert audit.count(mark, user=user, verb="get", resource="pods", name="game-0",
                       code=200) == 1
    assert audit.count(mark, user=user, verb="patch", resource="gameservers",
                       api_group="game.kruise.io", namespace=ns, code=200) == 2
    assert audit.count(mark, user=user, verb="list", resource="secrets", code=403) == 1

    # Nothing more arrives on its own: a steady state can be asserted as zero requests (and
    # settle()'s marker, an admin request without an object, is not counted as theirs).
    mark2 = audit.mark()
    audit.settle()
    assert audit.count(mark2, user=user) == 0


def test_token_file_rotation_and_revocation(kube, tmp_path):
    ns, _ = sidecar_with_objects(kube, "token")
    admin = kube.admin
    token_file = tmp_path / "token"

    old, revoke_old = admin.revocable_token(ns)
    token_file.write_text(old + "\n")
    reader = kube.client(token_file=str(token_file))
    fixed = kube.client(token=old)
    assert reader.get(reader.pod_path(ns, "game-0"))[0] == 200
    assert fixed.get(fixed.pod_path(ns, "game-0"))[0] == 200

    # Rotate: a new token (bound to a new secret) replaces the file, the old one is revoked.
    new, _ = admin.revocable_token(ns)
    write_atomic(token_file, new + "\n")
    revoke_old()
    assert reader.get(reader.pod_path(ns, "game-0"))[0] == 200
    # The API server caches a good token for 10 s; after that the revoked one is refused.
    assert wait_status(fixed, fixed.pod_path(ns, "game-0"), 401) == 401
    assert reader.get(reader.pod_path(ns, "game-0"))[0] == 200

    # Which token a request carried shows in the audit log when the tokens belong to two
    # ServiceAccounts with the same Role.
    other_sa = kube.add_service_account(ns, "okg-sidecar-next")
    mark = kube.audit.mark()
    admin.write_token_file(token_file, ns, other_sa)
    assert reader.get(reader.pod_path(ns, "game-0"))[0] == 200
    assert kube.audit.wait_count(1, since=mark, user=sa_username(ns, other_sa),
                                 resource="pods", verb="get") == 1

    # write_token_file: a fresh TokenRequest token swapped in place.
    t3 = admin.write_token_file(token_file, ns)
    assert token_file.read_text().strip() == t3 != new
    assert reader.get(reader.pod_path(ns, "game-0"))[0] == 200


def test_kubeconfig_for_the_sidecar(kube, tmp_path):
    ns, _ = kube.sidecar_namespace("kcfg")
    token_file = tmp_path / "token"
    kube.admin.write_token_file(token_file, ns)
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", ns, token_file=str(token_file))
    (cfg,) = load_manifests(path)
    cluster = cfg["clusters"][0]["cluster"]
    assert cluster["server"] == kube.server
    assert cluster["certificate-authority"] == kube.ca
    assert cfg["users"][0]["user"] == {"tokenFile": str(token_file)}
    assert cfg["contexts"][0]["context"]["namespace"] == ns
    assert cfg["current-context"] == cfg["contexts"][0]["name"]
    c = kube.client(token_file=cfg["users"][0]["user"]["tokenFile"])
    assert c.get(c.configmap_path(ns, "sidecar-result"))[0] == 404


def test_fifty_writers_one_configmap(kube):
    ns, sa = kube.sidecar_namespace("fifty")
    sa.check(sa.post(sa.configmap_path(ns), {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "sidecar-result"}}), 201)
    path = sa.configmap_path(ns, "sidecar-result")
    errors = []

    def writer(i):
        try:
            st, body = sa.patch(path, {"data": {f"game-{i}": f'{{"version":"v{i}"}}'}})
            if st != 200:
                errors.append((i, st, status_message(body)))
        except KubeUnreachable as e:
            errors.append((i, e))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    data = sa.check(sa.get(path), 200)["data"]
    assert data == {f"game-{i}": f'{{"version":"v{i}"}}' for i in range(50)}


def test_apiserver_outage_keeps_the_data(kube):
    ns, sa = kube.sidecar_namespace("outage")
    path = sa.configmap_path(ns, "sidecar-result")
    sa.check(sa.post(sa.configmap_path(ns), {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "sidecar-result"},
                                             "data": {"game-0": "v7"}}), 201)
    rv = sa.resource_version(path)

    stop_apiserver()
    try:
        with pytest.raises(KubeUnreachable, match="Connection refused"):
            sa.get(path)
    finally:
        start_apiserver()

    # Same address, same CA, same token still valid, same object.
    got = sa.check(sa.get(path), 200)
    assert got["data"] == {"game-0": "v7"}
    assert got["metadata"]["resourceVersion"] == rv
    assert sa.check(sa.patch(path, {"data": {"game-1": "v8"}}), 200)["data"]["game-1"] == "v8"
