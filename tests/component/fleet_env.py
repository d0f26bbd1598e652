"""A fleet of real suites behind a real kube-apiserver, for `okgctl fleet`.

The API server's pod proxy refuses loopback pod IPs, so everything runs in a network namespace
the module creates: its `lo` is up and carries addresses from 198.18.0.0/15 (RFC 2544's
benchmark range), one per pod. The test process's main thread joins that namespace (setns) for
the module, so the API server, etcd, the suites, the download server and okgctl, all started
from it, live there; nothing leaves it. Each pod is a Pod object whose status.podIP (status
subresource) is the address its okg-hotupdated listens on, with its GameServer, and one
okg-sidecard suite with okg-storaged on the Kubernetes backend."""
import ctypes
import json
import os
import shutil
import subprocess

import pytest

from conftest import (BUILD, SANITIZER_MARKERS, TOP, Suite, close_suites, free_port, make_config,
                      wait_for)
from hotupdate_helpers import ANNOTATION, FileServer, hot_update_section
from kube import GAMESERVER_CRD, KubeEnv, build_apiserver, write_kubeconfig

CLONE_NEWNET = 0x40000000
OKGCTL = os.path.join(BUILD, "okgctl", "okgctl")
FLEET_RBAC = os.path.join(TOP, "deploy", "fleet-rbac.yaml")
OWNER = "game.kruise.io/owner-gss"
OPERATOR_SA = "okg-fleet-operator"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


class NetNS:
    """A network namespace held by a sleeping process; enter() moves the calling thread in."""

    def __init__(self):
        # No inherited stdout/stderr: a pipe held open by the holder would keep a reader of
        # the caller's output waiting for EOF.
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        own = os.readlink("/proc/thread-self/ns/net")
        wait_for(lambda: self._ns_of_holder() not in (None, own), timeout=10,
                 what="the holder's network namespace")
        self.fd = os.open(f"/proc/{self.holder.pid}/ns/net", os.O_RDONLY)
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self.inside = False
        self.next_host = 2

    def _ns_of_holder(self):
        try:
            return os.readlink(f"/proc/{self.holder.pid}/ns/net")
        except OSError:
            return None

    def enter(self):
        _setns(self.fd)
        self.inside = True
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def leave(self):
        if self.inside:
            _setns(self.orig)
            self.inside = False

    def new_address(self):
        """A fresh 198.18.x.y on the namespace's lo."""
        n = self.next_host
        self.next_host += 1
        ip = f"198.18.{n // 250}.{n % 250 + 2}"
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
        return ip

    def close(self):
        try:
            self.leave()
        finally:
            self.holder.kill()
            self.holder.wait()
            os.close(self.fd)
            os.close(self.orig)


class World:
    """The module's namespace, API server (admin client) and download/reload server."""

    def __init__(self, netns, kube, files):
        self.netns = netns
        self.kube = kube
        self.files = files


@pytest.fixture(scope="module")
def fleet_world(tmp_path_factory):
    os.environ["KUBE_APISERVER"] = build_apiserver()
    netns = NetNS()
    kube = files = None
    try:
        netns.enter()
        kube = KubeEnv(tmp_path_factory.mktemp("fleet-kube")).start()
        kube.admin.apply(GAMESERVER_CRD)
        files = FileServer()
        yield World(netns, kube, files)
    finally:
        close_world(netns, kube, files)


def close_world(netns, kube, files, fleet=None):
    """Stops everything, each step even when an earlier one failed (the first error wins)."""
    try:
        if fleet:
            fleet.close()
    finally:
        try:
            if files:
                files.close()
        finally:
            try:
                if kube:
                    kube.stop()
            finally:
                netns.close()


class FleetPod:
    def __init__(self, name, ip, suite, downloads, reload_path):
        self.name = name
        self.ip = ip
        self.suite = suite
        self.downloads = downloads
        self.reload_path = reload_path

    def file(self, name="index.html"):
        p = self.downloads / name
        return p.read_bytes() if p.exists() else None


