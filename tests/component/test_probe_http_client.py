"""okg-probed's own HTTP/1.1 client (plain http to an address; libcurl only for https and host
names): against real servers (nginx, Python's HTTP/1.0 http.server) and a socket-level server
for what a well-behaved one does not do (closing kept connections, resets, silence, huge
headers). Probes are started with ProbeNow, an hour apart otherwise."""
import http.server
import socket
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
    (half an answer, then a reset), "huge" (a 200 KiB header)."""

    def __init__(self, host="127.0.0.1", mode=lambda c, r: "ok", body=b"A"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.body = body
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
        return f"http://{h}:{self.port}/state"

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
