"""Helpers for okg-probed's component tests: a real nginx serving a state file the test rewrites,
a Python HTTP stub for hangs, delays, JSON and error codes, the http_probe config, the
io.kruise.game.Probe1 objects through busctl, and a view of what okg-storaged stored.

The storage view is a parameter: LocalStoreView reads okg-storaged's local store file (no
cluster); a view on a real API server can implement the same three methods."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SAFETY_TIMEOUT, free_port, make_config, spawn, wait_for

POD = "game-0"
NAMESPACE = "default"
PROBE_NAME = "io.kruise.game.Probe1"
PROBE_PATH = "/io/kruise/game/Probe1"
PROBE_IFACE = "io.kruise.game.Probe1"
ENDPOINT_IFACE = "io.kruise.game.Probe1.Endpoint"
STORAGE_NAME = "io.kruise.game.Storage1"
STORAGE_PATH = "/io/kruise/game/Storage1"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


# ---- the game: nginx serving a file ----

class NginxGame:
    """An nginx of its own (prefix, config, pid file in a temp dir) on a free loopback port,
    serving <docroot>/state as text/plain. set_state() rewrites the file atomically."""

    def __init__(self, base):
        self.dir = base / "nginx"
        self.docroot = self.dir / "html"
        self.docroot.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.set_state("None")
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(f"""\
{user}worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {self.dir}/logs/access.log;
    client_body_temp_path {self.dir}/tmp-body;
    proxy_temp_path {self.dir}/tmp-proxy;
    fastcgi_temp_path {self.dir}/tmp-fastcgi;
    uwsgi_temp_path {self.dir}/tmp-uwsgi;
    scgi_temp_path {self.dir}/tmp-scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.docroot};
        location / {{ }}
    }}
}}
""")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/state"

    def set_state(self, text):
        tmp = self.docroot / ".state.tmp"
        tmp.write_text(text)
        os.rename(tmp, self.docroot / "state")

    def start(self):
        self.proc = spawn(
            [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "logs" / "stderr.log", "w"))
        wait_for(self._answers, what="nginx answering")
        return self

    def _answers(self):
        try:
            with urllib.request.urlopen(self.url, timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def requests(self):
        """Lines of the access log (one per request)."""
        p = self.dir / "logs" / "access.log"
        return p.read_text().splitlines() if p.exists() else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the stub: Python http.server with switchable answers ----

class Answer:
    """What the stub answers on a path: status, body, a delay before answering, a hang (no
    answer until the stub is closed), or a gate (a threading.Event: no answer until the test
    sets it, so "still waiting" is decided by the test, not by a clock)."""

    def __init__(self, body="None", status=200, delay=0.0, hang=False,
                 content_type="text/plain", gate=None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.delay = delay
        self.hang = hang
        self.gate = gate
        self.content_type = content_type


class Stub:
    def __init__(self):
        self.answers = {}
        self.hits = {}            # path -> list of (monotonic time, method, headers, body)
        self.lock = threading.Lock()
        self.closing = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with stub.lock:
                    stub.hits.setdefault(self.path, []).append(
                        (time.monotonic(), self.command, dict(self.headers), body))
                    a = stub.answers.get(self.path, Answer(status=404, body="no such path"))
                if a.hang:
                    stub.closing.wait()
                    return
                if a.delay:
                    stub.closing.wait(a.delay)
                if a.gate is not None:
                    while not a.gate.wait(0.05):
                        if stub.closing.is_set():
                            return
                try:
                    self.send_response(a.status)
                    self.send_header("Content-Type", a.content_type)
                    self.send_header("Content-Length", str(len(a.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(a.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the prober gave up first (its timeout): nobody to answer

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path, answer):
        with self.lock:
            self.answers[path] = answer

    def count(self, path):
        with self.lock:
            return len(self.hits.get(path, []))

    def times(self, path):
        with self.lock:
            return [h[0] for h in self.hits.get(path, [])]

    def last(self, path):
        with self.lock:
            return self.hits[path][-1]

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


@pytest.fixture
def nginx_game(suite_factory, tmp_path):
    """A running nginx game stub. Depends on suite_factory so that it is stopped before the
    suite fixture checks for processes left behind."""
    g = NginxGame(tmp_path).start()
    yield g
    g.stop()


# ---- config ----

def policies(*states, indent=14):
    """markerPolices mapping each state to the opsState of the same name."""
    pad = " " * indent
    return "".join(f"{pad}- state: {s}\n{pad}  gameServerOpsState: {s}\n" for s in states)


def endpoint(url, extra="", storage=None):
    """One endpoint entry (YAML, 8 spaces in). storage: the storageConfig body or None."""
    text = f"        - url: {url}\n"
    for line in extra.strip("\n").splitlines():
        text += f"          {line}\n"
    if storage is not None:
        text += "          storageConfig:\n" + storage
    return text


def in_kube(*states, annotation_key=None, label_key=None):
    text = "            type: InKube\n            inKube:\n"
    if annotation_key:
        text += f"              annotationKey: {annotation_key}\n"
    if label_key:
        text += f"              labelKey: {label_key}\n"
    if states:
        text += "              markerPolices:\n" + policies(*states, indent=16)
    return text


def probe_config(health_port, endpoints, interval=1, start_delay=0, extra=""):
    section = "  - name: http_probe\n    config:\n"
    section += f"      probeIntervalSeconds: {interval}\n      startDelaySeconds: {start_delay}\n"
    section += "      endpoints:\n" + "".join(endpoints)
    # make_config() formats the template: keep literal braces (JSON bodies) literal.
    template = section.replace("{", "{{").replace("}", "}}") + "    bootorder: {boot}\n"
    return make_config(health_port, plugins=[(template, 0)], extra=extra)


SUITE_ENV = {"POD_NAME": POD, "POD_NAMESPACE": NAMESPACE}


def start_suite(suite_factory, text, env=None):
    s = suite_factory(text)
    s.start({**SUITE_ENV, **(env or {})})
    s.wait_ready()
    return s


# ---- io.kruise.game.Probe1 ----

def endpoint_path(index):
    return f"{PROBE_PATH}/endpoint/{index}"


def ep_prop(suite, index, prop):
    return suite.busctl("get-property", PROBE_NAME, endpoint_path(index), ENDPOINT_IFACE, prop,
                        json_out=True)["data"]


def mgr_prop(suite, prop):
    return suite.busctl("get-property", PROBE_NAME, PROBE_PATH, PROBE_IFACE, prop,
                        json_out=True)["data"]


def probe_call(suite, method, *args):
    return suite.busctl("call", PROBE_NAME, PROBE_PATH, PROBE_IFACE, method, *args,
                        json_out=True)


def wait_ep(suite, index, prop, value, timeout=SAFETY_TIMEOUT):
    return wait_for(lambda: ep_prop(suite, index, prop) == value, timeout,
                    what=f"endpoint {index} {prop} == {value!r}")


def wait_probes(suite, index, more_than, timeout=SAFETY_TIMEOUT):
    """Waits until endpoint index has made more than more_than probes; returns the count."""
    return wait_for(lambda: (lambda n: n if n > more_than else 0)(ep_prop(suite, index, "Probes")),
                    timeout, what=f"endpoint {index} probes > {more_than}")


def storage_prop(suite, prop):
    return suite.busctl("get-property", STORAGE_NAME, STORAGE_PATH, STORAGE_NAME, prop,
                        json_out=True)["data"]


# ---- what okg-storaged stored ----

class LocalStoreView:
    """okg-storaged's local store: <state-dir>/local-store.json, mirroring the objects."""

    def __init__(self, suite):
        self.path = suite.state / "local-store.json"

    def _doc(self):
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def gameserver(self):
        return self._doc().get("gameservers", {}).get(f"{NAMESPACE}/{POD}")

    def pod(self):
        return self._doc().get("pods", {}).get(f"{NAMESPACE}/{POD}")

    def ops_state(self):
        gs = self.gameserver() or {}
        return gs.get("spec", {}).get("opsState")

    def gs_labels(self):
        return ((self.gameserver() or {}).get("metadata") or {}).get("labels") or {}

    def gs_annotations(self):
        return ((self.gameserver() or {}).get("metadata") or {}).get("annotations") or {}

    def pod_annotations(self):
        return ((self.pod() or {}).get("metadata") or {}).get("annotations") or {}

    def pod_labels(self):
        return ((self.pod() or {}).get("metadata") or {}).get("labels") or {}

    def version(self):
        """Changes whenever the store is written (it is replaced by rename)."""
        try:
            st = os.stat(self.path)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