class Fleet:
    """A namespace (with the sidecar's RBAC), a GameServerSet's pods and GameServers, one
    running suite per pod, and an operator kubeconfig (admin by default)."""

    def __init__(self, world, tmp_path, gss="game"):
        self.world = world
        self.kube = world.kube
        self.admin = world.kube.admin
        self.tmp = tmp_path
        self.gss = gss
        self.ns, _ = self.kube.sidecar_namespace("fleet")
        self.sa_token = str(tmp_path / "sidecar-token")
        self.kube.admin.write_token_file(self.sa_token, self.ns)
        self.sidecar_kubeconfig = self.kube.write_kubeconfig(str(tmp_path / "sidecar.kubeconfig"),
                                                             self.ns, token_file=self.sa_token)
        self.kubeconfig = write_kubeconfig(str(tmp_path / "operator.kubeconfig"), self.kube.server,
                                           self.kube.ca, token=self.kube.admin_token,
                                           namespace=self.ns)
        self.pods = {}
        self.suites = []

    def add_pod(self, name, priority=None, ops_state="None", reload_path="/status/200",
                auth_token_file=None, files=None, suite=True):
        """A Pod + GameServer on a fresh address, and (suite=True) its running suite; without
        one nothing listens on the pod IP until the test puts something there."""
        files = files or self.world.files
        ip = self.world.netns.new_address()
        labels = {OWNER: self.gss}
        self.admin.create_pod(self.ns, name, labels=labels)
        self.admin.check(self.admin.patch(self.admin.pod_path(self.ns, name) + "/status",
                                          {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}),
                         200, what=f"status.podIP of {name}")
        spec = {"updatePriority": priority} if priority is not None else None
        self.admin.create_gameserver(self.ns, name, ops_state=ops_state, labels=labels, spec=spec)
        d = self.tmp / name
        downloads = d / "downloads"
        downloads.mkdir(parents=True)
        (downloads / "index.html").write_text("v0 from the image\n")
        extra = (f"request:\n  address: 127.0.0.1\n  port: {files.port}\n"
                 f"  path: {reload_path}\n  method: GET\n")
        if auth_token_file:
            extra += f"authTokenFile: {auth_token_file}\n"
        section = hot_update_section(5000, downloads, mode="request", extra=extra)
        section = section.replace("bindAddress: 127.0.0.1", f"bindAddress: {ip}")
        config = make_config(free_port(), [(section, 0)],
                             extra="storage:\n  backend: kubernetes\nstopTimeoutSeconds: 20\n")
        s = Suite(d, config) if suite else None
        if s:
            self.suites.append(s)
        self.pods[name] = FleetPod(name, ip, s, downloads, reload_path)
        return self.pods[name]

    def start(self):
        pods = [p for p in self.pods.values() if p.suite]
        for p in pods:
            if p.suite.proc is None:
                p.suite.start({"KUBECONFIG": self.sidecar_kubeconfig, "POD_NAME": p.name,
                               "POD_NAMESPACE": self.ns})
        for p in pods:
            p.suite.wait_ready()
        return self

    def annotation(self, name):
        status, body = self.admin.get(self.admin.pod_path(self.ns, name))
        ann = (body or {}).get("metadata", {}).get("annotations") or {}
        return json.loads(ann[ANNOTATION]) if status == 200 and ANNOTATION in ann else None

    def operator(self, tmp_name="operator-role.kubeconfig"):
        """deploy/fleet-rbac.yaml applied; a kubeconfig for its ServiceAccount."""
        self.admin.apply(FLEET_RBAC, self.ns)
        self.admin.wait_access(self.ns, OPERATOR_SA, "create", "pods", subresource="proxy")
        token_file = str(self.tmp / (tmp_name + ".token"))
        self.admin.write_token_file(token_file, self.ns, OPERATOR_SA)
        return write_kubeconfig(str(self.tmp / tmp_name), self.kube.server, self.kube.ca,
                                token_file=token_file, namespace=self.ns)

    def okgctl(self, *args, kubeconfig=None, timeout=180, binary=OKGCTL, env=None):
        """(exit status, stdout, stderr) of `okgctl fleet ARGS` as the operator."""
        e = dict(os.environ, KUBECONFIG=kubeconfig or self.kubeconfig)
        e.update(env or {})
        r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                           env=e)
        bad = [line for line in r.stderr.splitlines() if any(m in line for m in SANITIZER_MARKERS)]
        assert not bad, "sanitizer reports from okgctl:\n" + r.stderr[-4000:]
        return r.returncode, r.stdout, r.stderr

    def hot_update(self, version, url, *args, **kw):
        return self.okgctl("fleet", "hot-update", "-n", self.ns, self.gss, "--version", version,
                           "--url", url, *args, **kw)

    def hot_update_json(self, version, url, *args, **kw):
        rc, out, err = self.hot_update(version, url, "--json", *args, **kw)
        try:
            return rc, json.loads(out), err
        except ValueError:
            raise AssertionError(f"okgctl did not print JSON (rc {rc}):\n{out}\n{err}")

    def proxy_posts(self, since, code=None):
        """Pods (sorted names, one per request) that got a POST through the API server's pod
        proxy since an audit mark; the audit names them POD:PORT."""
        evs = self.kube.audit.select(since, resource="pods", subresource="proxy",
                                     namespace=self.ns, verb="create", code=code)
        return sorted(e["objectRef"]["name"].split(":")[0] for e in evs)

    def wait_proxy_posts(self, since, n, code=None):
        """proxy_posts() once at least n of them are in the audit log: the API server writes an
        event just after its answer, so okgctl may be done before the last one is there."""
        assert n > 0
        return wait_for(lambda: (lambda p: p if len(p) >= n else None)(
            self.proxy_posts(since, code)), what=f"{n} pod proxy POST(s) in the audit log")

    def close(self):
        close_suites(self.suites, self.tmp)


@pytest.fixture
def fleet(fleet_world, tmp_path):
    f = Fleet(fleet_world, tmp_path)
    yield f
    f.close()


def kubectl_plugin_dir(tmp_path):
    """A directory with kubectl-okg (okgctl under the plugin name), to put on PATH."""
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    link = d / "kubectl-okg"
    if not link.exists():
        link.symlink_to(OKGCTL)
    return str(d)


def have_kubectl():
    return shutil.which("kubectl") is not None
