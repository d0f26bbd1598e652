"""deploy/ and units/: every manifest is accepted by a real kube-apiserver (server-side dry run,
the pod templates as real Pods too), the config in each ConfigMap passes okg-sidecard
--check-config, deploy/render.py's output is what is committed and says what the config says,
the pods are wired the way the suite needs (shared volumes, process namespace, UID or
CAP_KILL, probes, downward API), the kustomize base and components build, the Containerfile
follows its rules, and the systemd units pass systemd-analyze verify and run the installed
daemons standalone, with READY=1 and watchdog pings, as systemd would."""
import copy
import glob
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

import pytest
import yaml

from conftest import (BUILD, SAFETY_TIMEOUT, SANITIZER_MARKERS, SIDECARD, TOP, free_port, scaled,
                      spawn, wait_for)
from kube import kube  # noqa: F401

DEPLOY = os.path.join(TOP, "deploy")
UNITS = os.path.join(TOP, "units")
KUSTOMIZE = os.path.join(DEPLOY, "kustomize")
SIDECAR = "okg-sidecar"
IMAGE_UID = 65532
EXAMPLES = sorted(glob.glob(os.path.join(DEPLOY, "examples", "*", "manifest.yaml")))
COMPONENTS = ("sidecar", "native-sidecar")


def load_render():
    spec = importlib.util.spec_from_file_location("okg_render", os.path.join(DEPLOY, "render.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


render = load_render()


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def rel(path):
    return os.path.relpath(path, TOP)


# ---- a small kustomize: enough for deploy/kustomize, checked against kubectl's when present ----

def merge_keys(schema_path):
    """List fields merged by a key, from a component's openapi schema: {field: key}."""
    out = {}

    def walk(node):
        if isinstance(node, dict):
            for k, v in (node.get("properties") or {}).items():
                if isinstance(v, dict) and "x-kubernetes-patch-merge-key" in v:
                    out[k] = v["x-kubernetes-patch-merge-key"]
                walk(v)
            for v in node.values():
                if isinstance(v, dict) and v is not node.get("properties"):
                    walk(v)
    with open(schema_path) as f:
        walk(json.load(f))
    return out


def strategic_merge(base, patch, keys):
    for k, pv in patch.items():
        bv = base.get(k)
        if isinstance(pv, dict) and isinstance(bv, dict):
            strategic_merge(bv, pv, keys)
        elif isinstance(pv, list) and isinstance(bv, list) and k in keys:
            by_key = {item.get(keys[k]): item for item in bv}
            for item in pv:
                if item.get(keys[k]) in by_key:
                    strategic_merge(by_key[item[keys[k]]], item, keys)
                else:
                    bv.append(copy.deepcopy(item))
        else:
            base[k] = copy.deepcopy(pv)


def kustomize_build(directory, components=None):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    objs = []
    for r in k.get("resources") or []:
        p = os.path.join(directory, r)
        objs += kustomize_build(p) if os.path.isdir(p) else load_docs(p)
    opts = k.get("generatorOptions") or {}
    for g in k.get("configMapGenerator") or []:
        assert opts.get("disableNameSuffixHash"), "the sidecar's ConfigMap must keep its name"
        data = {}
        for name in g.get("files") or []:
            with open(os.path.join(directory, name)) as f:
                data[os.path.basename(name)] = f.read()
        md = {"name": g["name"]}
        if opts.get("labels"):
            md["labels"] = dict(opts["labels"])
        objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data})
    for c in (k.get("components") or []) if components is None else components:
        cdir = os.path.join(directory, c)
        with open(os.path.join(cdir, "kustomization.yaml")) as f:
            comp = yaml.safe_load(f)
        assert comp["kind"] == "Component"
        keys = merge_keys(os.path.join(cdir, comp["openapi"]["path"]))
        for p in comp.get("patches") or []:
            with open(os.path.join(cdir, p["path"])) as f:
                patch = yaml.safe_load(f)
            patch = {key: v for key, v in patch.items() if key not in ("apiVersion", "kind",
                                                                         "metadata")}
            t = p["target"]
            for o in objs:
                if o["kind"] == t["kind"] and o["apiVersion"].split("/")[0] == t["group"]:
                    strategic_merge(o, patch, keys)
    if k.get("namespace"):
        for o in objs:
            o.setdefault("metadata", {})["namespace"] = k["namespace"]
            for s in o.get("subjects") or []:
                if s.get("kind") == "ServiceAccount":
                    s["namespace"] = k["namespace"]
    return objs


def canonical(objs):
    """Objects in a comparable form: sorted, lists of named items sorted by name."""
    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            items = [norm(x) for x in v]
            if items and all(isinstance(x, dict) and "name" in x for x in items):
                items.sort(key=lambda x: x["name"])
            return items
        return v
    return sorted((json.dumps(norm(o), sort_keys=True) for o in objs))


