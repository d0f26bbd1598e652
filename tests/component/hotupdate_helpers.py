"""Helpers for the okg-hotupdated component tests: a real nginx as the game, a download server
(Python http.server in a thread, with slow, stalling, oversized and lying handlers), the
hot_update config, and the storage backend the outcome is read back from (the local store; the
real API server variant plugs in as another Backend)."""
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import (SAFETY_TIMEOUT, QuietHTTPServer, free_port, make_config, scaled, spawn,
                      wait_for)
from kube import kube  # noqa: F401  (the session fixture, used by KubeBackend)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ANNOTATION = "sidecar.vke.volcengine.com/hot-update-result"
POD_ENV = {"POD_NAME": "game-0", "POD_NAMESPACE": "games"}


# ---------------------------------------------------------------- nginx, the game

class Nginx:
    """nginx with its own prefix: master + 2 workers on a free loopback port, serving root."""

    def __init__(self, base, root, port=None, binary=NGINX, extra_server=""):
        self.base = base
        self.root = root
        self.port = port or free_port()
        self.binary = binary
        self.conf = os.path.join(base, "nginx.conf")
        self.proc = None
        os.makedirs(os.path.join(base, "tmp"), exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        temps = "".join(f"    {k}_temp_path {base}/tmp/{k};\n"
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(self.conf, "w") as f:
            f.write(f"""{user}worker_processes 2;
pid {base}/nginx.pid;
error_log {base}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temps}    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        location / {{ add_header Cache-Control no-store; }}
{extra_server}    }}
}}
""")

    @property
    def title(self):
        """The master's title prefix, unique to this instance (processName)."""
        return f"nginx: master process {self.binary} -c {self.conf}"

    def start(self):
        log = open(os.path.join(self.base, "stdout.log"), "w")
        self.proc = spawn(
            [self.binary, "-c", self.conf, "-e", os.path.join(self.base, "error.log"),
             "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: self.proc.poll() is None and len(self.workers()) == 2
                 and self.status("/") is not None, what="nginx up")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def workers(self):
        """PIDs of the master's live children."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                out.append(int(d))
        return sorted(out)

    def get(self, path):
        """(status, body bytes) or (None, None) when nginx does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None, None

    def status(self, path):
        return self.get(path)[0]

    def body(self, path):
        return self.get(path)[1]

    def wait_reloaded(self, old_workers, timeout=SAFETY_TIMEOUT):
        """The master started new workers and the old ones are gone: it handled SIGHUP."""
        old = set(old_workers)
        return wait_for(lambda: (lambda w: len(w) == 2 and not (set(w) & old) and w)(self.workers()),
                        timeout, what="nginx workers replaced")

    def reloads(self):
        """How many reloads nginx logged (SIGHUP received)."""
        try:
            with open(os.path.join(self.base, "error.log")) as f:
                return f.read().count("(SIGHUP) received")
        except FileNotFoundError:
            return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- the download server

class FileServer:
    """Serves self.files[path] (bytes); counts hits per path. Special paths:
    /status/N        answers N with a small body
    /stall           headers (Content-Length 1000), 10 bytes, then nothing until stopped
    /slow            1 byte every 0.2 s (Content-Length 100)
    /huge            chunked, endless, until the client goes
    /lie-big         Content-Length 10^12 (and a few bytes)
    /lie-short       Content-Length 1000, 10 bytes, close
    /redirect/PATH   302 to PATH
    /redirect-ftp    302 to ftp://
    self.redirects   path -> Location: 302 there (a Location the request URL does not show)
    /check           answers self.check_status (post-reload checks); after
                     self.check_hang_after answers, the next ones hang for 30 s
    /empty           200 with an empty body
    """

    def __init__(self):
        self.files = {}
        self.redirects = {}
        self.hits = {}
        self.check_status = 200
        self.check_hits = 0
        self.check_hang_after = None
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body=b"", headers=()):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                with server.lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                try:
                    self._route(path)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _route(self, path):
                if path in server.files:
                    return self._send(200, server.files[path])
                if path in server.redirects:
                    return self._send(302, b"", [("Location", server.redirects[path])])
                if path.startswith("/status/"):
                    return self._send(int(path.split("/")[2]), b"error page\n")
                if path == "/check":
                    server.check_hits += 1
                    if (server.check_hang_after is not None
                            and server.check_hits > server.check_hang_after):
                        server.stop_event.wait(30)
                    return self._send(server.check_status, b"check\n")
                if path == "/empty":
                    return self._send(200, b"")
                if path.startswith("/redirect/"):
                    return self._send(302, b"", [("Location", path[len("/redirect"):])])
                if path == "/redirect-ftp":
                    return self._send(302, b"", [("Location", "ftp://127.0.0.1/x")])
                if path == "/stall":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    server.stop_event.wait(120)
                    return
                if path == "/slow":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        if server.stop_event.wait(0.2):
                            return
                        self.wfile.write(b"s")
                        self.wfile.flush()
                    return
                if path == "/huge":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"h" * 65536
                    while not server.stop_event.is_set():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    return
                if path == "/lie-big":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 ** 12))
                    self.end_headers()
                    self.wfile.write(b"y" * 100)
                    return
                if path == "/lie-short":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b"z" * 10)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(404, b"not found\n")

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path, data):
        """Serves data at path; returns (url, sha256)."""
        if isinstance(data, str):
            data = data.encode()
        self.files[path] = data
        return self.url(path), hashlib.sha256(data).hexdigest()

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def close(self):
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- config and the suite

