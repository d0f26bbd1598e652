"""A real Kubernetes API server for the component tests: the session fixture `kube` builds (once,
cached) and starts kube-apiserver with etcd on loopback (tests/kube/), installs the GameServer
CRD, and hands out a small verified-TLS client, namespaces with the project's RBAC, bound
service-account tokens, kubeconfigs and the audit log. Standard library only.

Use it from a test module with `from kube import kube` (the fixture) plus whatever helpers.
If the API server cannot be built or started, every test using the fixture fails with the
reason; nothing is skipped."""
import contextlib
import fcntl
import itertools
import json
import os
import shlex
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import scaled

try:
    import yaml
except ImportError:  # python3-yaml is installed by tests/kube/build-apiserver.sh
    yaml = None

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUBE_DIR = os.path.join(TOP, "tests", "kube")
BUILD_SCRIPT = os.path.join(KUBE_DIR, "build-apiserver.sh")
ENV_SCRIPT = os.path.join(KUBE_DIR, "kube-env.sh")
GAMESERVER_CRD = os.path.join(KUBE_DIR, "gameserver-crd.yaml")
RBAC = os.path.join(TOP, "deploy", "rbac.yaml")
SIDECAR_SA = "okg-sidecar"

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}

# Resources the tests touch, so most requests need no discovery round trip (which would also
# show up in the audit log).
KNOWN = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Event"): ("events", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("game.kruise.io/v1alpha1", "GameServer"): ("gameservers", True),
    ("game.kruise.io/v1alpha1", "GameServerSet"): ("gameserversets", True),
}


class KubeUnreachable(ConnectionError):
    """The API server did not answer at all (refused, reset, timed out)."""


def load_manifests(src):
    """A list of objects from a YAML/JSON file path, a dict, or a list of dicts."""
    if isinstance(src, dict):
        return [src]
    if isinstance(src, (list, tuple)):
        return [o for o in src if o]
    with open(src) as f:
        text = f.read()
    if yaml is not None:
        return [o for o in yaml.safe_load_all(text) if o]
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise RuntimeError(f"{src}: python3-yaml is not installed and the file is not JSON "
                           f"(tests/kube/build-apiserver.sh installs python3-yaml): {e}")
    return doc.get("items", [doc]) if doc.get("kind", "").endswith("List") else [doc]


def _yaml_str(s):
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(str(s))


def write_kubeconfig(path, server, ca_path, token=None, token_file=None, namespace=None,
                     name="okg-test"):
    """A standard kubeconfig (block YAML) for the sidecar: one cluster, user and context."""
    if (token is None) == (token_file is None):
        raise ValueError("exactly one of token and token_file")
    user = (f"      token: {_yaml_str(token)}\n" if token is not None
            else f"      tokenFile: {_yaml_str(token_file)}\n")
    ctx_ns = f"      namespace: {_yaml_str(namespace)}\n" if namespace else ""
    text = ("apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            f"  - name: {_yaml_str(name)}\n"
            "    cluster:\n"
            f"      server: {_yaml_str(server)}\n"
            f"      certificate-authority: {_yaml_str(ca_path)}\n"
            "users:\n"
            f"  - name: {_yaml_str(name)}\n"
            "    user:\n"
            f"{user}"
            "contexts:\n"
            f"  - name: {_yaml_str(name)}\n"
            "    context:\n"
            f"      cluster: {_yaml_str(name)}\n"
            f"      user: {_yaml_str(name)}\n"
            f"{ctx_ns}"
            f"current-context: {_yaml_str(name)}\n")
    write_atomic(path, text)
    return str(path)