def kustomize_example(tmp_path, component):
    """The example overlay built with one of the components: (objects, kubectl's objects or
    None when kubectl is not installed)."""
    example = os.path.join(KUSTOMIZE, "example")
    objs = kustomize_build(example, components=[f"../components/{component}"])
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return objs, None
    tree = tmp_path / f"kustomize-{component}"
    shutil.copytree(KUSTOMIZE, tree)
    kfile = tree / "example" / "kustomization.yaml"
    text = kfile.read_text()
    assert "../components/sidecar\n" in text
    kfile.write_text(text.replace("../components/sidecar\n", f"../components/{component}\n"))
    r = subprocess.run([kubectl, "kustomize", str(tree / "example")], capture_output=True,
                       text=True, timeout=scaled(120))
    assert r.returncode == 0, f"kubectl kustomize: {r.stderr}"
    return objs, [d for d in yaml.safe_load_all(r.stdout) if d]


# ---- the manifests under test ----

def manifest_sets(tmp_path):
    """{name: objects} of every manifest a user applies: deploy/rbac.yaml, the examples and
    the kustomize example with each component."""
    sets = {rel(os.path.join(DEPLOY, "rbac.yaml")): load_docs(os.path.join(DEPLOY, "rbac.yaml"))}
    for path in EXAMPLES:
        sets[rel(path)] = load_docs(path)
    for c in COMPONENTS:
        sets[f"kustomize example + {c}"] = kustomize_example(tmp_path, c)[0]
    return sets


def pod_templates(objs):
    """(owner object, pod template metadata, pod spec) of every GameServerSet."""
    out = []
    for o in objs:
        if o.get("kind") == "GameServerSet":
            tpl = o["spec"]["gameServerTemplate"]
            out.append((o, tpl.get("metadata") or {}, tpl["spec"]))
    return out


def sidecar_config(objs, spec, container):
    """The parsed config.yaml of the ConfigMap a sidecar container mounts at /opt/sidecar."""
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/opt/sidecar")
    vol = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    cm = next(o for o in objs if o.get("kind") == "ConfigMap"
              and o["metadata"]["name"] == vol["configMap"]["name"])
    return yaml.safe_load(cm["data"]["config.yaml"])


def test_examples_exist():
    names = {os.path.basename(os.path.dirname(p)) for p in EXAMPLES}
    assert {"hot-update-2048", "probe", "native-sidecar"} <= names


# ---- render.py ----

def test_committed_manifests_are_rendered():
    r = subprocess.run(["python3", os.path.join(DEPLOY, "render.py"), "--check"],
                       capture_output=True, text=True, timeout=scaled(60))
    assert r.returncode == 0, f"stale manifests, run deploy/render.py:\n{r.stdout}{r.stderr}"


def test_every_template_is_rendered():
    templates = {os.path.relpath(p, DEPLOY)
                 for p in glob.glob(os.path.join(DEPLOY, "**", "*.yaml.in"), recursive=True)}
    assert templates == {t for _, t, _ in render.TARGETS}
    for _, _, out in render.TARGETS:
        with open(os.path.join(DEPLOY, out)) as f:
            assert f.readline().startswith("# Generated by deploy/render.py")


TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  config.yaml: |
    ${OKG_CONFIG}
---
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
    - name: okg-sidecar
      image: okg-sidecar:test
      ${OKG_RESOURCES}
      volumeMounts:
        - name: config
          mountPath: /opt/sidecar
  volumes:
    - name: config
      configMap:
        name: cfg
