"""okg-hotupdated's front door: a table of bad requests, each with its status and proof that
nothing changed; body caps, slow clients, one update at a time, auth, shutdown mid-download."""
import json
import os
import re
import socket
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest

from conftest import BUILD, free_port, scaled, wait_for
from hotupdate_helpers import backend, hot, raw_http, status_line  # noqa: F401

LIMITS = """maxFileSizeBytes: 1048576
connectTimeoutSeconds: 2
downloadTimeoutSeconds: 2
"""


def form(**kw):
    return urllib.parse.urlencode(kw).encode()


OKGCTL = os.path.join(BUILD, "okgctl", "okgctl")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def bad_cases(hot, url1, sha1):
    """(name, method, query, body, headers, status, state, recorded)."""
    ok = hot.files.url("/v2/index.html")
    closed = f"http://127.0.0.1:{free_port()}/index.html"
    return [
        ("no parameters", "POST", "", b"", FORM, 400, "Invalid", False),
        ("url missing", "POST", "", form(version="v2"), FORM, 400, "Invalid", False),
        ("version missing", "POST", "", form(url=ok), FORM, 400, "Invalid", False),
        ("unknown parameter", "POST", "", form(verison="v2", url=ok), FORM, 400, "Invalid", False),
        ("version twice", "POST", "", b"version=v2&version=v3&url=" + ok.encode(), FORM, 400,
         "Invalid", False),
        ("query and body both give version", "POST", "?version=v2", form(version="v2", url=ok),
         FORM, 400, "Invalid", False),
        ("version with a space", "POST", "", form(version="v 2", url=ok), FORM, 400, "Invalid",
         False),
        ("version too long", "POST", "", form(version="v" * 129, url=ok), FORM, 400, "Invalid",
         False),
        ("ftp URL", "POST", "", form(version="v2", url="ftp://127.0.0.1/index.html"), FORM, 400,
         "Invalid", False),
        ("file URL", "POST", "", form(version="v2", url="file:///etc/passwd"), FORM, 400,
         "Invalid", False),
        ("URL without scheme", "POST", "", form(version="v2", url="cdn.example.com/index.html"),
         FORM, 400, "Invalid", False),
        ("credentials in URL", "POST", "", form(version="v2", url="http://u:p@127.0.0.1/a.html"),
         FORM, 400, "Invalid", False),
        ("URL without a file name", "POST", "", form(version="v2", url=hot.files.url("/v2/")),
         FORM, 400, "Invalid", False),
        ("path traversal in fileName", "POST", "",
         form(version="v2", url=ok, fileName="../../etc/passwd"), FORM, 400, "Invalid", False),
        ("hidden fileName", "POST", "", form(version="v2", url=ok, fileName=".bashrc"), FORM,
         400, "Invalid", False),
        ("fileName with a slash", "POST", "", form(version="v2", url=ok, fileName="a/b"), FORM,
         400, "Invalid", False),
        ("traversal in the URL's last segment", "POST", "",
         form(version="v2", url=hot.files.url("/x%2F..%2F..%2Fetc%2Fpasswd")), FORM, 400,
         "Invalid", False),
        ("malformed sha256", "POST", "", form(version="v2", url=ok, sha256="abc"), FORM, 400,
         "Invalid", False),
        ("malformed %-escape", "POST", "", b"version=v%zz&url=" + ok.encode(), FORM, 400,
         "Invalid", False),
        ("broken JSON", "POST", "", b'{"version": "v2", "url": ', JSON, 400, "Invalid", False),
        ("JSON number version", "POST", "", json.dumps({"version": 2, "url": ok}).encode(), JSON,
         400, "Invalid", False),
        ("JSON array", "POST", "", json.dumps(["v2", ok]).encode(), JSON, 400, "Invalid", False),
        ("text/plain body", "POST", "", b"version=v2", {"Content-Type": "text/plain"}, 415,
         "UnsupportedMediaType", False),
        ("multipart body", "POST", "", b"--x\r\n", {"Content-Type": "multipart/form-data; boundary=x"},
         415, "UnsupportedMediaType", False),
        ("body over 16 KiB", "POST", "", form(version="v2", url=ok, x="y" * 20000), FORM, 413,
         "RequestTooLarge", False),
        ("PUT", "PUT", "", form(version="v2", url=ok), FORM, 405, "MethodNotAllowed", False),
        ("DELETE", "DELETE", "", b"", {}, 405, "MethodNotAllowed", False),
        ("same version, another URL", "POST", "", form(version="v1", url=ok), FORM, 422,
         "VersionConflict", False),
        ("same version, another checksum", "POST", "",
         form(version="v1", url=url1, sha256="0" * 64), FORM, 422, "VersionConflict", False),
        # Accepted, then failed: recorded, and still nothing changes.
        ("download answers 404", "POST", "", form(version="v2", url=hot.files.url("/status/404"),
                                                   fileName="index.html"), FORM, 502,
         "DownloadFailed", True),
        ("download answers 500", "POST", "", form(version="v2", url=hot.files.url("/status/500"),
                                                   fileName="index.html"), FORM, 502,
         "DownloadFailed", True),
        ("nothing listens", "POST", "", form(version="v2", url=closed), FORM, 502,
         "DownloadFailed", True),
        ("wrong sha256", "POST", "", form(version="v2", url=hot.files.url("/v2/index.html"),
                                          sha256=sha1), FORM, 502, "ChecksumMismatch", True),
        ("endless chunked file", "POST", "", form(version="v2", url=hot.files.url("/huge"),
                                                  fileName="index.html"), FORM, 502,
         "FileTooLarge", True),
        ("Content-Length over the cap", "POST", "",
         form(version="v2", url=hot.files.url("/lie-big"), fileName="index.html"), FORM, 502,
         "FileTooLarge", True),
        ("connection closed before Content-Length", "POST", "",
         form(version="v2", url=hot.files.url("/lie-short"), fileName="index.html"), FORM, 502,
         "DownloadFailed", True),
        ("redirect to ftp", "POST", "", form(version="v2", url=hot.files.url("/redirect-ftp"),
                                             fileName="index.html"), FORM, 502,
         "DownloadFailed", True),
        ("download stalls", "POST", "", form(version="v2", url=hot.files.url("/stall"),
                                             fileName="index.html"), FORM, 504,
         "DownloadTimedOut", True),
    ]