def hot_update_section(port, download_dir, process_name=None, extra="", mode="signal",
                       signal_name="SIGHUP"):
    """A hot_update plugin entry for make_config() (with its {boot} placeholder)."""
    lines = ["  - name: hot_update", "    config:", f"      loadPatchType: {mode}"]
    if mode == "signal":
        lines += ["      signal:", f"        processName: '{process_name}'",
                  f"        signalName: {signal_name}"]
    lines += ["      storageConfig:", "        inKube:", f"          annotationKey: {ANNOTATION}",
              "        type: InKube", "      bindAddress: 127.0.0.1", f"      port: {port}",
              f"      downloadDir: {download_dir}"]
    text = "\n".join(lines) + "\n"
    if extra:
        text += "".join(f"      {line}\n" for line in extra.strip("\n").splitlines())
    text += "    bootorder: {boot}\n"
    return text.replace("{", "{{").replace("}", "}}").replace("{{boot}}", "{boot}")


class LocalBackend:
    """okg-storaged's local store: <state-dir>/local-store.json."""
    name = "local"
    config_extra = "storage:\n  backend: local\n"

    def env(self):
        return dict(POD_ENV)

    def _doc(self, suite):
        try:
            with open(suite.state / "local-store.json") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def annotation(self, suite):
        """The parsed annotation value, or None."""
        ns, pod = POD_ENV["POD_NAMESPACE"], POD_ENV["POD_NAME"]
        ann = (self._doc(suite).get("pods", {}).get(f"{ns}/{pod}", {}).get("metadata", {})
               .get("annotations", {}))
        return json.loads(ann[ANNOTATION]) if ANNOTATION in ann else None

    def record(self, suite):
        """The parsed recovery record, or None."""
        ns, pod = POD_ENV["POD_NAMESPACE"], POD_ENV["POD_NAME"]
        data = (self._doc(suite).get("configmaps", {}).get(f"{ns}/sidecar-result", {})
                .get("data", {}))
        return json.loads(data[pod]) if pod in data else None

    def events(self, suite):
        return self._doc(suite).get("events", [])


    def seed_records(self, suite_state_dir, records):
        """Records of other pods (name -> dict) in place before the suite starts."""
        ns = POD_ENV["POD_NAMESPACE"]
        os.makedirs(suite_state_dir, exist_ok=True)
        with open(os.path.join(suite_state_dir, "local-store.json"), "w") as f:
            json.dump({"configmaps": {f"{ns}/sidecar-result": {
                "metadata": {"name": "sidecar-result", "namespace": ns},
                "data": {k: json.dumps(v) for k, v in records.items()}}}}, f)


class KubeBackend:
    """A real kube-apiserver (kube.py): a namespace with deploy/rbac.yaml, the pod game-0 of the
    GameServerSet "game" and its GameServer, and a kubeconfig with a bound token for the
    okg-sidecar ServiceAccount."""
    name = "kube"
    config_extra = "storage:\n  backend: kubernetes\n"

    def __init__(self, kube, tmp_path):
        self.kube = kube
        self.pod = POD_ENV["POD_NAME"]
        self.ns, _ = kube.sidecar_namespace("hot")
        kube.admin.create_pod(self.ns, self.pod, labels={"game.kruise.io/owner-gss": "game"})
        kube.admin.create_gameserver(self.ns, self.pod, labels={"game.kruise.io/owner-gss": "game"})
        token = str(tmp_path / "kube-token")
        kube.admin.write_token_file(token, self.ns)
        self.kubeconfig = kube.write_kubeconfig(str(tmp_path / "kubeconfig"), self.ns,
                                                token_file=token)

    def env(self):
        return {"KUBECONFIG": self.kubeconfig, "POD_NAME": self.pod, "POD_NAMESPACE": self.ns}

    def annotation(self, suite):
        c = self.kube.admin
        status, body = c.get(c.pod_path(self.ns, self.pod))
        ann = (body or {}).get("metadata", {}).get("annotations") or {}
        return json.loads(ann[ANNOTATION]) if status == 200 and ANNOTATION in ann else None

    def record(self, suite):
        c = self.kube.admin
        status, body = c.get(c.configmap_path(self.ns, "sidecar-result"))
        data = (body or {}).get("data") or {}
        return json.loads(data[self.pod]) if status == 200 and self.pod in data else None

    def events(self, suite):
        status, body = self.kube.admin.get(f"/api/v1/namespaces/{self.ns}/events")
        return body.get("items", []) if status == 200 else []

    def seed_records(self, suite_state_dir, records):
        c = self.kube.admin
        c.check(c.post(c.configmap_path(self.ns), {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "sidecar-result", "namespace": self.ns},
            "data": {k: json.dumps(v) for k, v in records.items()}}), 201, what="seed records")