"""

PLUGINS = "plugins: []\n"


@pytest.mark.parametrize("resources,want", [
    ("resources:\n  CPU: 100m\n  Memory: 128Mi\n", {"cpu": "100m", "memory": "128Mi"}),
    ("resources:\n  cpu: 1\n  memory: 1Gi\n", {"cpu": "1", "memory": "1Gi"}),
    ("resources:\n  CPU: 0.5\n", {"cpu": "0.5"}),
    ("resources:\n  Memory: 134217728\n", {"memory": "134217728"}),
    ("resources:\n  CPU: 2e-3\n  memory: 1.5G\n", {"cpu": "2e-3", "memory": "1.5G"}),
    ("", {}),
], ids=["proposal", "lowercase-ints", "cpu-only", "bytes", "exponent", "none"])
def test_render_maps_resources(tmp_path, resources, want):
    config = PLUGINS + resources
    text = render.render_text(config, TEMPLATE)
    docs = [d for d in yaml.safe_load_all(text) if d]
    c = docs[1]["spec"]["containers"][0]
    assert c["resources"] == ({"requests": want, "limits": want} if want else {})
    assert docs[0]["data"]["config.yaml"] == config
    render.check_rendered(text, config, embeds_config=True)
    # What render.py takes for a quantity, okg-sidecard takes too.
    (tmp_path / "c.yaml").write_text(config)
    r = subprocess.run([SIDECARD, "--check-config", str(tmp_path / "c.yaml")],
                       capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("resources", [
    "resources:\n  CPU: 100x\n",
    "resources:\n  CPU: -1\n",
    "resources:\n  Memory: 1.2.3Mi\n",
    "resources:\n  Memory: ''\n",
    "resources:\n  CPU: 1\n  cpu: 2\n",
    "resources:\n  GPU: 1\n",
], ids=["suffix", "negative", "two-dots", "empty", "both-spellings", "unknown-key"])
def test_render_refuses_what_check_config_refuses(tmp_path, resources):
    config = PLUGINS + resources
    with pytest.raises(render.RenderError):
        render.render_text(config, TEMPLATE)
    (tmp_path / "c.yaml").write_text(config)
    r = subprocess.run([SIDECARD, "--check-config", str(tmp_path / "c.yaml")],
                       capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode == 3, r.stderr
    assert "resources" in r.stderr


def test_render_checks_native_sidecars():
    native = TEMPLATE.replace("  containers:\n    - name: okg-sidecar\n",
                              "  containers:\n    - name: game\n      image: game\n"
                              "  initContainers:\n    - name: okg-sidecar\n"
                              "      restartPolicy: Always\n")
    config = PLUGINS + "sidecarstartorder: Before\n"
    render.check_rendered(render.render_text(config, native), config, True)
    # Without restartPolicy: Always the init container would block the game forever.
    blocking = native.replace("      restartPolicy: Always\n", "")
    with pytest.raises(render.RenderError, match="restartPolicy"):
        render.check_rendered(render.render_text(config, blocking), config, True)
    # After: the sidecar would wait for a game that waits for it.
    after = PLUGINS + "sidecarstartorder: After\ngameReady:\n  url: http://localhost:80/\n"
    with pytest.raises(render.RenderError, match="After"):
        render.check_rendered(render.render_text(after, native), after, True)


def test_render_detects_a_hand_edited_manifest(tmp_path):
    config = PLUGINS + "resources:\n  CPU: 100m\n"
    text = render.render_text(config, TEMPLATE)
    with pytest.raises(render.RenderError, match="resources"):
        render.check_rendered(text.replace('cpu: "100m"', 'cpu: "200m"', 1), config, True)
    with pytest.raises(render.RenderError, match="config.yaml differs"):
        render.check_rendered(text.replace("plugins: []", "plugins: [ ]"), config, True)


def test_render_cli_writes_output(tmp_path):
    (tmp_path / "config.yaml").write_text(PLUGINS + "resources:\n  Memory: 64Mi\n")
    (tmp_path / "t.yaml.in").write_text(TEMPLATE)
    out = tmp_path / "out.yaml"
    r = subprocess.run(["python3", os.path.join(DEPLOY, "render.py"), str(tmp_path / "config.yaml"),
                        str(tmp_path / "t.yaml.in"), "-o", str(out)],
                       capture_output=True, text=True, timeout=scaled(60))
    assert r.returncode == 0, r.stderr
    pod = load_docs(out)[1]
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"memory": "64Mi"}
    (tmp_path / "config.yaml").write_text(PLUGINS + "resources:\n  Memory: lots\n")
    r = subprocess.run(["python3", os.path.join(DEPLOY, "render.py"), str(tmp_path / "config.yaml"),
                        str(tmp_path / "t.yaml.in")], capture_output=True, text=True, timeout=scaled(60))
    assert r.returncode == 1 and "not a Kubernetes quantity" in r.stderr


# ---- the configs ----

def config_files():
    """(name, text) of every sidecar config under deploy/: the ConfigMaps of the manifests,
    the kustomize base's file, and the example config."""
    out = []
    for path in EXAMPLES:
        for o in load_docs(path):
            if o.get("kind") == "ConfigMap" and "config.yaml" in (o.get("data") or {}):
                out.append((f"{rel(path)}:{o['metadata']['name']}", o["data"]["config.yaml"]))
    for path in (os.path.join(KUSTOMIZE, "base", "config.yaml"),
                 os.path.join(DEPLOY, "examples", "config.yaml")):
        with open(path) as f:
            out.append((rel(path), f.read()))
    return out


def test_every_example_has_its_config():
    names = [n for n, _ in config_files()]
    for path in EXAMPLES:
        assert any(n.startswith(rel(path) + ":") for n in names), f"{rel(path)}: no config"