def test_bad_requests_change_nothing(hot):
    hot.start(extra=LIMITS)
    url1, sha1 = hot.files.put("/v1/index.html", "v1 content\n")
    hot.files.put("/v2/index.html", "v2 content\n")
    assert hot.post(version="v1", url=url1)[0] == 200
    hot.wait_recorded("v1")
    wait_for(lambda: hot.nginx.reloads() == 1 and len(hot.nginx.workers()) == 2, what="v1 settled")
    workers = hot.nginx.workers()
    record = hot.backend.record(hot.suite)
    annotation = hot.backend.annotation(hot.suite)

    cases = bad_cases(hot, url1, sha1)
    assert len(cases) >= 25
    for name, method, query, body, headers, status, state, recorded in cases:
        got, res, hdrs = hot.request(method, body if method != "DELETE" else None, headers, query)
        assert (got, res and res.get("state")) == (status, state), (name, got, res)
        assert res["success"] is False and res["message"] and "\n" not in res["message"], name
        assert res["currentVersion"] == "v1", name
        if status == 405:
            assert hdrs["Allow"] == "GET, HEAD, POST", name
        # Nothing changed: the file, what nginx serves, the version, no reload, no temp file.
        assert hot.file() == b"v1 content\n", name
        assert hot.nginx.body("/index.html") == b"v1 content\n", name
        assert hot.version() == "v1", name
        assert hot.nginx.workers() == workers and hot.nginx.reloads() == 1, name
        assert hot.temp_files() == [], name
        if recorded:
            # The failure is on the pod; the version in place is still v1.
            ann, rec = hot.wait_recorded("v2", state)
            assert ann["currentVersion"] == "v1" and ann["success"] is False, name
            assert rec["version"] == "v1" and rec["sha256"] == sha1, name
            annotation = ann
        else:
            assert hot.backend.annotation(hot.suite) == annotation, name
            assert hot.backend.record(hot.suite)["version"] == "v1", name
    assert hot.backend.record(hot.suite)["appliedAt"] == record["appliedAt"]

    # Other paths are not the API.
    assert status_line(raw_http(hot.port, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 404
    assert status_line(raw_http(hot.port, b"POST /hot-update/ HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Length: 0\r\nConnection: close\r\n\r\n")) == 404
    # ... and the daemon is still fine.
    url3, _ = hot.files.put("/v3/index.html", "v3 content\n")
    assert hot.post(version="v3", url=url3)[0] == 200
    assert hot.nginx.body("/index.html") == b"v3 content\n"


def test_chunked_body_over_the_cap(hot):
    hot.start()
    chunk = b"a" * 8192
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    resp = raw_http(hot.port, b"POST /hot-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"Content-Type: application/x-www-form-urlencoded\r\n"
                              b"Connection: close\r\n\r\n" + body)
    assert status_line(resp) == 413, resp[:200]
    assert b'"RequestTooLarge"' in resp
    # An endless one is cut off.
    with socket.create_connection(("127.0.0.1", hot.port), timeout=scaled(20)) as s:
        s.sendall(b"POST /hot-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        big = b"%x\r\n%s\r\n" % (65536, b"b" * 65536)
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(2000):       # 128 MiB at most
                s.sendall(big)
    assert hot.status()[0] == 200


def still_open(sock):
    """The peer has neither closed nor reset the connection, nor sent anything."""
    sock.setblocking(False)
    try:
        return sock.recv(1) is None
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def read_until_closed(sock):
    """What the server sent before it closed the connection (a reset counts as closed)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_head(sock):
    """Reads up to the end of the response headers (the connection stays open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_slow_clients_do_not_block_others(hot):
    """Two slow clients are connected (one stopped in its headers, one in its body) and the
    service answers others meanwhile. Proven by order, not by time: the others are answered
    while both slow connections are still open, which a server blocked on a slow client cannot
    do. clientTimeoutSeconds is the largest allowed so that no load can cut them first."""
    hot.start(extra="clientTimeoutSeconds: 3600\n")
    url1, _ = hot.files.put("/v1/index.html", "v1\n")
    idle = socket.create_connection(("127.0.0.1", hot.port), timeout=scaled(30))
    trickle = socket.create_connection(("127.0.0.1", hot.port), timeout=scaled(30))
    try:
        idle.sendall(b"POST /hot-update HTTP/1.1\r\nHost: x\r\n")
        body = form(version="v1", url=url1)
        trickle.sendall(b"POST /hot-update HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                        % len(body) + body[:3])
        assert hot.status()[0] == 200
        assert hot.post(version="v1", url=url1)[0] == 200
        hot.wait_recorded("v1")
        assert still_open(idle) and still_open(trickle)
        # They were live connections all along: each is answered once it is complete.
        idle.sendall(b"Content-Length: 0\r\n\r\n")
        assert status_line(read_head(idle)) is not None
        trickle.sendall(body[3:])
        assert status_line(read_head(trickle)) is not None
    finally:
        idle.close()
        trickle.close()


def trickle_bytes(sock, data, stop, sent):
    """Sends data one byte every 0.5 s until stop is set or the server closes; each byte sent
    is appended to sent."""
    for b in data:
        if stop.wait(0.5):
            return
        try:
            sock.sendall(bytes([b]))
        except OSError:
            return
        sent.append(b)


def test_slow_clients_are_cut(hot):
    """A client that stops in its headers is cut after clientTimeoutSeconds of silence; one
    that keeps trickling its body is cut too (its activity never lets MHD's idle timeout fire:
    the daemon's own deadline does). The trickled body is never complete, so a missing cut
    shows as a connection still open at the safety timeout, whatever the machine's load."""
    hot.start(extra="clientTimeoutSeconds: 2\n")
    url1, _ = hot.files.put("/v1/index.html", "v1\n")
    idle = socket.create_connection(("127.0.0.1", hot.port), timeout=scaled(60))
    idle.sendall(b"POST /hot-update HTTP/1.1\r\nHost: x\r\n")
    trickle = socket.create_connection(("127.0.0.1", hot.port), timeout=scaled(60))
    body = form(version="v1", url=url1)
    # Declared longer than what is ever sent (still under the body cap).
    trickle.sendall(b"POST /hot-update HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                    % (len(body) + 8000))
    stop = threading.Event()
    sent = []
    t = threading.Thread(target=trickle_bytes,
                         args=(trickle, body + b"&pad=" + b"x" * 7995, stop, sent), daemon=True)
    t.start()
    try:
        assert idle.recv(4096) == b""
        data = read_until_closed(trickle)
        assert b"HTTP/1.1 200" not in data and b"Succeeded" not in data
        # Cut while it was still sending: the trickle had more to send.
        assert len(sent) < len(body) + 8000
    finally:
        stop.set()
        t.join(scaled(10))
        idle.close()
        trickle.close()
    # No update came of either: the service is idle and still on no version.
    st = hot.status()[1]
    assert st["state"] != "downloading" and not st.get("inFlight"), st
    assert hot.files.count("/v1/index.html") == 0


def test_a_client_trickling_its_request_head_is_cut(hot):
    """A client that sends its request line and headers one byte at a time never lets MHD's
    idle timeout fire; it would hold one of the 64 connections for hours, so a few addresses
    could shut hot update out. The head has to be complete within clientTimeoutSeconds of the
    connection (okg-http-server.c; the health port's server is the same code). The head below
    takes over 30 minutes to trickle, so a missing cut shows as a connection still open at the
    safety timeout, whatever the machine's load; others are still served afterwards."""
    hot.start(extra="clientTimeoutSeconds: 2\n")
    sock = socket.create_connection(("127.0.0.1", hot.port), timeout=scaled(60))
    head = b"GET /hot-update HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 4000 + b"\r\n\r\n"
    stop, sent = threading.Event(), []
    t = threading.Thread(target=trickle_bytes, args=(sock, head, stop, sent), daemon=True)
    t.start()
    try:
        data = read_until_closed(sock)
        assert b"HTTP/1.1" not in data, data
        # Cut while it was still sending its head.
        assert 0 < len(sent) < len(head)
    finally:
        stop.set()
        t.join(scaled(10))
        sock.close()
    hot.suite.wait_log("did not send its request head within 2 s")
    assert hot.status()[0] == 200


def test_one_update_at_a_time(hot):
    # The update outlasts clientTimeoutSeconds: a client waiting for it is not cut off. The
    # stalled download must also outlast the steps below, which take longer on a loaded
    # machine (4 s was a narrow margin): its timeout is scaled like the safety timeouts.
    download_timeout = max(10, round(scaled(10)))
    hot.start(extra=f"downloadTimeoutSeconds: {download_timeout}\nclientTimeoutSeconds: 1\n")
    url1, _ = hot.files.put("/v1/index.html", "v1\n")
    assert hot.post(version="v1", url=url1)[0] == 200
    results = {}

    def slow():
        results["slow"] = hot.post(version="v2", url=hot.files.url("/stall"), fileName="index.html")
    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: hot.status()[1]["state"] == "downloading", what="download in flight")
    st = hot.status()[1]
    assert st["inFlight"]["version"] == "v2" and st["version"] == "v1"
    assert hot.prop("State") == "downloading"
    url3, _ = hot.files.put("/v3/index.html", "v3\n")
    status, res = hot.post(version="v3", url=url3)
    assert status == 409 and res["state"] == "Busy" and "v2" in res["message"], res
    assert hot.files.count("/v3/index.html") == 0
    t.join(download_timeout + scaled(60))
    assert results["slow"][0] == 504 and results["slow"][1]["state"] == "DownloadTimedOut"
    assert hot.file() == b"v1\n" and hot.version() == "v1"
    # Free again.
    assert hot.post(version="v3", url=url3)[0] == 200


def test_bearer_token(hot, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    hot.start(extra=f"authTokenFile: {token_file}\n")
    url1, _ = hot.files.put("/v1/index.html", "v1\n")
    for headers, why in [({}, "missing"), ({"Authorization": "Basic czNjcmV0"}, "expected"),
                         ({"Authorization": "Bearer wrong"}, "wrong"),
                         ({"Authorization": "Bearer s3cret-token-and-more"}, "wrong")]:
        status, res, hdrs = hot.request("POST", form(version="v1", url=url1), {**FORM, **headers})
        assert status == 401 and res["state"] == "Unauthorized" and why in res["message"]
        assert hdrs["WWW-Authenticate"].startswith("Bearer")
    assert hot.status()[0] == 401
    assert hot.files.count("/v1/index.html") == 0 and hot.backend.annotation(hot.suite) is None
    good = {"Authorization": "Bearer s3cret-token"}
    assert hot.status(good)[0] == 200
    status, res = hot.post(headers=good, version="v1", url=url1)
    assert status == 200 and res["state"] == "Succeeded"
    # A rotated Secret takes effect at once.
    token_file.write_text("rotated\n")
    assert hot.post(headers=good, version="v2", url=url1)[0] == 401
    assert hot.status({"Authorization": "bearer rotated"})[0] == 200


def test_token_header_for_the_pod_proxy(hot, tmp_path):
    # Through the API server's pod proxy Authorization is gone (it was the API server's):
    # X-Hot-Update-Token carries the token, and wins over Authorization.
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    hot.start(extra=f"authTokenFile: {token_file}\n")
    url1, _ = hot.files.put("/v1/index.html", "v1\n")
    for headers in [{"X-Hot-Update-Token": "wrong"},
                    {"X-Hot-Update-Token": "s3cret-token-and-more"},
                    {"X-Hot-Update-Token": "wrong", "Authorization": "Bearer s3cret-token"}]:
        status, res, _ = hot.request("POST", form(version="v1", url=url1), {**FORM, **headers})
        assert status == 401 and res["state"] == "Unauthorized", headers
    assert hot.files.count("/v1/index.html") == 0 and hot.backend.annotation(hot.suite) is None
    assert hot.status({"X-Hot-Update-Token": "s3cret-token"})[0] == 200
    status, res = hot.post(headers={"X-Hot-Update-Token": "s3cret-token",
                                    "Authorization": "Bearer the-api-servers-token"},
                           version="v1", url=url1)
    assert status == 200 and res["state"] == "Succeeded"


def test_shutdown_mid_download_leaves_nothing(hot):
    s = hot.start(extra="downloadTimeoutSeconds: 60\n")
    url1, _ = hot.files.put("/v1/index.html", "v1\n")
    assert hot.post(version="v1", url=url1)[0] == 200
    hot.wait_recorded("v1")
    record = hot.backend.record(s)
    results = {}

    def slow():
        try:
            results["slow"] = hot.post(version="v2", url=hot.files.url("/stall"), fileName="index.html")
        except Exception as e:      # the connection is closed under it
            results["slow"] = e
    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: hot.status()[1]["state"] == "downloading", what="download in flight")
    assert s.stop() == 0
    t.join(30)
    assert not isinstance(results["slow"], tuple) or results["slow"][0] >= 500
    assert hot.own_files() == [".okg-prev-index.html"]
    assert hot.file() == b"v1\n"
    assert hot.backend.record(s) == record
    assert "Stopping with the update to v2 unfinished" in s.log_text()


def credential_urls(base):
    """base is host:port; every spelling of user info a request URL can carry."""
    return [f"http://alice@{base}/v2/index.html", f"http://alice:s3cr3t@{base}/v2/index.html",
            f"http://:s3cr3t@{base}/v2/index.html", f"http://@{base}/v2/index.html",
            f"http://:@{base}/v2/index.html", f"http://al%40ice:s3%40cr3t@{base}/v2/index.html",
            f"http://alice:s3cr3t@x@{base}/v2/index.html", f"alice:s3cr3t@{base}/v2/index.html"]


def assert_no_credentials(text, what):
    for word in ("alice", "s3cr3t", "al%40ice", "s3%40cr3t"):
        assert word not in text, (what, word, text)


def test_url_with_credentials_is_refused_and_never_echoed(hot):
    """A request URL with user info in any form is a 400 like every invalid parameter (answered,
    logged, counted, not recorded on the pod) and nothing shows it: not the answer, the log,
    /hot-update, the bus, /metrics or okgctl. Even with allowedSources naming the host."""
    s = hot.start(extra=f"allowedSources: ['http://127.0.0.1:{hot.files.port}/']\n")
    url1, _ = hot.files.put("/v1/index.html", "v1 content\n")
    hot.files.put("/v2/index.html", "v2 content\n")
    assert hot.post(version="v1", url=url1)[0] == 200
    hot.wait_recorded("v1")
    annotation, record = hot.backend.annotation(hot.suite), hot.backend.record(hot.suite)
    dest = ("io.kruise.game.HotUpdate1", "/io/kruise/game/HotUpdate1", "io.kruise.game.HotUpdate1")
    base = f"127.0.0.1:{hot.files.port}"
    for url in credential_urls(base):
        for how in ("form", "json", "query"):
            if how == "form":
                status, res = hot.post(version="v2", url=url)
            elif how == "json":
                status, res = hot.post_json({"version": "v2", "url": url, "fileName": "index.html"})
            else:
                status, res, _ = hot.request(
                    "POST", b"", FORM, "?" + urllib.parse.urlencode({"version": "v2", "url": url}))
            assert (status, res["state"]) == (400, "Invalid"), (url, how, res)
            assert res["message"].startswith("invalid url: "), (url, res)
            assert_no_credentials(json.dumps(res), (url, how))
            # Masked as ***@ where the mask can tell the user info, else not shown.
            assert res.get("url") in (None, f"http://***@{base}/v2/index.html"), (url, res)
        r = s.busctl("call", *dest, "Update", "ssss", "v2", url, "", "", check=False)
        assert r.returncode != 0 and "Invalid: invalid url: " in r.stderr, r.stderr
        assert_no_credentials(r.stdout + r.stderr, url)
        r = subprocess.run([OKGCTL, "--address", str(s.runtime), "hot-update", "v2", url],
                           capture_output=True, text=True, timeout=scaled(30))
        assert r.returncode == 1 and "invalid url" in r.stderr, (url, r.stderr)
        assert_no_credentials(r.stdout + r.stderr, url)

    # Nothing changed, nothing was fetched, nothing recorded; it was counted.
    assert hot.files.count("/v2/index.html") == 0
    assert hot.file() == b"v1 content\n" and hot.version() == "v1"
    assert hot.backend.annotation(hot.suite) == annotation
    assert hot.backend.record(hot.suite) == record
    st = hot.status()[1]
    assert [h["version"] for h in st["history"]] == ["v1"], st
    assert_no_credentials(json.dumps(st), "GET /hot-update")
    assert_no_credentials(json.dumps(s.busctl("call", *dest, "GetStatus", json_out=True)), "bus")
    for prop in ("CurrentURL", "LastResult"):
        assert_no_credentials(json.dumps(hot.prop(prop)), prop)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics",
                                     timeout=scaled(10)).read().decode()
    counted = re.search(r'^okg_sidecar_hotupdate_total\{result="Invalid"\} (\d+)$', metrics, re.M)
    assert counted and int(counted.group(1)) >= 8 * 3, metrics
    assert_no_credentials(metrics, "/metrics")
    log = s.log_text()
    assert log.count("Refused a /hot-update request: Invalid: invalid url: ") >= 8 * 3
    assert_no_credentials(log, "log")
    r = subprocess.run([OKGCTL, "--address", str(s.runtime), "hot-update"], capture_output=True,
                       text=True, timeout=scaled(30))
    assert r.returncode == 0 and "v1" in r.stdout
    assert_no_credentials(r.stdout, "okgctl hot-update")


@pytest.mark.parametrize("sources", [False, True])
def test_redirect_to_a_url_with_credentials_is_refused(hot, sources):
    """libcurl would send a redirect's user:password: refused before the request goes out, with or
    without allowedSources, and the log shows the URL masked."""
    extra = f"allowedSources: ['http://127.0.0.1:{hot.files.port}/']\n" if sources else ""
    s = hot.start(extra=extra)
    url1, _ = hot.files.put("/v1/index.html", "v1 content\n")
    hot.files.put("/v2/index.html", "v2 content\n")
    assert hot.post(version="v1", url=url1)[0] == 200
    hot.wait_recorded("v1")
    base = f"127.0.0.1:{hot.files.port}"
    for i, target in enumerate((f"//alice:s3cr3t@{base}/v2/index.html", f"//alice@{base}/v2/index.html",
                                f"http://:s3cr3t@{base}/v2/index.html", f"//@{base}/v2/index.html")):
        hot.files.redirects[f"/jump{i}"] = target
        status, res = hot.post(version=f"v2{i}", url=hot.files.url(f"/jump{i}"),
                               fileName="index.html")
        assert (status, res["state"]) == (403, "Forbidden"), (target, res)
        assert "the URL carries credentials (user:password@), which are never sent" in res["message"]
        assert_no_credentials(json.dumps(res), target)
        hot.wait_recorded(f"v2{i}", "Forbidden")
    assert hot.files.count("/v2/index.html") == 0
    assert hot.file() == b"v1 content\n" and hot.version() == "v1"
    log = s.log_text()
    assert f"Refused a redirect to http://***@{base}/v2/index.html" in log
    assert_no_credentials(log, "log")
    assert_no_credentials(json.dumps(hot.backend.annotation(hot.suite)), "annotation")
    assert_no_credentials(json.dumps(hot.backend.record(hot.suite)), "record")