BACKENDS = {"local": LocalBackend, "kube": KubeBackend}


class HotUpdate:
    """One test's world: a download folder, nginx serving it, a file server, and the suite with
    a hot_update plugin signalling that nginx."""

    def __init__(self, tmp_path, suite_factory, backend, nginx_dir):
        self.tmp = tmp_path
        self.suite_factory = suite_factory
        self.backend = backend
        self.downloads = tmp_path / "downloads"
        self.downloads.mkdir(exist_ok=True)
        (self.downloads / "index.html").write_text("v0 from the image\n")
        self.nginx = Nginx(str(nginx_dir), str(self.downloads))
        self.files = FileServer()
        self.port = free_port()
        self.suite = None

    def config(self, extra="", mode="signal", process_name=None, signal_name="SIGHUP",
               top_extra=""):
        section = hot_update_section(self.port, self.downloads,
                                     process_name or self.nginx.title, extra, mode, signal_name)
        return make_config(free_port(), [(section, 0)],
                           extra=self.backend.config_extra + "stopTimeoutSeconds: 20\n" + top_extra)

    def start(self, config_text=None, **kw):
        if self.suite is None:
            self.suite = self.suite_factory(config_text or self.config(**kw))
        elif config_text:
            self.suite.config.write_text(config_text)
        self.suite.start(self.backend.env())
        self.suite.wait_ready()
        wait_for(lambda: self.status()[0] is not None, what="/hot-update answers")
        return self.suite

    # ---- /hot-update ----
    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}/hot-update"

    def request(self, method="POST", data=None, headers=None, query="", timeout=60):
        """(status, parsed JSON or raw text, response headers)."""
        req = urllib.request.Request(self.base + query, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=scaled(timeout)) as r:
                raw, status, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, e.headers
        try:
            return status, json.loads(raw) if raw else None, hdrs
        except ValueError:
            return status, raw.decode(errors="replace"), hdrs

    def post(self, headers=None, query="", timeout=60, **params):
        data = urllib.parse.urlencode(params).encode()
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        status, body, _ = self.request("POST", data, h, query, timeout)
        return status, body

    def post_json(self, obj, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, body, _ = self.request("POST", json.dumps(obj).encode(), h)
        return status, body

    def status(self, headers=None):
        try:
            s, body, _ = self.request("GET", headers=headers, timeout=10)
            return s, body
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None, None

    def version(self):
        return self.status()[1]["version"]

    def file(self, name="index.html"):
        p = self.downloads / name
        return p.read_bytes() if p.exists() else None

    def own_files(self):
        """Names in the download folder that start with '.okg-' (temp or previous copies)."""
        return sorted(n for n in os.listdir(self.downloads) if n.startswith(".okg-"))

    def temp_files(self):
        return [n for n in self.own_files() if not n.startswith(".okg-prev-")]

    def wait_recorded(self, version, state="Succeeded"):
        """The annotation and the record show this outcome (okg-storaged acknowledged it)."""
        def ok():
            a = self.backend.annotation(self.suite)
            r = self.backend.record(self.suite)
            return (a and r and a.get("version") == version and a.get("state") == state
                    and r.get("lastResult", {}).get("state") == state
                    and r.get("lastResult", {}).get("version") == version and (a, r))
        return wait_for(ok, what=f"{version} {state} recorded")

    def hotupdated_pid(self):
        return self.suite.pid("hot_update")

    def busctl(self, *args, **kw):
        return self.suite.busctl(*args, **kw)

    def prop(self, name):
        return self.suite.busctl("get-property", "io.kruise.game.HotUpdate1",
                                 "/io/kruise/game/HotUpdate1", "io.kruise.game.HotUpdate1", name,
                                 json_out=True)["data"]

    def close(self):
        self.files.close()
        self.nginx.stop()


@pytest.fixture(params=["local"])
def backend(request, tmp_path):
    """Where okg-storaged writes: the local store by default; a test that should also run
    against the real API server says @pytest.mark.parametrize("backend", ["local", "kube"],
    indirect=True)."""
    if request.param == "kube":
        return KubeBackend(request.getfixturevalue("kube"), tmp_path)
    return LocalBackend()


@pytest.fixture
def hot(tmp_path, tmp_path_factory, suite_factory, backend):
    """A HotUpdate world with nginx running (the suite is not started yet)."""
    h = HotUpdate(tmp_path, suite_factory, backend, tmp_path_factory.mktemp("nginx"))
    h.nginx.start()
    yield h
    h.close()


def sha256(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def catches_sighup(pid):
    """The process has a SIGHUP handler (SigCgt bit 0): signalling it will not end it."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & 1)
    return False


def raw_http(port, payload, read=True, timeout=10):
    """Sends raw bytes to the server; returns the response bytes (or b'' when closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout)) as s:
        s.sendall(payload)
        if not read:
            return b""
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def status_line(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else None