@pytest.mark.parametrize("name,text", config_files(), ids=[n for n, _ in config_files()])
def test_config_passes_check_config(tmp_path, name, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    r = subprocess.run([SIDECARD, "--check-config", str(path)], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 0, f"{name}:\n{r.stderr}"
    assert "valid" in r.stdout


# ---- how the pods are wired ----

def effective(spec, container, key):
    return ((container.get("securityContext") or {}).get(key,
            (spec.get("securityContext") or {}).get(key)))


def port_number(container, port):
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)


def check_pod(objs, md, spec):
    """Asserts what the suite needs from a pod with the sidecar; returns the sidecar."""
    found = [(c, False) for c in spec.get("containers") or [] if c["name"] == SIDECAR]
    found += [(c, True) for c in spec.get("initContainers") or [] if c["name"] == SIDECAR]
    assert len(found) == 1, "exactly one okg-sidecar container"
    sc, native = found[0]
    config = sidecar_config(objs, spec, sc)
    plugins = {p["name"]: p.get("config") or {} for p in config["plugins"]}
    games = [c for c in spec["containers"] if c["name"] != SIDECAR]
    assert games, "a game container"

    # The Role of deploy/rbac.yaml, through its ServiceAccount.
    assert spec.get("serviceAccountName") == SIDECAR
    # The pod is okg-storaged's subject: name and namespace from the downward API.
    env = {e["name"]: e for e in sc.get("env") or []}
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == field, name
    # The ConfigMap as a directory: a subPath mount would never see an update.
    mounts = {m["mountPath"]: m for m in sc["volumeMounts"]}
    assert not mounts["/opt/sidecar"].get("subPath")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "configMap" in volumes[mounts["/opt/sidecar"]["name"]]
    # Ordered stop within the grace period.
    stop = config.get("stopTimeoutSeconds", 10)
    assert spec.get("terminationGracePeriodSeconds", 30) > stop

    ports = {p["containerPort"]: p for p in sc.get("ports") or []}
    health = config.get("healthPort", 5001)
    assert health in ports
    live = sc["livenessProbe"]["httpGet"]
    assert live["path"] == "/healthz" and port_number(sc, live["port"]) == health
    if native:
        assert sc.get("restartPolicy") == "Always"
        start = sc["startupProbe"]["httpGet"]
        assert start["path"] == "/readyz" and port_number(sc, start["port"]) == health
        order = str(config.get("sidecarstartorder", config.get("sidecarStartOrder", "Before")))
        assert order.lower() == "before"

    # Least privilege.
    assert effective(spec, sc, "allowPrivilegeEscalation") is False
    caps = (sc.get("securityContext") or {}).get("capabilities") or {}
    assert caps.get("drop") == ["ALL"]
    assert set(caps.get("add") or []) <= {"KILL"}
    uid = effective(spec, sc, "runAsUser")
    # dbus-daemon refuses every connection unless its UID is in the image's /etc/passwd:
    # root, or okg-sidecar (deploy/Containerfile's OKG_UID).
    assert uid in (0, IMAGE_UID), f"sidecar UID {uid} is not a user of the image"
    assert effective(spec, sc, "readOnlyRootFilesystem") is True
    for path in ("/run/okg-sidecar", "/var/lib/okg-sidecar"):
        assert "emptyDir" in volumes[mounts[path]["name"]], path
    if uid != 0:
        assert effective(spec, sc, "runAsNonRoot") is True

    hot = plugins.get("hot_update")
    if hot is not None:
        assert 5000 in ports or hot.get("port") in ports
        # The download folder is a volume the game mounts too, as a directory.
        ddir = hot.get("downloadDir", "/app/downloads")
        assert ddir in mounts, f"no volume at the downloadDir {ddir}"
        shared = mounts[ddir]["name"]
        assert not mounts[ddir].get("subPath")
        game_mounts = [m for g in games for m in g.get("volumeMounts") or []
                       if m["name"] == shared]
        assert game_mounts, f"the game does not mount {shared}"
        assert not any(m.get("subPath") for m in game_mounts)
    if hot is not None and hot.get("authTokenFile"):
        # The token comes from a Secret mounted as a directory (a rotated token reaches it).
        tdir = os.path.dirname(hot["authTokenFile"])
        assert tdir in mounts and not mounts[tdir].get("subPath"), f"no volume at {tdir}"
        assert "secret" in volumes[mounts[tdir]["name"]], f"{tdir} is not a Secret"
    if hot is not None and hot.get("loadPatchType", "signal") == "signal":
        # The game's processes must be visible, and kill(2) allowed: the same UID as the
        # game, or CAP_KILL, which Kubernetes grants only to a root container.
        assert spec.get("shareProcessNamespace") is True
        if "KILL" in (caps.get("add") or []):
            assert uid == 0, "CAP_KILL is only effective in a root container"
        else:
            # The game's UID must be stated: the image's default is unknown here.
            game_uids = {effective(spec, g, "runAsUser") for g in games}
            assert game_uids == {uid}, f"sidecar UID {uid}, game UIDs {game_uids}: cannot signal"
    return sc


@pytest.mark.parametrize("name", [rel(p) for p in EXAMPLES]
                         + [f"kustomize example + {c}" for c in COMPONENTS])
def test_pod_wiring(tmp_path, name):
    objs = manifest_sets(tmp_path)[name]
    templates = pod_templates(objs)
    assert templates
    for gss, md, spec in templates:
        assert "namespace" not in gss["metadata"] or name.startswith("kustomize")
        check_pod(objs, md, spec)
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Namespace"}


def test_hot_update_example_is_locked_down(tmp_path):
    """Issue 15: the demo is not an open relay: a token from a Secret, allowlists, and a
    NetworkPolicy that admits port 5000 only from labelled operator namespaces."""
    objs = manifest_sets(tmp_path)["deploy/examples/hot-update-2048/manifest.yaml"]
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {}))
    config = yaml.safe_load(cm["data"]["config.yaml"])
    hot = next(p for p in config["plugins"] if p["name"] == "hot_update")["config"]
    assert hot["authTokenFile"] and hot["allowedSources"] and hot["allowedFileNames"]
    (gss, md, spec), = pod_templates(objs)
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    assert len(policies) == 1
    np = policies[0]["spec"]
    assert np["podSelector"]["matchLabels"].items() <= md["labels"].items()
    assert "Ingress" in np["policyTypes"]
    for rule in np["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        if 5000 in ports:
            assert ports == {5000} and rule["from"] and all(
                set(f) == {"namespaceSelector"} and f["namespaceSelector"]["matchLabels"]
                for f in rule["from"])
    assert any(5000 in {p["port"] for p in r["ports"]} for r in np["ingress"])


def test_native_example_is_native():
    objs = load_docs(os.path.join(DEPLOY, "examples", "native-sidecar", "manifest.yaml"))
    (_, _, spec), = pod_templates(objs)
    assert SIDECAR in [c["name"] for c in spec["initContainers"]]
    assert SIDECAR not in [c["name"] for c in spec["containers"]]


def test_kustomize_base_rbac_is_deploy_rbac():
    with open(os.path.join(DEPLOY, "rbac.yaml")) as a, \
            open(os.path.join(KUSTOMIZE, "base", "rbac.yaml")) as b:
        assert a.read() == b.read(), "deploy/kustomize/base/rbac.yaml must equal deploy/rbac.yaml"


@pytest.mark.parametrize("component", COMPONENTS)
def test_kustomize_build(tmp_path, component):
    objs, real = kustomize_example(tmp_path, component)
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == ["ConfigMap", "GameServerSet", "Role", "RoleBinding", "ServiceAccount"]
    (gss, _, spec), = pod_templates(objs)
    # The user's game container survives the patch.
    assert "game" in [c["name"] for c in spec["containers"]]
    if real is not None:
        assert canonical(real) == canonical(objs), "kubectl kustomize builds something else"


# ---- against the API server ----

def server_minor(client):
    body = client.check(client.get("/version"), 200, what="version")
    return int(re.match(r"\d+", body["minor"]).group(0))


def dropped_fields(sent, got, path=""):
    """Paths that were sent but are not in the server's answer: fields it does not know."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [path or "."]
        out = []
        for k, v in sent.items():
            if k not in got:
                out.append(f"{path}.{k}")
            else:
                out += dropped_fields(v, got[k], f"{path}.{k}")
        return out
    if isinstance(sent, list):
        # Admission may append (DefaultTolerationSeconds adds the not-ready/unreachable
        # tolerations after the pod's own); what was sent comes first.
        if not isinstance(got, list) or len(got) < len(sent):
            return [path]
        return [p for i, (a, b) in enumerate(zip(sent, got))
                for p in dropped_fields(a, b, f"{path}[{i}]")]
    return []


def test_manifests_accepted_by_the_api_server(kube, tmp_path):
    admin = kube.admin
    minor = server_minor(admin)
    checked = 0
    for name, objs in manifest_sets(tmp_path).items():
        ns = kube.new_namespace("deploy")
        for obj in objs:
            obj = copy.deepcopy(obj)
            md = obj.setdefault("metadata", {})
            md["namespace"] = ns
            for s in obj.get("subjects") or []:
                if "namespace" in s:
                    s["namespace"] = ns
            path = admin.path(obj["apiVersion"], obj["kind"], ns)
            body = admin.check(admin.post(path, obj, params={"dryRun": "All"}), 201,
                               what=f"{name}: dry-run create {obj['kind']} {md['name']}")
            assert body["metadata"]["name"] == md["name"]
            assert dropped_fields(obj, body) == [], f"{name}: {obj['kind']} lost fields"
            checked += 1
        # The test CRD keeps a GameServerSet's pod template as it is; the real Pod schema and
        # validation run on it as a Pod, as OKG will create it.
        for gss, md, spec in pod_templates(objs):
            spec = copy.deepcopy(spec)
            notes = []
            if minor < 28:
                # Native sidecars (init containers with restartPolicy) came in 1.28; before,
                # the same container is validated as an ordinary one.
                for c in list(spec.get("initContainers") or []):
                    if c.get("restartPolicy") == "Always":
                        spec["initContainers"].remove(c)
                        c = dict(c)
                        del c["restartPolicy"]
                        spec["containers"].append(c)
                        notes.append(c["name"])
                if not spec.get("initContainers"):
                    spec.pop("initContainers", None)
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{gss['metadata']['name']}-0", "namespace": ns},
                   "spec": spec}
            if md.get("labels"):
                pod["metadata"]["labels"] = md["labels"]
            body = admin.check(admin.post(admin.pod_path(ns), pod, params={"dryRun": "All"}),
                               201, what=f"{name}: pod of {gss['metadata']['name']} "
                                         f"(native sidecars as containers: {notes})")
            assert dropped_fields(pod, body) == [], f"{name}: the Pod lost fields"
            checked += 1
        # Dry run: nothing was stored.
        status, cms = admin.get(admin.configmap_path(ns))
        assert status == 200 and [c["metadata"]["name"] for c in cms["items"]
                                  if c["metadata"]["name"] != "kube-root-ca.crt"] == []
    assert checked >= 20


def test_native_sidecar_init_container_is_validated(kube):
    """Without restartPolicy: Always, an init container may not have a startupProbe: the API
    server refuses it (so the native-sidecar fields are not silently accepted)."""
    objs = load_docs(os.path.join(DEPLOY, "examples", "native-sidecar", "manifest.yaml"))
    (gss, md, spec), = pod_templates(objs)
    spec = copy.deepcopy(spec)
    sc = next(c for c in spec["initContainers"] if c["name"] == SIDECAR)
    del sc["restartPolicy"]
    ns = kube.new_namespace("deploy")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "native-0"}, "spec": spec}
    status, body = kube.admin.post(kube.admin.pod_path(ns), pod, params={"dryRun": "All"})
    assert status == 422, body
    assert "startupProbe" in json.dumps(body)


# ---- Containerfile ----

def containerfile():
    """[(instruction, arguments)] with continuation lines joined and comments dropped."""
    with open(os.path.join(DEPLOY, "Containerfile")) as f:
        text = f.read()
    out, cur = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not cur:
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip():
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def apt_packages(run):
    m = re.search(r"apt-get install ([^&;]*)", run)
    return [w for w in m.group(1).split() if not w.startswith("-")] if m else []


def test_containerfile_rules():
    ins = containerfile()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    for f in froms:
        image = f.split()[0]
        assert re.search(r"(:[\w.-]+|@sha256:[0-9a-f]{64})$", image), f"untagged {image}"
        assert not image.endswith(":latest"), image
        assert image.startswith("debian:12"), image
    stages, stage = [], None
    for i, a in ins:
        if i == "FROM":
            stage = {"from": a, "run": [], "other": []}
            stages.append(stage)
        elif i == "RUN":
            stage["run"].append(a)
        else:
            stage["other"].append((i, a))
    for s in stages:
        for run in s["run"]:
            if "apt-get install" in run:
                assert "apt-get update" in run, "update and install in one layer"
                assert "--no-install-recommends" in run and " -y" in run
                assert "rm -rf /var/lib/apt/lists/* /var/cache/apt/*" in run, \
                    "apt's lists and cache removed in the layer, whatever the base's settings"
            assert "apt-get upgrade" not in run and "dist-upgrade" not in run
    assert not any(i == "ADD" for i, _ in ins), "COPY, not ADD"

    final = stages[-1]
    runtime = [p for run in final["run"] for p in apt_packages(run)]
    assert not [p for p in runtime if p.endswith("-dev") or p in ("gcc", "meson", "make")]
    assert {"dbus-daemon", "ca-certificates"} <= set(runtime)
    assert any(i == "COPY" and a.startswith("--from=") for i, a in final["other"])

    # The build stage has every build dependency of scripts/setup.sh.
    with open(os.path.join(TOP, "scripts", "setup.sh")) as f:
        setup = f.read()
    build_section = re.search(r"# build\n(.*?)\n\s*# run", setup, re.S).group(1)
    build_section = re.sub(r"#[^\n]*", "", build_section)   # comments name no package
    builder = {p for run in stages[0]["run"] for p in apt_packages(run)}
    missing = set(build_section.split()) - builder
    assert not missing, f"build stage lacks {missing}"

    # Non-root by default, a user the image creates.
    users = [a for i, a in final["other"] if i == "USER"]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    args = dict(a.split("=", 1) for i, a in final["other"] if i == "ARG" and "=" in a)
    m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
    if m:
        uid = args[m.group(1)]
    assert uid == str(IMAGE_UID), "the manifests run the image as UID 65532"
    assert any(re.search(r"useradd .*--uid \$\{?OKG_UID\}?", run) for run in final["run"]) \
        or any(f"--uid {uid}" in run for run in final["run"]), "USER's UID is created"

    expose = {int(p.split("/")[0]) for i, a in final["other"] if i == "EXPOSE"
              for p in a.split()}
    assert expose == {5000, 5001}

    # The entrypoint is okg-sidecard with its documented defaults, in exec form.
    entry = json.loads([a for i, a in final["other"] if i == "ENTRYPOINT"][-1])
    assert entry[0] == "/usr/bin/okg-sidecard"
    args = dict(zip(entry[1::2], entry[2::2]))
    out = subprocess.run([SIDECARD, "--help"], capture_output=True, text=True).stdout
    defaults = dict(re.findall(r"--(config|runtime-dir|state-dir) \w+ +[^(]*\(default (\S+)\)",
                               out))
    assert {f"--{k}": v for k, v in defaults.items()} == args


def test_runtime_stage_has_every_library():
    """Each shared library the installed binaries link is in a package the final stage
    installs (or in every Debian image: libc)."""
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        pytest.fail("readelf (binutils) and dpkg are needed")
    ins = containerfile()
    last_from = max(n for n, (i, _) in enumerate(ins) if i == "FROM")
    runtime = {p for i, a in ins[last_from:] if i == "RUN" for p in apt_packages(a)}
    binaries = [os.path.join(BUILD, d, d) for d in
                ("okg-sidecard", "okg-storaged", "okg-hotupdated", "okg-probed")]
    needed = set()
    for b in binaries:
        out = subprocess.run(["readelf", "-d", b], capture_output=True, text=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))
    # Sanitizer builds also link their runtimes, which are not part of the image.
    needed = {n for n in needed if not re.match(r"lib(asan|ubsan|lsan)\.", n)}
    assert "libsystemd.so.0" in needed
    for lib in sorted(needed):
        r = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        pkgs = {line.split(":")[0] for line in r.stdout.splitlines()}
        assert pkgs & (runtime | {"libc6"}), f"{lib} ({pkgs}) is not installed in the image"


# ---- systemd units ----

SERVICES = ("okg-sidecar.service", "okg-sidecar-bus.service", "okg-storaged.service",
            "okg-hotupdated.service", "okg-probed.service")


def parse_unit(path):
    """{section: [(key, value)]}."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                out.setdefault(section, [])
                continue
            k, _, v = line.partition("=")
            out[section].append((k, v))
    return out


def unit_values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The build installed into a temporary root (meson install --destdir): (root, unit dir)."""
    root = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
                        "--destdir", str(root)], capture_output=True, text=True, timeout=scaled(300))
    assert r.returncode == 0, r.stdout + r.stderr
    dirs = glob.glob(os.path.join(str(root), "**", "lib", "systemd", "system"), recursive=True)
    assert len(dirs) == 1, dirs
    return str(root), dirs[0]


def relocate(text, root):
    """Unit text with the paths of installed files pointing into the destdir."""
    def fix(m):
        path = m.group(0)
        return root + path if os.path.exists(root + path) else path
    return re.sub(r"(?<=[=\s])/[^\s]+", fix, text)


def test_units_installed(installed):
    root, unitdir = installed
    assert sorted(os.listdir(unitdir)) == sorted(SERVICES + ("okg-sidecar-daemons.target",))
    assert glob.glob(os.path.join(root, "**", "sysusers.d", "okg-sidecar.conf"), recursive=True)
    for name in SERVICES:
        with open(os.path.join(unitdir, name)) as f:
            assert not re.search(r"@[A-Z_]+@", f.read()), f"{name}: unsubstituted variable"


def test_units_verify(installed, tmp_path):
    root, unitdir = installed
    for name in os.listdir(unitdir):
        with open(os.path.join(unitdir, name)) as f:
            (tmp_path / name).write_text(relocate(f.read(), root))
    names = sorted(str(tmp_path / n) for n in os.listdir(unitdir))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True,
                       text=True, timeout=scaled(120), cwd=str(tmp_path))
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"systemd-analyze verify:\n{r.stdout}{r.stderr}"
    # It does fail on a broken unit (a test that cannot fail is no test).
    bad = tmp_path / "bad" / "okg-probed.service"
    bad.parent.mkdir()
    bad.write_text((tmp_path / "okg-probed.service").read_text()
                   .replace("WatchdogSec=", "WatchdogSecs=").replace(root, "/nonexistent"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)], capture_output=True,
                       text=True, timeout=scaled(120), cwd=str(bad.parent))
    assert r.returncode != 0 and "WatchdogSecs" in r.stderr


def test_units_settings(installed):
    _, unitdir = installed
    for name in SERVICES:
        u = parse_unit(os.path.join(unitdir, name))
        svc = dict(u["Service"])
        assert svc["Type"] == "notify", name
        assert svc["User"] == SIDECAR and svc["NoNewPrivileges"] == "yes", name
        assert svc["ProtectSystem"] == "strict", name
        assert "SystemCallFilter" in svc and "CapabilityBoundingSet" in svc, name
        caps = svc["CapabilityBoundingSet"].split()
        assert set(caps) <= {"CAP_KILL"}, name
        if name != "okg-sidecar-bus.service":
            # okg-sidecard and the daemons ping from their event loops; dbus-daemon cannot.
            assert svc["WatchdogSec"] == "30", name
            assert "StateDirectory" in svc or "ConfigurationDirectory" in svc
        if name in ("okg-sidecar.service", "okg-hotupdated.service"):
            # They read other users' /proc entries to find the game.
            assert "ProtectProc" not in svc, name
            assert svc["AmbientCapabilities"] == "CAP_KILL", name
        else:
            assert "AmbientCapabilities" not in svc, name
        # A private bus is not the system bus: BusName= would make systemd watch (and
        # systemctl service-log-level call) the wrong bus.
        assert "BusName" not in svc, name
    sidecar = dict(parse_unit(os.path.join(unitdir, "okg-sidecar.service"))["Service"])
    # okg-sidecard stops its daemons in order itself.
    assert sidecar["KillMode"] == "mixed"
    assert sidecar["RuntimeDirectory"] == "okg-sidecar"
    assert sidecar["StateDirectory"] == "okg-sidecar"
    for name in SERVICES[2:]:
        u = parse_unit(os.path.join(unitdir, name))
        assert "okg-sidecar-bus.service" in " ".join(unit_values(u, "Unit", "Requires"))
        assert "okg-sidecar-bus.service" in " ".join(unit_values(u, "Unit", "After"))
        assert "okg-sidecar.service" in " ".join(unit_values(u, "Unit", "Conflicts"))
        # Only the bus unit owns /run/okg-sidecar: it would vanish with a daemon otherwise.
        assert not unit_values(u, "Service", "RuntimeDirectory"), name


class Notify:
    """A notify socket as systemd has one per service."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []

    def poll(self):
        try:
            while True:
                self.messages += self.sock.recv(4096).decode().split("\n")
        except (socket.timeout, BlockingIOError):
            pass
        return self.messages

    def wait(self, message, timeout=SAFETY_TIMEOUT):
        return wait_for(lambda: message in self.poll(), timeout, what=f"{message} on {self.path}")


def exec_start(unitdir, name, root, mapping):
    """argv and environment of a unit as systemd would start it, relocated."""
    u = parse_unit(os.path.join(unitdir, name))

    def fix(s):
        s = relocate(" " + s, root)[1:]
        for a, b in mapping.items():
            s = s.replace(a, b)
        return s
    argv = shlex.split(fix(unit_values(u, "Service", "ExecStart")[0]))
    env = {}
    for line in unit_values(u, "Service", "Environment"):
        for item in shlex.split(fix(line)):
            k, _, v = item.partition("=")
            env[k] = v
    watchdog = unit_values(u, "Service", "WatchdogSec")
    return argv, env, bool(watchdog)


STANDALONE_CONFIG = """\
plugins:
  - name: hot_update
    config:
      signal:
        processName: 'okg-test-no-such-game'
      bindAddress: 127.0.0.1
      port: {hot_port}
      downloadDir: {downloads}
      recoveryWaitSeconds: 0
  - name: http_probe
    config:
      endpoints:
        - url: http://127.0.0.1:{probe_port}/
    bootorder: 1
healthPort: {health_port}
healthAddress: 127.0.0.1
storage:
  backend: local
"""


def standalone_setup(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "downloads").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(STANDALONE_CONFIG.format(
        hot_port=free_port(), probe_port=free_port(), health_port=free_port(),
        downloads=tmp_path / "downloads"))
    return {"/etc/okg-sidecar/config.yaml": str(config),
            "/run/okg-sidecar": str(tmp_path / "run"),
            "/var/lib/okg-sidecar": str(tmp_path / "state")}


def run_units(tmp_path, steps, while_running=None):
    """Starts (name, argv, env, watchdog) in order, each after the previous one's READY=1, as
    systemd orders them; checks the keep-alives; calls while_running(); stops them in reverse
    order, each must exit 0. Returns the log."""
    log_path = tmp_path / "units.log"
    log = open(log_path, "w")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OKG_", "WATCHDOG_"))}
    procs = []
    try:
        for name, argv, env, watchdog in steps:
            notify = Notify(tmp_path / f"notify-{name}")
            e = dict(base, NOTIFY_SOCKET=notify.path, **env)
            if watchdog:
                # The units' WatchdogSec=30, shortened: pings must come about every second.
                e["WATCHDOG_USEC"] = "2000000"
            p = spawn(argv, env=e, stdout=log, stderr=subprocess.STDOUT)
            procs.append((name, p))
            notify.wait("READY=1")
            if watchdog:
                notify.messages.clear()
                notify.wait("WATCHDOG=1")
        for name, p in procs:
            assert p.poll() is None, f"{name} exited ({p.returncode})"
        if while_running:
            while_running()
        for name, p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            assert p.wait(30) == 0, f"{name} exited {p.returncode} on SIGTERM"
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
    text = log_path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]
    assert not bad, "sanitizer reports:\n" + "\n".join(bad[:20])
    return text


