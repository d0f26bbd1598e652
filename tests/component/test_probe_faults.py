"""okg-probed against answers that are not a state: redirects (a directory without its trailing
slash, a redirect to another host, a loop, a 3xx with nowhere to go) and states carrying control
or invisible characters; and probe URLs carrying credentials. The game is a real nginx; its
access log says which requests reached which host."""
import os
import re
import subprocess
import urllib.request

import pytest

from conftest import BUILD, free_port, wait_for
from probe_helpers import (NginxGame, LocalStoreView, endpoint, ep_prop, in_kube, probe_config,
                           start_suite)

OKGCTL = os.path.join(BUILD, "okgctl", "okgctl")
# A test finishes in seconds; this only catches a hang.
WAIT = 60.0
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Invisible characters that change how text reads: line/paragraph separators, bidi controls,
# zero-width and other format characters.
INVISIBLE = re.compile("[\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


class RedirectingNginx(NginxGame):
    """The probe helpers' nginx, also listening on 127.0.0.2 (another host for the probe's
    point of view), with redirecting locations, and an access log that names the address each
    request came in on."""

    def __init__(self, base):
        super().__init__(base)
        port = self.port
        chain = "".join(f"        location = /hop/{i} {{ return 302 /hop/{i + 1}; }}\n"
                        for i in range(1, 10))
        conf = (self.dir / "nginx.conf").read_text()
        conf = conf.replace(
            f"    access_log {self.dir}/logs/access.log;\n",
            "    log_format probe '$server_addr $request_uri $status';\n"
            f"    access_log {self.dir}/logs/access.log probe;\n")
        conf = conf.replace(
            f"        listen 127.0.0.1:{port};\n",
            f"        listen 127.0.0.1:{port};\n        listen 127.0.0.2:{port};\n"
            f"        location = /elsewhere {{ return 302 http://127.0.0.2:{port}/state; }}\n"
            "        location = /loop { return 302 /loop; }\n"
            "        location = /multiple { return 300 'pick one'; }\n"
            "        location = /hop/10 { return 302 /plain; }\n" + chain)
        # http -> https on the same host, as a site that moved to TLS answers; a throw-away
        # self-signed certificate (probes do not verify, like kubelet's).
        self.tls_port = free_port()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(self.dir / "tls.key"),
                        "-out", str(self.dir / "tls.crt")], check=True, capture_output=True,
                       timeout=60)
        conf = conf.replace(
            "        location = /loop ",
            f"        location = /tls {{ return 301 https://127.0.0.1:{self.tls_port}/plain; }}\n"
            "        location = /loop ")
        conf = conf.rstrip().rstrip("}") + (
            f"    server {{\n        listen 127.0.0.1:{self.tls_port} ssl;\n"
            f"        ssl_certificate {self.dir}/tls.crt;\n"
            f"        ssl_certificate_key {self.dir}/tls.key;\n"
            f"        root {self.docroot};\n    }}\n}}\n")
        (self.dir / "nginx.conf").write_text(conf)

    def url_of(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, addr=None, path=None):
        out = []
        for line in self.requests():
            a, p, status = line.split()
            if (addr is None or a == addr) and (path is None or p == path):
                out.append((a, p, status))
        return out


@pytest.fixture
def game(suite_factory, tmp_path):
    g = RedirectingNginx(tmp_path).start()
    yield g
    g.stop()


def props(suite, index):
    """State, LastResult and LastError read in one GetAll, so they belong to the same probe."""
    out = suite.busctl("call", "io.kruise.game.Probe1", f"/io/kruise/game/Probe1/endpoint/{index}",
                       "org.freedesktop.DBus.Properties", "GetAll", "s",
                       "io.kruise.game.Probe1.Endpoint", json_out=True)
    every = {k: v["data"] for k, v in out["data"][0].items()}
    return {p: every[p] for p in ("State", "LastResult", "LastError")}


def wait_result(suite, index, result):
    return wait_for(lambda: (lambda p: p if p["LastResult"] == result else None)(
        props(suite, index)), WAIT, what=f"endpoint {index} LastResult {result}")


