"""okg-probed's own HTTP/1.1 client (plain http to an address; libcurl only for https and host
names): against real servers (nginx, Python's HTTP/1.0 http.server) and a socket-level server
for what a well-behaved one does not do (closing kept connections, resets, silence, huge
headers). Probes are started with ProbeNow, an hour apart otherwise."""
import gzip
import http.server
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import free_port, wait_for
from probe_helpers import (endpoint, ep_prop, in_kube, nginx_game, probe_config, start_suite)

assert nginx_game   # fixture, used by name


def maps_libcurl(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any("/libcurl" in line for line in f)


class RawServer:
    """A socket-level HTTP server on one loopback address. mode(n_conn, n_req) says how to
    answer request n_req (0-based) on connection n_conn: "ok" (HTTP/1.1, kept open),
    "chunked", "close" (Connection: close), "close-after" (an answer saying keep-alive, then
    the connection closed), "drop" (closed without an answer), "never" (no answer), "reset"
    (half an answer, then a reset), "huge" (a 200 KiB header); bytes: sent as they are; (bytes, "close"): sent, then closed."""

    def __init__(self, host="127.0.0.1", mode=lambda c, r: "ok", body=b"A", tls=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.body = body
        self.tls = tls              # an ssl.SSLContext: the same answers over TLS
        self.accepts = 0
        self.requests = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                n = self.accepts
                self.accepts += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, c, n_conn):
        buf = b""
        n_req = 0
        try:
            if self.tls:
                c = self.tls.wrap_socket(c, server_side=True)
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                with self.lock:
                    self.requests.append(head.decode())
                m = self.mode(n_conn, n_req)
                n_req += 1
                body = self.body
                if isinstance(m, bytes):    # the answer as it is, the connection kept
                    c.sendall(m)
                    continue
                if isinstance(m, tuple):    # (bytes, "close"): the answer, then a close
                    c.sendall(m[0])
                    return
                if m == "drop":
                    return
                if m == "never":
                    self.stop.wait()
                    return
                if m == "reset":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nAB")
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    return
                if m == "huge":
                    c.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200 * 1024 +
                              b"\r\nContent-Length: 1\r\n\r\nA")
                    continue
                if m == "chunked":
                    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                              b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                    continue
                extra = b"Connection: close\r\n" if m == "close" else b""
                c.sendall(b"HTTP/1.1 200 OK\r\n" + extra +
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                if m in ("close", "close-after"):
                    return
        except OSError:
            pass
        finally:
            c.close()

    def url(self, host=None):
        h = host or ("[::1]" if self.sock.family == socket.AF_INET6 else "127.0.0.1")
        return f"{'https' if self.tls else 'http'}://{h}:{self.port}/state"

    def close(self):
        """Stops listening (new connections are refused) and ends the open ones."""
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def servers():
    made = []

    def make(*a, **kw):
        s = RawServer(*a, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    """A server context with a throw-away self-signed certificate (probes do not verify)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(d / "tls.key"), "-out",
                    str(d / "tls.crt")], check=True, capture_output=True, timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(d / "tls.crt"), str(d / "tls.key"))
    return ctx


def suite_with(suite_factory, urls, extra="timeout: 1"):
    text = probe_config(free_port(), [endpoint(u, extra, in_kube("A", "B")) for u in urls],
                        interval=3600, start_delay=3600)
    return start_suite(suite_factory, text)


def probe(s, index=0):
    """One probe of endpoint index, waited for; returns (LastResult, LastError, State)."""
    n = ep_prop(s, index, "Probes")
    out = s.busctl("call", "io.kruise.game.Probe1", f"/io/kruise/game/Probe1/endpoint/{index}",
                   "io.kruise.game.Probe1.Endpoint", "ProbeNow", json_out=True)
    assert out["data"] == [True]
    wait_for(lambda: ep_prop(s, index, "Probes") == n + 1, what=f"probe {n + 1}")
    return (ep_prop(s, index, "LastResult"), ep_prop(s, index, "LastError"),
            ep_prop(s, index, "State"))


def probed_pid(s):
    return s.units()["http_probe"]["pid"]


def test_keep_alive_server_one_connection_for_all_probes(suite_factory, servers):
    srv = servers()
    s = suite_with(suite_factory, [srv.url()])
    for _ in range(5):
        assert probe(s) == ("success", "", "A")
    assert srv.accepts == 1
    req = srv.requests[0].split("\r\n")
    assert req[0] == "GET /state HTTP/1.1"
    assert f"Host: 127.0.0.1:{srv.port}" in req
    assert any(h.startswith("User-Agent: okg-probed/") for h in req)
    assert "Accept: */*" in req
    assert not maps_libcurl(probed_pid(s))


def test_nginx_keeps_its_connection_and_no_libcurl(suite_factory, nginx_game):
    nginx_game.set_state("A")
    s = suite_with(suite_factory, [nginx_game.url])
    assert probe(s) == ("success", "", "A")
    nginx_game.set_state("B")
    assert probe(s) == ("success", "", "B")
    assert probe(s)[2] == "B"
    assert len(nginx_game.requests()) >= 3
    assert not maps_libcurl(probed_pid(s))


def test_http10_server_closes_each_time(suite_factory, tmp_path):
    root = tmp_path / "http10"
    root.mkdir()
    (root / "state").write_text("A")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)   # HTTP/1.0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = suite_with(suite_factory, [f"http://127.0.0.1:{srv.server_address[1]}/state"])
        for _ in range(3):
            assert probe(s) == ("success", "", "A")
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("mode", ["chunked", "close", "close-after"])
def test_chunked_and_closing_servers(suite_factory, servers, mode):
    srv = servers(mode=lambda c, r: mode)
    s = suite_with(suite_factory, [srv.url()])
    for _ in range(3):
        assert probe(s) == ("success", "", "A")
    assert srv.accepts == (1 if mode == "chunked" else 3)


def test_kept_connection_closed_by_server_is_retried_once(suite_factory, servers):
    """The server takes the second request on a kept connection and closes it unanswered (what a
    server's idle timeout does when it races the request): the probe goes again on a new
    connection and succeeds."""
    srv = servers(mode=lambda c, r: "drop" if r == 1 else "ok")
    s = suite_with(suite_factory, [srv.url()])
    assert probe(s) == ("success", "", "A")
    assert probe(s) == ("success", "", "A")
    assert srv.accepts == 2


def test_silent_server_times_out(suite_factory, servers):
    srv = servers(mode=lambda c, r: "never")
    s = suite_with(suite_factory, [srv.url()])
    assert probe(s)[:2] == ("timeout", "no answer within 1s")


def test_refused(suite_factory):
    s = suite_with(suite_factory, [f"http://127.0.0.1:{free_port()}/state"])
    assert probe(s)[:2] == ("connect-error", "Couldn't connect to server: Connection refused")


def test_reset_mid_answer_then_recovers(suite_factory, servers):
    srv = servers(mode=lambda c, r: "reset" if c == 0 else "ok")
    s = suite_with(suite_factory, [srv.url()])
    result, error, _ = probe(s)
    assert result == "http-error"
    assert error in ("Failure when receiving data from the peer: Connection reset by peer",
                     "Transferred a partial file")
    assert probe(s) == ("success", "", "A")


def test_huge_header_is_a_clear_failure(suite_factory, servers):
    srv = servers(mode=lambda c, r: "huge" if c == 0 else "ok")
    s = suite_with(suite_factory, [srv.url()])
    pid = probed_pid(s)
    result, error, _ = probe(s)
    assert result == "http-error"
    assert error == "Failure when receiving data from the peer"
    assert probe(s) == ("success", "", "A")
    assert probed_pid(s) == pid


def test_ipv6_literal_and_localhost(suite_factory, servers):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    v6 = servers(host="::1", body=b"B")
    v4 = servers()
    s = suite_with(suite_factory, [v6.url(), v4.url("localhost")])
    assert probe(s, 0) == ("success", "", "B")
    assert probe(s, 1) == ("success", "", "A")
    assert f"Host: [::1]:{v6.port}" in v6.requests[0].split("\r\n")
    assert f"Host: localhost:{v4.port}" in v4.requests[0].split("\r\n")
    assert not maps_libcurl(probed_pid(s))


def test_localhost_falls_back_to_ipv6(suite_factory, servers):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    v6 = servers(host="::1", body=b"B")
    s = suite_with(suite_factory, [v6.url("localhost")])
    assert probe(s) == ("success", "", "B")


def test_https_probe_loads_libcurl(suite_factory, servers):
    srv = servers()
    s = suite_with(suite_factory, [srv.url(), f"https://127.0.0.1:{srv.port}/state"])
    pid = probed_pid(s)
    assert probe(s, 0) == ("success", "", "A")
    assert not maps_libcurl(pid)
    result, _, _ = probe(s, 1)
    assert result != "success"     # no TLS there
    assert maps_libcurl(pid)


# ---- the service_quality plugin's httpGet probes go through the same client ----

def test_service_quality_http_keeps_one_connection_without_libcurl(suite_factory, tmp_path,
                                                                   servers):
    """httpGet probes every second to a keep-alive server: one connection for all of them,
    kubelet's headers, no libcurl; a server that then refuses gives Go's dial text."""
    from test_service_quality import probe as sq_probe, probe_prop, start_local, wait_probe
    srv = servers(body=b"ready")
    s = start_local(suite_factory, tmp_path, [
        sq_probe("idle", {"httpGet": {"path": "/state", "port": srv.port}}, delay=0)])
    wait_probe(s, 0, "True", "ready")
    wait_for(lambda: probe_prop(s, 0, "Probes") >= 4, what="4 httpGet probes")
    assert srv.accepts == 1
    req = srv.requests[0].split("\r\n")
    assert req[0] == "GET /state HTTP/1.1"
    assert "User-Agent: kube-probe" in req and "Accept: */*" in req
    pid = s.units()["service_quality"]["pid"]
    assert not maps_libcurl(pid)
    srv.close()
    wait_probe(s, 0, "False", f'Get "http://127.0.0.1:{srv.port}/state": dial tcp '
               f'127.0.0.1:{srv.port}: connect: connection refused')
    assert not maps_libcurl(pid)


# ---- answers whose framing a well-behaved server rarely sends ----

def test_no_body_answers_do_not_wait_for_their_content_length(suite_factory, servers):
    """A 304 (or 204) that names the length of the page it stands for has no body (RFC 9112
    6.3; curl and Go do not wait for one): the probe reads the status at once, it does not time
    out, and the connection stays usable for the next probe."""
    answers = [b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
               b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"]
    srv = servers(mode=lambda c, r: answers[min(r, 2)])
    s = suite_with(suite_factory, [srv.url()], extra="timeout: 2")
    assert probe(s)[:2] == ("bad-status", "HTTP status 304: a redirect without a Location to follow")
    assert probe(s)[:2] == ("success", "")
    assert probe(s) == ("success", "", "A")
    assert srv.accepts == 1


def test_switching_protocols_connection_is_not_reused(suite_factory, servers):
    """A 101 hands the connection to another protocol: the probe fails on the status and the
    next one opens a new connection instead of writing HTTP into a WebSocket."""
    srv = servers(mode=lambda c, r: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n" if c == 0 else "ok")
    s = suite_with(suite_factory, [srv.url()], extra="timeout: 2")
    assert probe(s)[:2] == ("bad-status", "HTTP status 101, expected 200-399")
    assert probe(s) == ("success", "", "A")
    assert srv.accepts == 2


def test_chunked_with_content_length_reads_the_chunks(suite_factory, servers):
    """Transfer-Encoding: chunked and a Content-Length both: the chunks count (as curl and Go
    read it), and the connection is not kept for another request."""
    srv = servers(mode=lambda c, r: b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n")
    s = suite_with(suite_factory, [srv.url()], extra="timeout: 2")
    assert probe(s) == ("success", "", "A")
    assert probe(s) == ("success", "", "A")
    assert srv.accepts == 2


def test_repeated_content_length(suite_factory, servers):
    """The same Content-Length twice (some proxies add their own) is one length, as curl and Go
    read it; two different ones cannot be framed: an http-error, and the next probe on a new
    connection."""
    same = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nA"
    other = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nAB"
    srv = servers(mode=lambda c, r: same if c == 0 and r < 2 else other if c == 0 else "ok")
    s = suite_with(suite_factory, [srv.url()], extra="timeout: 2")
    assert probe(s) == ("success", "", "A")
    assert probe(s) == ("success", "", "A")
    assert probe(s)[:2] == ("http-error", "Weird server reply")
    assert probe(s) == ("success", "", "A")
    assert srv.accepts == 2


def test_service_quality_status_line_then_silence_is_awaiting_headers(suite_factory, tmp_path,
                                                                        servers):
    """httpGet to a server that sends its status line and then nothing: Go has no answer until
    the headers are whole, so kubelet's text is the deadline "awaiting headers" (not the
    silence kept for a body that broke off); a 304 naming a length is read at once."""
    from test_service_quality import probe as sq_probe, start_local, wait_probe
    stall = servers(mode=lambda c, r: b"HTTP/1.1 200 OK\r\nX-A: 1\r\n")
    n304 = servers(mode=lambda c, r: b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")
    s = start_local(suite_factory, tmp_path, [
        sq_probe("idle", {"httpGet": {"path": "/x", "port": stall.port}}, delay=0, timeout=1),
        sq_probe("busy", {"httpGet": {"path": "/x", "port": n304.port}}, delay=0, timeout=1)])
    wait_probe(s, 0, "False", f'Get "http://127.0.0.1:{stall.port}/x": context deadline exceeded '
               '(Client.Timeout exceeded while awaiting headers)')
    wait_probe(s, 1, "True", "Probe terminated redirects, Response body: ")


@pytest.mark.parametrize("banner", [b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
                                    b"\0\0\x12\x04\0\0\0\0\0\0\x03\0\0\0\x64\0\x04\0\x10\0\0"])
def test_not_http_reads_as_curl_says(suite_factory, servers, banner):
    """A port that speaks something else (an SSH banner, an HTTP/2-only server's SETTINGS
    frame): the same LastError as the same server gets through libcurl (a host name)."""
    srv = servers(mode=lambda c, r: banner)
    name = socket.gethostname()
    try:
        by_name = socket.gethostbyname(name) == "127.0.0.1"
    except OSError:
        by_name = False
    s = suite_with(suite_factory, [srv.url()] + ([srv.url(name)] if by_name else []),
                   extra="timeout: 2")
    own = probe(s, 0)
    assert own[:2] == ("http-error", "Unsupported protocol")
    if by_name:     # the host name resolves to the same server: libcurl's reading
        assert probe(s, 1)[:2] == own[:2]



def test_service_quality_body_broken_off_says_what_curl_says(suite_factory, tmp_path, servers):
    """A body cut short (by a close, or the deadline) gives no result for the round, as with
    kubelet; LastError then reads as libcurl's would for the same server: the bytes left of a
    known length, or what arrived of the body (headers not counted)."""
    from test_service_quality import probe as sq_probe, probe_prop, start_local
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    stall = servers(mode=lambda c, r: answer)
    closed = servers(mode=lambda c, r: (answer, "close"))
    s = start_local(suite_factory, tmp_path, [
        sq_probe("idle", {"httpGet": {"path": "/x", "port": stall.port}}, delay=0, timeout=1),
        sq_probe("busy", {"httpGet": {"path": "/x", "port": closed.port}}, delay=0, timeout=1)])
    wait_for(lambda: probe_prop(s, 0, "LastError").startswith("Operation timed out after "),
             what="the stalled body's timeout")
    assert probe_prop(s, 0, "LastError").endswith(" milliseconds with 3 out of 10 bytes received")
    wait_for(lambda: probe_prop(s, 1, "LastError") ==
             "transfer closed with 7 bytes remaining to read", what="the broken body's error")


# ---- transfer codings other than chunked: Go's net/http (kubelet) refuses the answer ----

GZIPPED = gzip.compress(b"A")


def te_answer(*codings):
    """A 200 whose body is "A" gzipped, then chunked, with these Transfer-Encoding fields."""
    fields = b"".join(b"Transfer-Encoding: %s\r\n" % c for c in codings)
    return (b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n" +
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(GZIPPED), GZIPPED))


TE_CASES = [((b"gzip, chunked",), 'unsupported transfer encoding: "gzip, chunked"'),
            ((b"gzip", b"chunked"), 'too many transfer encodings: ["gzip" "chunked"]')]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("codings,why", TE_CASES, ids=["gzip-chunked", "two-fields"])
def test_transfer_coding_other_than_chunked_fails_the_probe(suite_factory, servers, tls_context,
                                                            tls, codings, why):
    """The body is not handed over still encoded (a state read from gzip bytes): the probe fails
    with the coding named, over the own client (http) and libcurl (https) alike, and the next
    probe, on a new connection, reads a plain answer."""
    srv = servers(mode=lambda c, r: te_answer(*codings) if c == 0 else "ok",
                  tls=tls_context if tls else None)
    s = suite_with(suite_factory, [srv.url()], extra="timeout: 2")
    assert probe(s)[:2] == ("http-error", "Unrecognized or bad HTTP Content or "
                                          f"Transfer-Encoding: {why}")
    assert probe(s) == ("success", "", "A")
    assert srv.accepts == 2
    assert maps_libcurl(probed_pid(s)) == tls


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_service_quality_transfer_coding_other_than_chunked(suite_factory, tmp_path, servers,
                                                            tls_context, tls):
    """httpGet: kubelet's text, Go's transport refusing the answer."""
    from test_service_quality import probe as sq_probe, start_local, wait_probe
    srvs = [servers(mode=lambda c, r, cod=cod: te_answer(*cod), tls=tls_context if tls else None)
            for cod, _ in TE_CASES]
    scheme = "HTTPS" if tls else "HTTP"
    s = start_local(suite_factory, tmp_path, [
        sq_probe(name, {"httpGet": {"path": "/x", "port": srv.port, "scheme": scheme}}, delay=0,
                 timeout=2)
        for name, srv in zip(("idle", "busy"), srvs)])
    for i, (srv, (_, why)) in enumerate(zip(srvs, TE_CASES)):
        wait_probe(s, i, "False", f'Get "{scheme.lower()}://127.0.0.1:{srv.port}/x": net/http: '
                   f'HTTP/1.x transport connection broken: {why}')


# ---- localhost: 127.0.0.1, then ::1 (Go: the first family, the other as its fallback) ----

def test_service_quality_localhost_refused_names_the_first_address(suite_factory, tmp_path):
    """Nothing listens on either address: Go's dialer reports its primary's error (127.0.0.1,
    the first address of localhost), not the fallback's; so does the plugin."""
    from test_service_quality import probe as sq_probe, start_local, wait_probe
    port = free_port()
    s = start_local(suite_factory, tmp_path, [
        sq_probe("idle", {"httpGet": {"host": "localhost", "path": "/x", "port": port}}, delay=0,
                 timeout=2)])
    wait_probe(s, 0, "False", f'Get "http://localhost:{port}/x": dial tcp 127.0.0.1:{port}: '
               'connect: connection refused')