def bus_names(address):
    r = subprocess.run(["busctl", f"--address={address}", "list", "--no-pager"],
                       capture_output=True, text=True, timeout=scaled(20))
    return set(re.findall(r"^(io\.kruise\.game\.\w+)", r.stdout, re.M))


def test_daemon_units_run_standalone(installed, tmp_path):
    """The per-daemon units: the installed daemons started with each unit's ExecStart and
    Environment (paths moved into the test's directory), in the units' order, each with its
    own notify socket. Each reports READY=1, pings its watchdog, owns its bus name."""
    root, unitdir = installed
    mapping = standalone_setup(tmp_path)
    steps = []
    for name in ("okg-sidecar-bus.service", "okg-storaged.service", "okg-hotupdated.service",
                 "okg-probed.service"):
        argv, env, watchdog = exec_start(unitdir, name, root, mapping)
        assert argv[0].startswith(root) or name == "okg-sidecar-bus.service", argv[0]
        assert os.path.exists(argv[0]), argv[0]
        steps.append((name, argv, env, watchdog))
    assert [w for *_, w in steps] == [False, True, True, True]
    address = next(a for a in steps[0][1] if a.startswith("--address="))[len("--address="):]
    for name, _, env, _ in steps[1:]:
        assert env["OKG_BUS_ADDRESS"] == address, name
    seen = {}

    def check():
        seen["names"] = wait_for(lambda: bus_names(address) >= {
            "io.kruise.game.Storage1", "io.kruise.game.HotUpdate1", "io.kruise.game.Probe1"},
            20, what="the daemons' bus names")
    log = run_units(tmp_path, steps, check)
    assert seen["names"]
    assert "local store" in log