def okgctl_probes(suite):
    r = subprocess.run([OKGCTL, "--address", str(suite.runtime), "probes"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_directory_redirect_is_followed_to_its_index(suite_factory, game):
    """/state is a directory: nginx answers 301 to /state/, whose index holds the state. The
    state is the index's content, not nginx's redirect page; so is a chain of ten redirects."""
    os.unlink(game.docroot / "state")
    (game.docroot / "state").mkdir()
    (game.docroot / "state" / "index.html").write_text("Allocated\n")
    (game.docroot / "plain").write_text("WaitToBeDeleted\n")
    text = probe_config(free_port(), [
        endpoint(game.url_of("/state"), "timeout: 5",
                 in_kube("None", "Allocated", annotation_key="game.example.com/probed")),
        endpoint(game.url_of("/hop/1"), "timeout: 5")])
    s = start_suite(suite_factory, text)

    p = wait_result(s, 0, "success")
    assert p == {"State": "Allocated", "LastResult": "success", "LastError": ""}
    wait_for(lambda: LocalStoreView(s).ops_state() == "Allocated", WAIT, what="opsState")
    # The pod is a second object, written by a second call after the GameServer's: wait for it
    # too (CI once read the pod between the two writes).
    wait_for(lambda: LocalStoreView(s).pod_annotations().get("game.example.com/probed")
             == "Allocated", WAIT, what="pod annotation")
    # nginx logs a request after it has sent the answer: the last one of a chain may reach the
    # access log after the probe's result reached the bus. The ones before it are logged before
    # nginx reads the next request.
    wait_for(lambda: ("127.0.0.1", "/state/", "200") in game.hits(path="/state/"), WAIT,
             what="/state/ in the access log")
    assert ("127.0.0.1", "/state", "301") in game.hits(path="/state")

    # Ten redirects are followed (kubelet's limit), on to the file holding the state.
    p = wait_result(s, 1, "success")
    assert p["State"] == "WaitToBeDeleted"
    wait_for(lambda: game.hits(path="/plain"), WAIT, what="/plain in the access log")
    assert ("127.0.0.1", "/hop/10", "302") in game.hits(path="/hop/10")


def test_redirect_to_https_on_the_same_host_is_followed(suite_factory, game):
    """http -> https with another port, same host name: followed, as kubelet does."""
    (game.docroot / "plain").write_text("Allocated\n")
    text = probe_config(free_port(), [endpoint(game.url_of("/tls"), "timeout: 5")])
    s = start_suite(suite_factory, text)

    p = wait_result(s, 0, "success")
    assert p == {"State": "Allocated", "LastResult": "success", "LastError": ""}
    # The last request of the chain may be logged after the probe's result is on the bus.
    wait_for(lambda: game.hits(path="/plain"), WAIT, what="/plain in the access log")
    assert ("127.0.0.1", "/tls", "301") in game.hits(path="/tls")


def test_redirect_to_another_host_is_a_failed_probe(suite_factory, game):
    """A redirect to another host is not followed (kubelet does not either), and its page is no
    state: the probe fails and says where it was sent. So does a 3xx with no Location."""
    text = probe_config(free_port(), [
        endpoint(game.url_of("/elsewhere"), "timeout: 5"),
        endpoint(game.url_of("/multiple"), "timeout: 5")])
    s = start_suite(suite_factory, text)

    p = wait_result(s, 0, "bad-status")
    assert p["State"] == ""
    assert p["LastError"] == (f"HTTP status 302: a redirect to another host "
                              f"(http://127.0.0.2:{game.port}/state) is not followed")
    p = wait_result(s, 1, "bad-status")
    assert p["State"] == ""
    assert p["LastError"] == "HTTP status 300: a redirect without a Location to follow"
    assert not game.hits(addr="127.0.0.2")
    assert LocalStoreView(s).ops_state() is None


def test_redirect_loop_fails_after_ten_redirects(suite_factory, game):
    # One probe only (the next is an hour away): a count taken while a probe is half-way
    # through the loop, or before nginx logged its last request, would not be whole.
    text = probe_config(free_port(), [endpoint(game.url_of("/loop"), "timeout: 5")],
                        interval=3600)
    s = start_suite(suite_factory, text)

    p = wait_result(s, 0, "http-error")
    assert p["State"] == ""
    assert p["LastError"] == "more than 10 redirects"
    # The request and ten redirects (nginx logs each one after its answer, so wait for them).
    wait_for(lambda: len(game.hits(path="/loop")) >= 11, WAIT, what="11 requests logged")
    assert ep_prop(s, 0, "Probes") == 1
    assert len(game.hits(path="/loop")) == 11


def test_state_with_control_characters_is_refused(suite_factory, game):
    """A body with CR/LF or an escape sequence inside is no state: the probe fails with a
    clear LastError, the previous state stays, and neither the log nor okgctl's table carries
    the raw characters."""
    for name in ("crlf", "esc"):
        (game.docroot / name).write_text("None\n")
    text = probe_config(free_port(), [
        endpoint(game.url_of("/crlf"), "timeout: 5"),
        endpoint(game.url_of("/esc"), "timeout: 5")])
    s = start_suite(suite_factory, text)
    wait_result(s, 0, "success")
    wait_result(s, 1, "success")

    (game.docroot / "crlf").write_text("Allocated\r\nX-Injected: yes\n")
    (game.docroot / "esc").write_text("\x1b[2J\x1b[31mWaitToBeDeleted\n")
    p0 = wait_result(s, 0, "bad-body")
    p1 = wait_result(s, 1, "bad-body")
    assert p0["State"] == "None" and p1["State"] == "None"
    assert p0["LastError"] == ("the body contains a control character (U+000D at offset 9); "
                               "a state is one line of printable text")
    assert p1["LastError"] == ("the body contains a control character (U+001B at offset 0); "
                               "a state is one line of printable text")

    table = okgctl_probes(s)
    assert not CONTROL.search(table), repr(table)
    assert len([ln for ln in table.splitlines() if "bad-body" in ln]) == 2, table
    log = s.log_text()
    assert "control character (U+001B" in log
    assert not CONTROL.search(log), [ln for ln in log.splitlines() if CONTROL.search(ln)]


def test_state_with_invisible_characters_is_refused(suite_factory, game):
    """A body with a line separator (U+2028), a right-to-left override (U+202E) or a zero-width
    space (U+200B) inside is no state either: each probe fails with a LastError naming the code
    point, the previous state stays, and neither the log nor okgctl's table carries the raw
    character (the table shows the escape when it has to show one)."""
    bodies = {"sep": "Allo\u2028cated", "rlo": "\u202eAllocated", "zw": "Re\u200bady"}
    for name in bodies:
        (game.docroot / name).write_text("None\n")
    text = probe_config(free_port(), [endpoint(game.url_of(f"/{name}"), "timeout: 5")
                                      for name in bodies])
    s = start_suite(suite_factory, text)
    for i in range(len(bodies)):
        wait_result(s, i, "success")

    for name, body in bodies.items():
        (game.docroot / name).write_text(body + "\n", encoding="utf-8")
    p = [wait_result(s, i, "bad-body") for i in range(len(bodies))]
    assert [x["State"] for x in p] == ["None"] * 3
    assert p[0]["LastError"] == ("the body contains a line separator (U+2028 at offset 4); "
                                 "a state is one line of printable text")
    assert p[1]["LastError"] == ("the body contains a bidirectional control (U+202E at offset "
                                 "0); a state is one line of printable text")
    assert p[2]["LastError"] == ("the body contains an invisible format character (U+200B at "
                                 "offset 2); a state is one line of printable text")

    table = okgctl_probes(s)
    assert not INVISIBLE.search(table) and not CONTROL.search(table), repr(table)
    assert len([ln for ln in table.splitlines() if "bad-body" in ln]) == 3, table
    log = s.log_text()
    assert "line separator (U+2028" in log
    assert not INVISIBLE.search(log), [ln for ln in log.splitlines() if INVISIBLE.search(ln)]


def test_url_with_credentials_is_refused_and_never_shown(suite_factory, game):
    """F8: a probe URL with user:password@ is refused when the config is loaded (at start, by
    --check-config and on reload), and the password shows nowhere: not in the messages, the
    log, /metrics or okgctl."""
    port = free_port()
    good = probe_config(port, [endpoint(game.url_of("/state"), "timeout: 5")])
    secret_url = f"http://ops:s3cr3t-pw@127.0.0.1:{game.port}/state"
    bad = probe_config(port, [endpoint(secret_url, "timeout: 5")])
    sidecard = os.path.join(BUILD, "okg-sidecard", "okg-sidecard")

    s = suite_factory(bad)
    r = subprocess.run([sidecard, "--check-config", str(s.config)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert "must not contain credentials" in r.stdout + r.stderr
    assert "http://***@127.0.0.1" in r.stdout + r.stderr
    assert "s3cr3t" not in r.stdout + r.stderr

    s.config.write_text(good)
    s.start()
    s.wait_ready()
    wait_result(s, 0, "success")
    s.config.write_text(bad)
    r = s.call("ReloadConfig", check=False)
    assert r.returncode != 0 and "must not contain credentials" in r.stderr
    s.wait_log("Config reload refused; keeping the running config.")
    assert ep_prop(s, 0, "Url") == game.url_of("/state")

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as m:
        metrics = m.read().decode()
    assert "okg_sidecar_probe" in metrics
    shown = r.stdout + r.stderr + s.log_text() + metrics + okgctl_probes(s)
    assert "s3cr3t" not in shown
