"""/hot-update must not be a relay into the node's metadata service (issue 15). Every test runs
in a network namespace of its own (netns.py) whose lo carries 169.254.169.254 (a stand-in
metadata server on port 80) and 10.77.0.1 (a stand-in CDN on port 80). The destination policy is
checked on the address connected to, so the numeric, DNS and redirect spellings of the metadata
address are refused alike; allowedDestinations, allowedSources and allowedFileNames are the
operator's knobs. A refusal is 403 Forbidden, recorded like other failures, and changes no file
and not the version in place."""
import http.server
import json
import os
import re
import subprocess
import threading
import urllib.request

import pytest

from conftest import BUILD, free_port, libexec_dir, wait_for
from hotupdate_helpers import backend, hot, sha256  # noqa: F401  (fixtures)
from netns import network_namespace, private_hosts_wrapper

METADATA = "169.254.169.254"
CDN = "10.77.0.1"
CREDS_PATH = "/latest/meta-data/iam/creds"
CREDS = b'{"AccessKeyId":"AKIA-TEST","SecretAccessKey":"stand-in-secret"}\n'


@pytest.fixture(autouse=True)
def netns():
    with network_namespace([f"{METADATA}/32", f"{CDN}/32"]):
        yield


class Site:
    """A small HTTP server on host:port; routes maps a path to (status, headers, body)."""

    def __init__(self, host, port=0, routes=None):
        self.routes = dict(routes or {})
        self.hits = {}
        self.lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with site.lock:
                    site.hits[path] = site.hits.get(path, 0) + 1
                status, headers, body = site.routes.get(path, (404, [], b"not found\n"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://{self.host}:{self.port}{path}"

    def total_hits(self):
        with self.lock:
            return sum(self.hits.values())

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def metadata():
    s = Site(METADATA, 80, {CREDS_PATH: (200, [], CREDS)})
    yield s
    s.close()


@pytest.fixture
def cdn():
    s = Site(CDN, 80)
    yield s
    s.close()


def start(hot, extra="", open_endpoint=False, libexec=None):
    text = hot.config(extra=extra)
    if open_endpoint:
        # The proposal's own config: every address, no token.
        text = text.replace("bindAddress: 127.0.0.1", "bindAddress: 0.0.0.0")
    if libexec:
        hot.suite = hot.suite_factory(text, libexec=libexec)
    return hot.start(text)


def first_version(hot):
    """v1 in place through an ordinary update, so a refusal has something to leave alone."""
    url, digest = hot.files.put("/v1.html", "v1\n")
    status, res = hot.post(version="v1", url=url, fileName="index.html", sha256=digest)
    assert status == 200 and res["state"] == "Succeeded", res
    hot.wait_recorded("v1")


def snapshot(hot):
    return {n: (hot.downloads / n).read_bytes() for n in sorted(os.listdir(hot.downloads))}


def assert_refused(hot, before, version, status, res, why=None):
    assert status == 403 and res["state"] == "Forbidden", (status, res)
    if why:
        assert why in res["message"], res["message"]
    # Recorded like other failures; the version in place and every file are as they were.
    a, r = hot.wait_recorded(version, "Forbidden")
    assert r["version"] == "v1" and a["currentVersion"] == "v1" and hot.version() == "v1"
    assert snapshot(hot) == before
    assert hot.nginx.status("/creds.txt") == 404


def test_issue_request_is_refused(hot, metadata):
    """The issue's curl, against the proposal's open endpoint: refused before any connection
    to the metadata address; the game serves no credentials."""
    s = start(hot, open_endpoint=True)
    first_version(hot)
    before = snapshot(hot)
    status, res = hot.post(version="v9", url=f"http://{METADATA}{CREDS_PATH}",
                           fileName="creds.txt")
    assert_refused(hot, before, "v9", status, res, "169.254.0.0/16")
    assert metadata.total_hits() == 0
    # Said at start: this endpoint is open to anyone who reaches it.
    assert "has neither authTokenFile nor allowedSources" in s.log_text()


@pytest.mark.parametrize("host", ["2852039166", "0xa9fea9fe", "169.254.43518",
                                  "[::ffff:169.254.169.254]"])
def test_other_spellings_of_the_address_are_refused(hot, metadata, host):
    start(hot)
    first_version(hot)
    before = snapshot(hot)
    status, res = hot.post(version="v9", url=f"http://{host}{CREDS_PATH}", fileName="creds.txt")
    assert_refused(hot, before, "v9", status, res)
    assert metadata.total_hits() == 0


def test_dns_name_resolving_to_link_local_is_refused(hot, metadata, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{METADATA} metadata.test\n")
    real = os.path.join(BUILD, "okg-hotupdated", "okg-hotupdated")
    libexec = libexec_dir(tmp_path, {"okg-hotupdated": private_hosts_wrapper(hosts, real)})
    start(hot, libexec=libexec)
    first_version(hot)
    before = snapshot(hot)
    status, res = hot.post(version="v9", url=f"http://metadata.test{CREDS_PATH}",
                           fileName="creds.txt")
    assert_refused(hot, before, "v9", status, res, METADATA)
    assert metadata.total_hits() == 0


def test_redirect_to_link_local_is_refused(hot, metadata):
    """An allowed server answers 302 to the metadata address: the redirect is refused."""
    start(hot)
    first_version(hot)
    site = Site("127.0.0.1", 0, {"/go": (302, [("Location", f"http://{METADATA}{CREDS_PATH}")],
                                        b"")})
    try:
        before = snapshot(hot)
        status, res = hot.post(version="v9", url=site.url("/go"), fileName="creds.txt")
        assert_refused(hot, before, "v9", status, res, METADATA)
        assert site.hits.get("/go") == 1 and metadata.total_hits() == 0
    finally:
        site.close()


def test_own_ports_are_refused(hot):
    """The daemon's own port and okg-sidecard's health port are the suite, not a source."""
    s = start(hot)
    first_version(hot)
    before = snapshot(hot)
    for i, port in enumerate((hot.port, s.health_port)):
        status, res = hot.post(version=f"v9{i}", url=f"http://127.0.0.1:{port}/x.html")
        assert_refused(hot, before, f"v9{i}", status, res, "okg-sidecar's own")


def test_explicit_allow_of_link_local_passes(hot, metadata):
    """The operator may allow it: then the same request works."""
    start(hot, extra=f"allowedDestinations: [{METADATA}/32]")
    status, res = hot.post(version="v9", url=f"http://{METADATA}{CREDS_PATH}",
                           fileName="creds.txt")
    assert status == 200 and res["state"] == "Succeeded", res
    assert hot.file("creds.txt") == CREDS and metadata.total_hits() == 1


def test_allowed_destinations_lock_downloads_to_the_cdn(hot, cdn, metadata):
    cdn.routes["/game/v1.html"] = (200, [], b"v1 from the CDN\n")
    start(hot, extra="allowedDestinations: [10.77.0.0/16]")
    status, res = hot.post(version="v1", url=cdn.url("/game/v1.html"), fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res
    hot.wait_recorded("v1")
    before = snapshot(hot)
    url, _ = hot.files.put("/v2.html", "v2\n")
    status, res = hot.post(version="v2", url=url, fileName="index.html")
    assert_refused(hot, before, "v2", status, res, "not in allowedDestinations")
    assert hot.files.count("/v2.html") == 0
    status, res = hot.post(version="v9", url=f"http://{METADATA}{CREDS_PATH}",
                           fileName="creds.txt")
    assert_refused(hot, before, "v9", status, res)
    assert metadata.total_hits() == 0


def test_allowed_sources(hot, cdn):
    cdn.routes.update({
        "/game/v1.html": (200, [], b"v1\n"),
        "/other/v2.html": (200, [], b"v2\n"),
        "/game/jump": (302, [("Location", "/other/v2.html")], b""),
    })
    s = start(hot, extra="allowedSources: ['http://10.77.0.1/game/']\n"
                         "allowedDestinations: [10.77.0.0/16]", open_endpoint=True)
    assert "has neither authTokenFile nor allowedSources" not in s.log_text()
    status, res = hot.post(version="v1", url=cdn.url("/game/v1.html"), fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res
    hot.wait_recorded("v1")
    before = snapshot(hot)
    for i, path in enumerate(("/other/v2.html", "/game/../other/v2.html",
                              "/game/%2e%2e/other/v2.html", "/game/jump",
                              # Dot segments with path parameters: ".." to Tomcat and Spring.
                              "/game/..;/other/v2.html", "/game/a/.;/..;/../other/v2.html")):
        status, res = hot.post(version=f"v2{i}", url=f"http://{CDN}{path}", fileName="index.html")
        assert_refused(hot, before, f"v2{i}", status, res)
    assert cdn.hits.get("/other/v2.html", 0) == 0 and cdn.hits.get("/game/jump") == 1


def test_allowed_file_names(hot):
    start(hot, extra="allowedFileNames: ['*.html']")
    first_version(hot)
    before = snapshot(hot)
    url, _ = hot.files.put("/v2.txt", "v2\n")
    status, res = hot.post(version="v2", url=url, fileName="creds.txt")
    assert_refused(hot, before, "v2", status, res, "allowedFileNames")
    assert hot.files.count("/v2.txt") == 0
    status, res = hot.post(version="v3", url=url, fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res


def test_recovery_obeys_the_allowlists(hot):
    """A recorded version that the lists no longer allow is not downloaded again at start."""
    s = start(hot)
    first_version(hot)
    assert s.stop() == 0
    (hot.downloads / "index.html").unlink()
    text = hot.config(extra="allowedFileNames: ['*.json']")
    hot.start(re.sub(r"healthPort: \d+", f"healthPort: {s.health_port}", text))
    ann, rec = hot.wait_recorded("v1", "RecoveryFailed")
    assert "Forbidden" in ann["message"] and "allowedFileNames" in ann["message"], ann
    assert rec["version"] == "v1" and hot.file() is None and hot.files.count("/v1.html") == 1


def test_post_reload_check_to_link_local_is_refused(hot, metadata):
    """The policy is on postReloadCheck too: a check that would reach the metadata address
    fails, so the update is rolled back."""
    start(hot, extra=f"postReloadCheck:\n  url: http://{METADATA}/check\n  timeoutSeconds: 2\n"
                     "  initialDelayMilliseconds: 0")
    url, _ = hot.files.put("/v1.html", "v1\n")
    status, res = hot.post(version="v1", url=url, fileName="index.html")
    assert status == 500 and res["state"] == "RolledBack", res
    assert METADATA in res["message"] and metadata.total_hits() == 0


def test_protections_are_reported(hot):
    s = start(hot, extra="allowedSources: ['http://127.0.0.1/']\nallowedFileNames: ['*.html']")
    p = hot.status()[1]["protections"]
    assert p["allowedSources"] and p["allowedFileNames"] and p["loopbackOnly"]
    assert not p["authToken"] and not p["allowedDestinations"]
    assert set(hot.prop("Protections")) == {"loopbackOnly", "defaultDeniedDestinations",
                                            "allowedSources", "allowedFileNames"}
    with urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'okg_sidecar_hotupdate_protection{protection="allowedSources"} 1' in text
    assert 'okg_sidecar_hotupdate_protection{protection="authToken"} 0' in text
    out = okgctl(s, "status")
    assert "hot-update protections: loopbackOnly defaultDeniedDestinations allowedSources " \
           "allowedFileNames" in out and "OPEN" not in out
    st = json.loads(okgctl(s, "--json", "status"))
    assert "allowedSources" in st["hotUpdateProtections"]


def okgctl(suite, *args):
    r = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "--address", str(suite.runtime),
                        *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_open_endpoint_is_reported(hot):
    """The proposal's config: the warning at start, and okgctl status says so."""
    s = start(hot, open_endpoint=True)
    assert "has neither authTokenFile nor allowedSources" in s.log_text()
    assert "hot-update endpoint is OPEN" in okgctl(s, "status")
    assert hot.status()[1]["protections"] == {
        "authToken": False, "loopbackOnly": False, "defaultDeniedDestinations": True,
        "allowedDestinations": False, "deniedDestinations": False, "allowedSources": False,
        "allowedFileNames": False}