def test_sidecar_unit_runs(installed, tmp_path):
    """okg-sidecar.service: the installed okg-sidecard with the unit's command line, READY=1
    after its start sequence, watchdog pings, every daemon on the bus, exit 0 on SIGTERM."""
    root, unitdir = installed
    mapping = standalone_setup(tmp_path)
    argv, env, watchdog = exec_start(unitdir, "okg-sidecar.service", root, mapping)
    assert watchdog and argv[0].startswith(root) and os.path.exists(argv[0])
    # Installed into a destdir, okg-sidecard would look for its daemons and the bus config at
    # the final prefix: point it at the relocated ones.
    storaged = exec_start(unitdir, "okg-storaged.service", root, mapping)[0][0]
    bus_argv = exec_start(unitdir, "okg-sidecar-bus.service", root, mapping)[0]
    bus_conf = next(a for a in bus_argv if a.startswith("--config-file="))[len("--config-file="):]
    env.update(OKG_LIBEXECDIR=os.path.dirname(storaged), OKG_BUS_CONFIG=bus_conf)
    address = f"unix:path={mapping['/run/okg-sidecar']}/bus"
    seen = {}

    def check():
        seen["names"] = bus_names(address)
    run_units(tmp_path, [("okg-sidecar.service", argv, env, True)], check)
    assert seen["names"] >= {"io.kruise.game.Sidecar1", "io.kruise.game.Storage1",
                             "io.kruise.game.HotUpdate1", "io.kruise.game.Probe1"}