def write_atomic(path, text, mode=0o600):
    """Replaces path in one step (temp file in the same directory, fsync, rename), as the
    kubelet swaps a projected token: a reader sees the old or the new content, never half."""
    path = str(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class KubeClient:
    """Minimal REST client: verified TLS against the given CA, bearer token (or a token file,
    re-read on every request as a rotating client would). Every call returns (status, body),
    body parsed from JSON when it is JSON; HTTP errors are returned, not raised. Raises
    KubeUnreachable when there is no answer at all. Safe to use from several threads."""

    def __init__(self, server, ca, token=None, token_file=None, timeout=30):
        self.server = server.rstrip("/")
        self.ca = ca
        self.token = token
        self.token_file = token_file
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca)
        self._resources = {}
        self._lock = threading.Lock()

    def with_token(self, token=None, token_file=None):
        return KubeClient(self.server, self.ca, token=token, token_file=token_file,
                          timeout=scaled(self.timeout))

    def _bearer(self):
        if self.token_file:
            with open(self.token_file) as f:
                return f.read().strip()
        return self.token

    def request(self, method, path, body=None, content_type="application/json", params=None,
                timeout=None):
        url = self.server + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        token = self._bearer()
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=scaled(timeout or self.timeout)) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise KubeUnreachable(f"{method} {url}: {reason}") from e
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body, kind="merge", **kw):
        """kind: merge (application/merge-patch+json), json (a JSON Patch list) or strategic."""
        return self.request("PATCH", path, body, content_type=PATCH_TYPES[kind], **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def check(self, result, *ok, what=""):
        """Asserts the status of a (status, body) result; returns the body."""
        status, body = result
        ok = ok or (200, 201)
        assert status in ok, f"{what or 'request'}: HTTP {status}: {status_message(body)}"
        return body

    # ---- paths ----
    def resource(self, api_version, kind):
        """(plural, namespaced) for a kind, from the table above or API discovery."""
        key = (api_version, kind)
        if key in KNOWN:
            return KNOWN[key]
        with self._lock:
            if key in self._resources:
                return self._resources[key]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        body = self.check(self.get(base), 200, what=f"discovery of {api_version}")
        for r in body.get("resources", []):
            if r.get("kind") == kind and "/" not in r["name"]:
                with self._lock:
                    self._resources[key] = (r["name"], r["namespaced"])
                return self._resources[key]
        raise KeyError(f"{kind} is not served by {api_version}")

    def path(self, api_version, kind, namespace=None, name=None):
        plural, namespaced = self.resource(api_version, kind)
        p = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            if not namespace:
                raise ValueError(f"{kind} is namespaced: give a namespace")
            p += f"/namespaces/{namespace}"
        p += f"/{plural}"
        return p + (f"/{name}" if name else "")

    def pod_path(self, namespace, name=None):
        return self.path("v1", "Pod", namespace, name)

    def gameserver_path(self, namespace, name=None):
        return self.path("game.kruise.io/v1alpha1", "GameServer", namespace, name)

    def configmap_path(self, namespace, name=None):
        return self.path("v1", "ConfigMap", namespace, name)

    # ---- objects ----
    def create(self, obj, namespace=None):
        ns = namespace or obj.get("metadata", {}).get("namespace")
        p = self.path(obj["apiVersion"], obj["kind"], ns)
        return self.check(self.post(p, obj), 201, what=f"create {obj['kind']}")

    def apply(self, src, namespace=None):
        """Creates each object of a manifest (path, dict or list), replacing it when it exists.
        Objects without a namespace go into `namespace` (like kubectl apply -n). Returns the
        objects as the server stored them."""
        out = []
        for obj in load_manifests(src):
            obj = json.loads(json.dumps(obj))
            md = obj.setdefault("metadata", {})
            ns = md.get("namespace") or namespace
            _, namespaced = self.resource(obj["apiVersion"], obj["kind"])
            if namespaced and ns:
                md["namespace"] = ns
            coll = self.path(obj["apiVersion"], obj["kind"], ns if namespaced else None)
            status, body = self.post(coll, obj)
            if status == 409:
                item = f"{coll}/{md['name']}"
                cur = self.check(self.get(item), 200, what=f"get {item}")
                md["resourceVersion"] = cur["metadata"]["resourceVersion"]
                status, body = self.put(item, obj)
            assert status in (200, 201), \
                f"apply {obj['kind']} {md.get('name')}: HTTP {status}: {status_message(body)}"
            out.append(body)
            if obj["kind"] == "CustomResourceDefinition":
                self.wait_crd(md["name"])
        return out

    def wait_crd(self, name, timeout=60):
        """Waits until the CRD is Established and its resource is served."""
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        deadline = time.monotonic() + scaled(timeout)
        while True:
            status, crd = self.get(path)
            if status == 200:
                conds = {c["type"]: c["status"]
                         for c in (crd.get("status") or {}).get("conditions") or []}
                if conds.get("Established") == "True":
                    spec = crd["spec"]
                    ver = next(v["name"] for v in spec["versions"] if v.get("served"))
                    s, disc = self.get(f"/apis/{spec['group']}/{ver}")
                    if s == 200 and any(r["name"] == spec["names"]["plural"]
                                        for r in disc.get("resources", [])):
                        return crd
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not established after {timeout}s")
            time.sleep(0.1)

    def create_namespace(self, name, labels=None):
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels or {}}}
        return self.check(self.post("/api/v1/namespaces", body), 201,
                          what=f"create namespace {name}")

    def create_pod(self, namespace, name, labels=None, annotations=None, owner=None,
                   containers=None, spec=None):
        """A Pod that stays Pending (no scheduler, no kubelet). owner: an object (e.g. a
        GameServerSet as returned by the server) to set as controller owner reference."""
        md = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
        if owner:
            md["ownerReferences"] = [owner_reference(owner)]
        pod_spec = spec or {
            "containers": containers or [
                {"name": "game", "image": "nginx:stable"},
                {"name": "sidecar", "image": "okg-sidecar:test"},
            ],
        }
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": pod_spec}
        return self.check(self.post(self.pod_path(namespace), body), 201,
                          what=f"create pod {namespace}/{name}")

    def create_gameserver(self, namespace, name, ops_state="None", labels=None,
                          annotations=None, owner=None, spec=None):
        """A GameServer named like its pod, as OKG creates it."""
        md = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
        if owner:
            md["ownerReferences"] = [owner_reference(owner)]
        s = dict(spec or {})
        if ops_state is not None:
            s.setdefault("opsState", ops_state)
        body = {"apiVersion": "game.kruise.io/v1alpha1", "kind": "GameServer",
                "metadata": md, "spec": s}
        return self.check(self.post(self.gameserver_path(namespace), body), 201,
                          what=f"create gameserver {namespace}/{name}")

    def create_gameserverset(self, namespace, name, replicas=1, labels=None):
        body = {"apiVersion": "game.kruise.io/v1alpha1", "kind": "GameServerSet",
                "metadata": {"name": name, "labels": labels or {}},
                "spec": {"replicas": replicas}}
        return self.check(
            self.post(self.path("game.kruise.io/v1alpha1", "GameServerSet", namespace), body),
            201, what=f"create gameserverset {namespace}/{name}")

    def resource_version(self, path):
        body = self.check(self.get(path), 200, what=f"get {path}")
        return body["metadata"]["resourceVersion"]

    def token_request(self, namespace, service_account=SIDECAR_SA, expiration=3600,
                      bound_object=None, audiences=None):
        """A bound service-account token from the TokenRequest API, as the kubelet gets one
        for a projected volume. bound_object: a Pod or Secret as returned by the server; the
        token stops working when that object is deleted (a way to prove a rotated-away token
        is no longer used)."""
        spec = {"expirationSeconds": expiration}
        if audiences:
            spec["audiences"] = list(audiences)
        if bound_object:
            spec["boundObjectRef"] = {
                "apiVersion": bound_object.get("apiVersion", "v1"),
                "kind": bound_object["kind"],
                "name": bound_object["metadata"]["name"],
                "uid": bound_object["metadata"]["uid"],
            }
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        out = self.check(self.post(path, body), 200, 201,
                         what=f"TokenRequest for {namespace}/{service_account}")
        return out["status"]["token"]

    def write_token_file(self, path, namespace, service_account=SIDECAR_SA, **kw):
        """Gets a fresh TokenRequest token and swaps it into path atomically (token rotation);
        returns the token."""
        token = self.token_request(namespace, service_account, **kw)
        write_atomic(path, token + "\n")
        return token

    def wait_access(self, namespace, service_account, verb, resource, group="", subresource="",
                    allowed=True, timeout=60):
        """Waits until the API server's authorizer gives the ServiceAccount this access (or,
        allowed=False, refuses it), asked with a SubjectAccessReview. A Role or RoleBinding
        takes effect when the authorizer's cache has it, a moment after the write that made it
        was answered: a request sent at once may still be judged by the old rules."""
        user = f"system:serviceaccount:{namespace}:{service_account}"
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user,
                           "groups": ["system:serviceaccounts",
                                      f"system:serviceaccounts:{namespace}",
                                      "system:authenticated"],
                           "resourceAttributes": {"namespace": namespace, "verb": verb,
                                                  "group": group, "resource": resource,
                                                  "subresource": subresource}}}
        deadline = time.monotonic() + scaled(timeout)
        while True:
            out = self.check(self.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                       review), 200, 201, what="SubjectAccessReview")
            if bool((out.get("status") or {}).get("allowed")) == allowed:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{user}: {verb} {resource}/{subresource} in {namespace} "
                                     f"still {'refused' if allowed else 'allowed'} after "
                                     f"{scaled(timeout):g} s")
            time.sleep(0.05)

    def revocable_token(self, namespace, service_account=SIDECAR_SA):
        """(token, revoke): a token bound to a fresh Secret; revoke() deletes the Secret, after
        which the API server answers 401 to that token. The API server caches a successful
        token check for 10 s, so a token used just before revoke() may work that much longer
        (wait_status(client, path, 401) waits it out)."""
        name = f"okg-token-{uuid.uuid4().hex[:8]}"
        secret = self.create({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": name}, "type": "Opaque"}, namespace)
        token = self.token_request(namespace, service_account, bound_object=secret)

        def revoke():
            self.check(self.delete(f"/api/v1/namespaces/{namespace}/secrets/{name}"), 200,
                       what=f"delete secret {name}")
        return token, revoke


def wait_status(client, path, want, timeout=15):
    """Polls GET path until it answers `want`; returns the last status."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        status = client.get(path)[0]
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def owner_reference(obj, controller=True):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": False}


def status_message(body):
    """The message of a Kubernetes Status answer (or the raw body)."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return f"{body.get('reason', '')}: {body.get('message', '')}"
    return str(body)[:500]


class AuditLog:
    """The API server's audit log (Metadata level, one ResponseComplete event per request).
    mark() then count(since=mark, ...) counts what happened in between. The log backend writes
    an event just after the response, so use wait_count() for "at least n", and settle() before
    asserting that nothing (more) happened."""

    def __init__(self, path, client=None):
        self.path = path
        self.client = client      # sends settle()'s marker requests
        self._markers = itertools.count()

    def mark(self):
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def events(self, since=0):
        try:
            with open(self.path, "rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        # A line being written may be incomplete; it is counted next time.
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("stage") == "ResponseComplete":
                out.append(ev)
        return out

    @staticmethod
    def matches(ev, user=None, verb=None, resource=None, namespace=None, name=None,
                subresource=None, code=None, api_group=None):
        ref = ev.get("objectRef") or {}
        checks = ((user, ev.get("user", {}).get("username")), (verb, ev.get("verb")),
                  (resource, ref.get("resource")), (namespace, ref.get("namespace")),
                  (name, ref.get("name")), (subresource, ref.get("subresource")),
                  (code, ev.get("responseStatus", {}).get("code")),
                  (api_group, ref.get("apiGroup")))
        for want, got in checks:
            if want is None:
                continue
            if isinstance(want, (set, list, tuple)):
                if got not in want:
                    return False
            elif got != want:
                return False
        return True

    def select(self, since=0, **filters):
        return [e for e in self.events(since) if self.matches(e, **filters)]

    def count(self, since=0, **filters):
        """Requests since a mark matching every given filter: user (e.g.
        system:serviceaccount:NS:okg-sidecar), verb (get, list, create, patch, update, delete,
        watch), resource (pods, gameservers, ...), namespace, name, subresource, code,
        api_group. A filter may be a set of accepted values."""
        return len(self.select(since, **filters))

    def wait_count(self, n, since=0, timeout=10, **filters):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            c = self.count(since, **filters)
            if c >= n or time.monotonic() > deadline:
                return c
            time.sleep(0.05)

    def settle(self, timeout=60):
        """Returns once the requests answered before the call are in the log: sends a marker
        request of its own (GET /version with a unique query, no object, so no filter on a
        resource or namespace counts it) and waits for its event, written after theirs. An
        order, not a pause: as quick as the server on a quiet machine, as slow as it on a
        loaded one."""
        uri = f"/version?okg-audit-marker={os.getpid()}-{next(self._markers)}"
        since = self.mark()
        status, _ = self.client.get(uri)
        assert status == 200, f"audit marker {uri}: HTTP {status}"
        deadline = time.monotonic() + scaled(timeout)
        while not any(e.get("requestURI") == uri for e in self.events(since)):
            assert time.monotonic() < deadline, f"the audit event of {uri} never came"
            time.sleep(0.02)


def sa_username(namespace, service_account=SIDECAR_SA):
    return f"system:serviceaccount:{namespace}:{service_account}"


class KubeEnv:
    """A running etcd + kube-apiserver (tests/kube/kube-env.sh) with the GameServer CRD."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.env = {}
        self._counter = 0
        self._lock = threading.Lock()

    def _script(self, *args, timeout=180):
        r = subprocess.run([ENV_SCRIPT, *args, self.dir], capture_output=True, text=True,
                           timeout=scaled(timeout), env=dict(os.environ, KUBE_ENV_WATCH_PID=str(os.getpid())))
        if r.returncode != 0:
            raise RuntimeError(f"kube-env.sh {' '.join(args)} failed ({r.returncode}):\n"
                               f"{r.stderr.strip()[-4000:]}")
        self._read_env()
        return r

    def _read_env(self):
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    env[k] = shlex.split(v)[0] if v else ""
        self.env = env

    def start(self):
        with _startup_lock():
            self._script("start")
        self.admin = KubeClient(self.server, self.ca, token=self.admin_token)
        self.audit = AuditLog(self.env["KUBE_AUDIT_LOG"], self.admin)
        return self

    def stop(self):
        self._script("stop")

    @property
    def server(self):
        return self.env["KUBE_SERVER"]

    @property
    def ca(self):
        return self.env["KUBE_CA"]

    @property
    def admin_token(self):
        return self.env["KUBE_ADMIN_TOKEN"]

    @property
    def apiserver_log(self):
        return self.env["KUBE_APISERVER_LOG"]

    def stop_apiserver(self):
        """An outage: the API server process stops; etcd (the data) stays."""
        self._script("stop-apiserver")

    def start_apiserver(self):
        """Back on the same address, certificates and data; returns when /readyz is ok."""
        with _startup_lock():
            self._script("start-apiserver")

    def client(self, token=None, token_file=None):
        return KubeClient(self.server, self.ca, token=token, token_file=token_file)

    def new_namespace(self, prefix="okg"):
        """A fresh namespace; names are unique for the session."""
        with self._lock:
            self._counter += 1
            n = self._counter
        name = f"{prefix}-{n}-{uuid.uuid4().hex[:5]}"
        self.admin.create_namespace(name)
        return name

    def sidecar_namespace(self, prefix="okg"):
        """A fresh namespace with deploy/rbac.yaml applied: (namespace, KubeClient as the
        okg-sidecar ServiceAccount with a TokenRequest token)."""
        ns = self.new_namespace(prefix)
        self.admin.apply(RBAC, ns)
        self.admin.wait_access(ns, SIDECAR_SA, "patch", "gameservers", group="game.kruise.io")
        token = self.admin.token_request(ns, SIDECAR_SA)
        return ns, self.client(token=token)

    def add_service_account(self, namespace, name):
        """Another ServiceAccount bound to the okg-sidecar Role (after sidecar_namespace()):
        same rights, different user name in the audit log, e.g. to tell which of two rotated
        tokens a request carried."""
        self.admin.apply([
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": name},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": SIDECAR_SA},
             "subjects": [{"kind": "ServiceAccount", "name": name}]},
        ], namespace)
        self.admin.wait_access(namespace, name, "patch", "gameservers", group="game.kruise.io")
        return name

    def write_kubeconfig(self, path, namespace, token=None, token_file=None):
        return write_kubeconfig(path, self.server, self.ca, token=token, token_file=token_file,
                                namespace=namespace)


@contextlib.contextmanager
def _startup_lock():
    """Held while an API server starts. Its start is CPU-heavy and its post-start hooks give up
    after a fixed time: on a loaded machine, several starting at once (pytest-xdist workers,
    other test runs) can make each other fail. One at a time, each gets through."""
    with open(os.path.join(tempfile.gettempdir(), "okg-kube-start.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


_active = None
# Test modules import the `kube` fixture (`from kube import kube`), which gives every module a
# fixture definition of its own; they all share this process's one KubeEnv (one per xdist
# worker), started on first use and stopped when the last of them is finalized.
_shared = {"env": None, "error": None, "users": 0}


def stop_apiserver():
    """Stops the session's API server (see KubeEnv.stop_apiserver)."""
    assert _active is not None, "the kube fixture is not active"
    _active.stop_apiserver()


def start_apiserver():
    assert _active is not None, "the kube fixture is not active"
    _active.start_apiserver()


def build_apiserver():
    """Path of the cached kube-apiserver, building it on first use (minutes, cold)."""
    # Under pytest-xdist every worker asks at once: one builds, the others wait and then find the
    # binary cached (two builds at once would share build-apiserver.sh's work directory).
    lock_path = os.path.join(tempfile.gettempdir(), "okg-build-apiserver.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run([BUILD_SCRIPT], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"tests/kube/build-apiserver.sh failed ({r.returncode}):\n"
                           f"{r.stderr.strip()[-4000:]}")
    return r.stdout.strip().splitlines()[-1]


def _start_shared(tmp_path_factory):
    """(KubeEnv, None) or (None, why it could not be provided)."""
    try:
        os.environ["KUBE_APISERVER"] = build_apiserver()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        return None, f"no kube-apiserver for the tests: {e}"
    env = KubeEnv(tmp_path_factory.mktemp("kube"))
    try:
        env.start()
        env.admin.apply(GAMESERVER_CRD)
    except Exception as e:
        try:
            env.stop()
        except Exception:
            pass
        return None, f"kube-apiserver with the GameServer CRD could not be provided: {e}"
    return env, None


@pytest.fixture(scope="session")
def kube(tmp_path_factory):
    """The session's KubeEnv: a real kube-apiserver + etcd on loopback with the GameServer
    CRD installed. Fails (never skips) the tests that use it when it cannot be provided."""
    global _active
    if _shared["env"] is None and _shared["error"] is None:
        _shared["env"], _shared["error"] = _start_shared(tmp_path_factory)
    if _shared["error"]:
        pytest.fail(_shared["error"], pytrace=False)
    _shared["users"] += 1
    _active = _shared["env"]
    try:
        yield _active
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            env, _shared["env"], _active = _shared["env"], None, None
            env.stop()
