"""okg-hotupdated against faulty peers: download servers that answer with a content coding or
redirect https to http, and games that exit on the reload signal (at once or after a drain).
A real nginx is the game where the game is not the fault; the suite runs with a real dbus-daemon
and okg-storaged."""
import gzip
import hashlib
import http.server
import os
import signal
import ssl
import subprocess
import sys
import threading
import zlib

import pytest

from conftest import QuietHTTPServer, free_port, make_config, wait_for
from fake_kube import make_cert
from hotupdate_helpers import backend, catches_sighup, hot, hot_update_section, kube  # noqa: F401


def start_short_settle(hot, extra=""):
    """Starts the suite with signal.settleMilliseconds 200: keeps the tests where nginx is not
    the fault quick (the tests of the settle window itself use the default)."""
    text = hot.config(extra=extra)
    assert "        signalName: SIGHUP\n" in text
    hot.start(config_text=text.replace("        signalName: SIGHUP\n",
                                       "        signalName: SIGHUP\n"
                                       "        settleMilliseconds: 200\n"))


# ---------------------------------------------------------------- coded answers

def brotli_stored(data):
    """A valid brotli stream holding data in one uncompressed meta-block (RFC 7932 9.2), so
    the test needs no brotli module: WBITS 16, MLEN-1 in 4 nibbles, ISUNCOMPRESSED, the bytes,
    then an empty last meta-block."""
    assert 0 < len(data) <= 65536
    header = (len(data) - 1) << 4 | 1 << 20
    return header.to_bytes(3, "little") + data + b"\x03"


def zstd_stored(data):
    """A zstd frame with one raw block (RFC 8878): single segment, 1-byte content size."""
    assert 0 < len(data) <= 255
    return (b"\x28\xb5\x2f\xfd" + bytes([0x20, len(data)]) +
            (1 | len(data) << 3).to_bytes(3, "little") + data)


class CodedServer:
    """Answers routes[path] = (status, [(header, value)], body). Plain HTTP, or HTTPS with a
    throw-away certificate for 127.0.0.1 (cert is then the CA file to trust). Counts hits."""

    def __init__(self, cert_dir=None):
        self.routes = {}
        self.hits = {}
        self.accept_encoding = {}
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                with server.lock:
                    server.hits[self.path] = server.hits.get(self.path, 0) + 1
                    server.accept_encoding[self.path] = self.headers.get("Accept-Encoding")
                status, headers, body = server.routes.get(self.path, (404, [], b"not found\n"))
                chunked = any(k.lower() == "transfer-encoding" for k, _ in headers)
                try:
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    if not chunked:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        self.cert = None
        if cert_dir:
            key, self.cert = make_cert(str(cert_dir))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def route(self, path, body, headers=(), status=200):
        self.routes[path] = (status, list(headers), body)
        return self.url(path)

    def redirect(self, path, location, status=302):
        return self.route(path, b"", [("Location", location)], status)

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def coded():
    s = CodedServer()
    yield s
    s.close()


@pytest.fixture
def tls(tmp_path_factory):
    s = CodedServer(tmp_path_factory.mktemp("tls"))
    yield s
    s.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- F3: content codings

CODINGS = [
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli_stored),
    ("zstd", zstd_stored),
    ("gzip, br", lambda d: brotli_stored(gzip.compress(d))),
]


def test_coded_downloads_are_installed_decoded(hot, coded):
    """A CDN's pre-compressed objects: the file in place, the one nginx serves and the checksum
    are the decoded content, for every coding okg-hotupdated decodes (stacked ones too)."""
    start_short_settle(hot)
    for i, (coding, encode) in enumerate(CODINGS, 1):
        plain = f"<h1>v{i}</h1> decoded from {coding}\n".encode() * 3
        url = coded.route(f"/v{i}/index.html", encode(plain), [("Content-Encoding", coding)])
        workers = hot.nginx.workers()
        status, res = hot.post(version=f"v{i}", url=url, sha256=sha256(plain))
        assert status == 200 and res["state"] == "Succeeded", (coding, res)
        assert res["sha256"] == sha256(plain), coding
        assert hot.file() == plain, coding
        assert hot.nginx.body("/index.html") == plain, coding
        hot.nginx.wait_reloaded(workers)
        # It asked for what it can decode.
        assert "gzip" in coded.accept_encoding[f"/v{i}/index.html"]

    # Without a checksum too: the recorded sha256 is the decoded file's.
    plain = b"no checksum given\n" * 10
    url = coded.route("/nosum/index.html", gzip.compress(plain), [("Content-Encoding", "gzip")])
    status, res = hot.post(version="nosum", url=url)
    assert status == 200 and res["sha256"] == sha256(plain) and hot.file() == plain
    ann, rec = hot.wait_recorded("nosum")
    assert rec["sha256"] == sha256(plain)
    assert hot.temp_files() == []


@pytest.mark.parametrize("header,value,shown", [
    ("Content-Encoding", "x-foo", "Content-Encoding: x-foo"),
    ("Content-Encoding", "compress", "Content-Encoding: compress"),
    ("Content-Encoding", "gzip, x-foo", "Content-Encoding: x-foo"),
    ("Transfer-Encoding", "x-foo, chunked", "Transfer-Encoding: x-foo"),
])
def test_a_coding_that_cannot_be_decoded_is_refused(hot, coded, header, value, shown):
    start_short_settle(hot)
    body = b"coded bytes that must not be installed\n"
    url = coded.route("/v1/index.html", body, [(header, value)])
    reloads = hot.nginx.reloads()
    status, res = hot.post(version="v1", url=url)
    assert status == 502 and res["state"] == "DownloadFailed", res
    assert shown in res["message"] and "cannot decode" in res["message"], res
    assert "gzip, deflate, br" in res["message"]
    assert hot.file() == b"v0 from the image\n" and hot.version() is None
    assert hot.nginx.reloads() == reloads
    assert hot.temp_files() == []
    hot.wait_recorded("v1", "DownloadFailed")



def raw_deflate(data):
    """deflate as some servers send it: no zlib wrapper."""
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


def half(data):
    return data[: len(data) // 2]


# (id, Content-Encoding, coded body from the plain file, what the message says)
BROKEN_STREAMS = [
    ("gzip-cut", "gzip", lambda d: half(gzip.compress(d)), "ended early"),
    ("deflate-cut", "deflate", lambda d: half(zlib.compress(d)), "ended early"),
    ("raw-deflate-cut", "deflate", lambda d: half(raw_deflate(d)), "ended early"),
    ("br-cut", "br", lambda d: half(brotli_stored(d[:60000])), "ended early"),
    ("zstd-cut", "zstd", lambda d: half(zstd_stored(d[:250])), "ended early"),
    ("gzip-no-trailer", "gzip", lambda d: gzip.compress(d)[:-8], "ended early"),
    ("zlib-no-adler", "deflate", lambda d: zlib.compress(d)[:-4], "ended early"),
    ("br-no-last-block", "br", lambda d: brotli_stored(d[:60000])[:-1], "ended early"),
    # Stacked: the outer (br) stream is whole, the gzip inside it is cut.
    ("gzip-cut-in-br", "gzip, br", lambda d: brotli_stored(half(gzip.compress(d[:30000]))),
     "ended early"),
    # Bytes after the end of the stream are not part of the file either.
    ("gzip-trailing-garbage", "gzip", lambda d: gzip.compress(d) + b"garbage", "not valid"),
    ("deflate-trailing-garbage", "deflate", lambda d: zlib.compress(d) + b"\0", "not valid"),
    ("br-trailing-garbage", "br", lambda d: brotli_stored(d[:60000]) + b"x", "not valid"),
    ("zstd-trailing-garbage", "zstd", lambda d: zstd_stored(d[:250]) + b"x", "not valid"),
]


@pytest.mark.parametrize("coding,encode,shown", [c[1:] for c in BROKEN_STREAMS],
                         ids=[c[0] for c in BROKEN_STREAMS])
def test_a_truncated_coded_stream_is_refused(hot, coded, coding, encode, shown):
    """A CDN object cut short (a broken upload; Content-Length says the cut size) decodes to
    the first part of the file only: the stream never reaches its end (or gzip's CRC and size
    trailer). "One that cannot be decoded is refused": nothing installed, nginx not reloaded.
    Every coding okg-hotupdated decodes, stacked ones, and bytes after a stream's end alike."""
    start_short_settle(hot)
    plain = b"".join(b"line %d of a file that must arrive whole\n" % i for i in range(5000))
    url = coded.route("/v1/index.html", encode(plain), [("Content-Encoding", coding)])
    reloads = hot.nginx.reloads()
    status, res = hot.post(version="v1", url=url)
    assert status == 502 and res["state"] == "DownloadFailed", res
    assert shown in res["message"] and "nothing was installed" in res["message"], res
    assert hot.file() == b"v0 from the image\n" and hot.version() is None
    assert hot.nginx.reloads() == reloads
    assert hot.temp_files() == []


def test_a_decompression_bomb_is_too_large(hot, coded):
    """maxFileSizeBytes counts decoded bytes: a small gzip body that expands past it is cut
    while it is decoded."""
    start_short_settle(hot)
    body = gzip.compress(b"\0" * (65 * 1024 * 1024))  # maxFileSizeBytes is 64 MiB
    assert len(body) < 1024 * 1024
    url = coded.route("/bomb/index.html", body, [("Content-Encoding", "gzip")])
    status, res = hot.post(version="bomb", url=url)
    assert res["state"] == "FileTooLarge", res
    assert hot.file() == b"v0 from the image\n" and hot.temp_files() == []


def test_raw_deflate_and_multi_member_gzip_are_installed(hot, coded):
    """What servers send and the formats allow: deflate without its zlib wrapper, and a gzip
    body of several members (RFC 1952 2.2)."""
    start_short_settle(hot)
    plain = b"two halves of one file\n" * 100
    for i, (coding, body) in enumerate([
            ("deflate", raw_deflate(plain)),
            ("gzip", gzip.compress(plain[:1000]) + gzip.compress(plain[1000:]))], 1):
        url = coded.route(f"/m{i}/index.html", body, [("Content-Encoding", coding)])
        status, res = hot.post(version=f"m{i}", url=url, sha256=sha256(plain))
        assert status == 200 and res["state"] == "Succeeded", (coding, res)
        assert hot.file() == plain


# ---------------------------------------------------------------- install: the path that failed

@pytest.mark.parametrize("name", ["index.html", "q.json"])
def test_an_install_failure_names_the_path_that_failed(hot, coded, name):
    """A folder where the previous copy goes (.okg-prev-<name>): with a file in place (the
    exchange works, keeping the old one fails) and without one (clearing the name fails). The
    message names that path, not only the target; nothing changes."""
    start_short_settle(hot)
    prev = hot.downloads / f".okg-prev-{name}"
    prev.mkdir()
    before = hot.file()
    url = coded.route(f"/v1/{name}", b"v1\n")
    status, res = hot.post(version="v1", url=url, fileName=name)
    assert res["state"] not in ("Succeeded", "RolledBack"), res
    assert f"cannot install {hot.downloads}/{name}: {prev}: Is a directory" in res["message"], res
    assert hot.file() == before and prev.is_dir() and list(prev.iterdir()) == []
    assert not (hot.downloads / "q.json").exists()
    assert hot.temp_files() == []


# ---------------------------------------------------------------- F7: https -> http

def test_https_download_refuses_a_redirect_to_http(hot, tls, coded):
    start_short_settle(hot, f"caFile: {tls.cert}\n")
    plain = coded.route("/clear/index.html", b"fetched in clear text\n")
    good = tls.route("/tls/index.html", b"fetched over TLS\n")

    # Directly, with the scheme in capitals, and on the second hop of a chain.
    cases = [
        tls.redirect("/to-http", plain),
        tls.redirect("/to-HTTP", plain.replace("http://", "HTTP://")),
        tls.redirect("/hop1", tls.url("/hop2")),
    ]
    tls.redirect("/hop2", plain, status=301)
    for i, url in enumerate(cases, 1):
        status, res = hot.post(version=f"v{i}", url=url, fileName="index.html")
        assert status == 502 and res["state"] == "DownloadFailed", res
        assert "refused a redirect from https to http://127.0.0.1" in res["message"], res
        assert "allowInsecureRedirects" in res["message"]
    assert coded.count("/clear/index.html") == 0
    assert hot.file() == b"v0 from the image\n" and hot.version() is None
    ann, rec = hot.wait_recorded("v3", "DownloadFailed")
    assert rec["lastResult"]["url"] == cases[2]

    # Redirects that stay on https are followed: absolute and relative.
    tls.redirect("/abs", good)
    tls.redirect("/rel", "/tls/index.html")
    for version, path in (("v4", "/abs"), ("v5", "/rel")):
        status, res = hot.post(version=version, url=tls.url(path), fileName="index.html")
        assert status == 200 and res["state"] == "Succeeded", res
        assert hot.nginx.body("/index.html") == b"fetched over TLS\n"

    # http -> https raises security: followed.
    coded.redirect("/up", tls.url("/tls/index.html"))
    status, res = hot.post(version="v6", url=coded.url("/up"), fileName="index.html",
                           sha256=sha256(b"fetched over TLS\n"))
    assert status == 200 and res["state"] == "Succeeded", res


def test_allow_insecure_redirects_lets_https_go_to_http(hot, tls, coded):
    start_short_settle(hot, f"caFile: {tls.cert}\nallowInsecureRedirects: true\n")
    plain = coded.route("/clear/index.html", b"allowed in clear text\n")
    status, res = hot.post(version="v1", url=tls.redirect("/to-http", plain),
                           fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res
    assert hot.nginx.body("/index.html") == b"allowed in clear text\n"
    assert coded.count("/clear/index.html") == 1


# ---------------------------------------------------------------- F4: games that exit on the signal

# The game: a shell whose SIGHUP handler ends it.
EXIT_ON_HUP = 'trap "exit 0" HUP\nwhile :; do sleep 0.1; done\n'

# A game that handles SIGHUP: "exit" mode ends drain seconds later (a JVM's shutdown hooks);
# "reload" mode stays. Each signal is logged, one line each.
GAME = """import os, signal, sys, time
mode, drain, log = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def on_hup(sig, frame):
    with open(log, "a") as f:
        f.write("HUP\\n")
    if mode == "exit":
        if drain <= 0:
            os._exit(0)
        signal.setitimer(signal.ITIMER_REAL, drain)
signal.signal(signal.SIGALRM, lambda s, f: os._exit(0))
signal.signal(signal.SIGHUP, on_hup)
while True:
    time.sleep(1)
"""


def start_game(argv):
    # The test sets what it relies on: the game starts with SIGHUP at its default (a shell
    # cannot trap a signal that was ignored when it started, e.g. under nohup). Set around the
    # fork rather than in preexec_fn, which is unsafe with the servers' threads running.
    old = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        p = subprocess.Popen(argv)
    finally:
        signal.signal(signal.SIGHUP, old)
    wait_for(lambda: p.poll() is None and catches_sighup(p.pid), what="the game handles SIGHUP")
    return p


def stop_game(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def test_a_game_that_exits_on_the_signal_is_not_succeeded(hot, tmp_path):
    script = tmp_path / "game.sh"
    script.write_text(EXIT_ON_HUP)
    game = start_game(["/bin/sh", str(script)])
    try:
        hot.start(process_name=f"/bin/sh {script}")
        url, _ = hot.files.put("/v1/index.html", "v1\n")
        status, res = hot.post(version="v1", url=url)
        assert status == 500 and res["state"] == "RolledBack", res
        assert "the game exited on the signal" in res["message"], res
        assert f"PID {game.pid} exited after the reload" in res["message"]
        assert "the previous file is back" in res["message"]
        assert game.wait(20) == 0
        assert hot.file() == b"v0 from the image\n" and hot.version() is None
        hot.wait_recorded("v1", "RolledBack")
    finally:
        stop_game(game)


def test_a_game_that_exits_after_a_drain_fails_despite_the_post_reload_check(hot, tmp_path):
    """The check passes while the game drains; it is gone before the settle window ends."""
    script, log = tmp_path / "game.py", tmp_path / "hups"
    script.write_text(GAME)
    game = start_game([sys.executable, str(script), "exit", "0.5", str(log)])
    try:
        hot.start(process_name=f"{sys.executable} {script}",
                  extra=f"postReloadCheck:\n  url: {hot.files.url('/check')}\n"
                        "  initialDelayMilliseconds: 0\n")
        url, _ = hot.files.put("/v1/index.html", "v1\n")
        status, res = hot.post(version="v1", url=url)
        assert hot.files.check_hits >= 1
        assert status == 500 and res["state"] == "RolledBack", res
        assert "the game exited on the signal" in res["message"], res
        assert game.wait(20) == 0
        assert hot.file() == b"v0 from the image\n" and hot.version() is None
    finally:
        stop_game(game)


def test_only_the_processes_that_survived_are_reloaded_again(hot, tmp_path):
    """Two games under one title: one exits on SIGHUP, the other reloads. The update is rolled
    back and only the survivor is told to reload the previous file."""
    script = tmp_path / "game.py"
    script.write_text(GAME)
    quits = start_game([sys.executable, str(script), "exit", "0", str(tmp_path / "quits")])
    stays = start_game([sys.executable, str(script), "reload", "0", str(tmp_path / "stays")])
    try:
        hot.start(process_name=f"{sys.executable} {script}")
        url, _ = hot.files.put("/v1/index.html", "v1\n")
        status, res = hot.post(version="v1", url=url)
        assert status == 500 and res["state"] == "RolledBack", res
        assert f"PID {quits.pid} exited after the reload" in res["message"], res
        assert f"still running (PID {stays.pid}) were reloaded again" in res["message"], res
        assert quits.wait(20) == 0 and stays.poll() is None
        wait_for(lambda: (tmp_path / "stays").read_text().count("HUP") == 2,
                 what="the survivor got the signal twice")
        assert (tmp_path / "quits").read_text().count("HUP") == 1
        assert hot.file() == b"v0 from the image\n" and hot.version() is None
    finally:
        stop_game(quits)
        stop_game(stays)


# A game under a supervisor that restarts it (`while true; do exec -a game-sup ...; done`). The
# first instance exits on SIGHUP while the rejected file (v1) is in place; its restarts log
# when they start and what they reload. "untrapped" restarts do not handle SIGHUP.
SUPERVISED_GAME = r"""F=$1 LOG=$2 MODE=$3
if [ "$MODE" = untrapped ] && [ -e "$LOG" ]; then
    echo "started-untrapped $$" >> "$LOG"
else
    trap 'if grep -q v1 "$F"; then exit 0; fi; echo "reload $$ $(cat "$F")" >> "$LOG"' HUP
    echo "started $$" >> "$LOG"
fi
while :; do sleep 0.1; done
"""


def start_supervised_game(hot, tmp_path, mode):
    script, log = tmp_path / "game.sh", tmp_path / "game.log"
    script.write_text(SUPERVISED_GAME)
    loop = ('while :; do (exec -a game-sup bash "$0" "$1" "$2" "$3"); sleep 0.1; done')
    old = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        sup = subprocess.Popen(["bash", "-c", loop, str(script), str(hot.downloads / "index.html"),
                                str(log), mode], start_new_session=True)
    finally:
        signal.signal(signal.SIGHUP, old)
    wait_for(lambda: log.exists() and log.read_text().startswith("started "),
             what="the supervised game started")
    first = int(log.read_text().split()[1])
    wait_for(lambda: catches_sighup(first), what="the game handles SIGHUP")
    return sup, log, f"game-sup {script}", first


def started_pids(log):
    return [int(l.split()[1]) for l in log.read_text().splitlines() if l.startswith("started")]


@pytest.mark.parametrize("mode", ["trapped", "untrapped"])
def test_a_game_restarted_during_the_settle_window(hot, tmp_path, mode):
    """The game exits on the signal and its supervisor restarts it before the window ends; the
    restart read the rejected file. After the previous file is back, the message names the new
    process, and the new process is told to reload it when it handles the signal, or the
    message says it was not signalled and why."""
    sup, log, title, first = start_supervised_game(hot, tmp_path, mode)
    try:
        hot.start(process_name=title)
        url, _ = hot.files.put("/v1/index.html", "v1\n")
        status, res = hot.post(version="v1", url=url)
        assert status == 500 and res["state"] == "RolledBack", res
        assert f"PID {first} exited after the reload" in res["message"], res
        assert "not running any more" not in res["message"], res
        assert hot.file() == b"v0 from the image\n" and hot.version() is None
        # okg-hotupdated saw the restarted process in /proc; its own "started" line may come
        # a moment later.
        pids = wait_for(lambda: (lambda p: p if len(p) >= 2 else None)(started_pids(log)),
                        what="the restarted game's line in its log")
        assert len(pids) == 2 and pids[0] == first, log.read_text()
        second = pids[1]
        if mode == "trapped":
            assert (f"the game restarted since the signal (PID {second}) was sent SIGHUP to "
                    "load it") in res["message"], res
            wait_for(lambda: f"reload {second} v0 from the image" in log.read_text(),
                     what="the restarted game reloaded the previous file")
        else:
            assert (f"PID {second} started since the signal (a restart) but does not handle "
                    "SIGHUP yet: not signalled") in res["message"], res
        assert os.path.exists(f"/proc/{second}") and started_pids(log) == pids
        hot.wait_recorded("v1", "RolledBack")
    finally:
        os.killpg(sup.pid, signal.SIGKILL)
        sup.wait()


def test_nginx_survives_the_settle_window(hot):
    """The real game reloads and stays: Succeeded after the default settle window."""
    hot.start()
    url, _ = hot.files.put("/v1/index.html", "v1\n")
    workers = hot.nginx.workers()
    status, res = hot.post(version="v1", url=url)
    assert status == 200 and res["state"] == "Succeeded", res
    hot.nginx.wait_reloaded(workers)
    assert hot.nginx.body("/index.html") == b"v1\n"


# ---------------------------------------------------------------- downloadDir created at start

def test_a_created_download_folder_is_reported(suite_factory, tmp_path):
    downloads = tmp_path / "not" / "there" / "downloads"
    section = hot_update_section(free_port(), downloads, "no such game")
    suite = suite_factory(make_config(free_port(), [(section, 0)],
                                      extra="storage:\n  backend: local\n"))
    suite.start({"POD_NAME": "game-0", "POD_NAMESPACE": "games"})
    suite.wait_ready()
    suite.wait_log(f"Created the download folder {downloads} \\({tmp_path / 'not'} did not "
                   "exist\\)")
    assert downloads.is_dir()


@pytest.mark.skipif(os.path.exists("/app") or os.geteuid() != 0,
                    reason="needs root and no /app, which the test creates and removes")
def test_the_default_download_folder_is_reported_when_created(suite_factory, tmp_path):
    """The proposal's config has no downloadDir: the daemon says it made /app/downloads."""
    lines = [line for line in hot_update_section(free_port(), "/app/downloads",
                                                  "no such game").splitlines()
             if "downloadDir" not in line]
    suite = suite_factory(make_config(free_port(), [("\n".join(lines) + "\n", 0)],
                                      extra="storage:\n  backend: local\n"))
    try:
        suite.start({"POD_NAME": "game-0", "POD_NAMESPACE": "games"})
        suite.wait_ready()
        suite.wait_log(r"downloadDir is not set: created the default download folder "
                       r"/app/downloads \(and /app\)")
    finally:
        suite.stop()
        for d in ("/app/downloads", "/app"):
            if os.path.isdir(d):
                os.rmdir(d)


# ---------------------------------------------------------------- caFile read by us, not by OpenSSL

def release_fifo(path):
    """Gives a reader blocked on the FIFO its end of file (a daemon that opened it blocking)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return              # no reader: nothing is blocked on it
    os.close(fd)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_ca_file_not_a_regular_file_fails_the_update_cleanly(hot, tls, tmp_path, kind):
    """caFile is a FIFO (OpenSSL's blocking open would wait for a writer for ever) or a folder:
    the update fails at once with a result naming the path and why, nothing is fetched or
    installed, the daemon answers; once caFile is a certificate again the next update works."""
    ca = tmp_path / "ca.pem"
    if kind == "fifo":
        os.mkfifo(ca)
    else:
        ca.mkdir()
    start_short_settle(hot, f"caFile: {ca}\n")
    url = tls.route("/v1/index.html", b"v1 over TLS\n")
    try:
        status, res = hot.post(version="v1", url=url, fileName="index.html")
    finally:
        if kind == "fifo":
            release_fifo(ca)
    why = "not a regular file" if kind == "fifo" else "Is a directory"
    assert status == 500 and res["state"] == "Failed", res
    assert f"cannot read caFile {ca}: {why}" in res["message"], res
    assert tls.count("/v1/index.html") == 0
    assert hot.file() == b"v0 from the image\n" and hot.temp_files() == []
    s, body = hot.status()
    assert s == 200 and body["version"] is None, body
    hot.wait_recorded("v1", "Failed")

    # The CA is read for each update: a certificate put there now is used by the next one.
    if kind == "fifo":
        ca.unlink()
    else:
        ca.rmdir()
    ca.write_bytes(open(tls.cert, "rb").read())
    status, res = hot.post(version="v2", url=url, fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res
    assert hot.nginx.body("/index.html") == b"v1 over TLS\n"


def test_ca_file_rotated_on_disk_is_used_by_the_next_update(hot, tls, tmp_path):
    """caFile first holds another CA (verification fails), then is replaced by a rename with
    the server's: the next download verifies against the new one."""
    ca = tmp_path / "ca.pem"
    _, other = make_cert(str(tmp_path))
    ca.write_bytes(open(other, "rb").read())
    start_short_settle(hot, f"caFile: {ca}\n")
    url = tls.route("/v1/index.html", b"v1 over TLS\n")
    status, res = hot.post(version="v1", url=url, fileName="index.html")
    assert status == 502 and res["state"] == "DownloadFailed", res
    assert "certificate" in res["message"], res
    tmp = tmp_path / "ca.pem.new"
    tmp.write_bytes(open(tls.cert, "rb").read())
    os.rename(tmp, ca)
    status, res = hot.post(version="v2", url=url, fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res
    assert hot.nginx.body("/index.html") == b"v1 over TLS\n"


@pytest.mark.parametrize("content", [b"", b"not a certificate\n"])
def test_ca_file_without_a_certificate_names_the_file(hot, tls, tmp_path, content):
    """caFile empty (a Secret being written, a wrong key mounted) or not PEM: before, the update
    read `download failed: error importing CA certificate blob`, naming neither caFile nor its
    path. It fails like a caFile that cannot be read, nothing is fetched, and a certificate put
    there is used by the next update."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(content)
    start_short_settle(hot, f"caFile: {ca}\n")
    url = tls.route("/v1/index.html", b"v1 over TLS\n")
    status, res = hot.post(version="v1", url=url, fileName="index.html")
    assert status == 500 and res["state"] == "Failed", res
    assert f"cannot read caFile {ca}: no PEM certificate in it" in res["message"], res
    assert tls.count("/v1/index.html") == 0
    ca.write_bytes(open(tls.cert, "rb").read())
    status, res = hot.post(version="v2", url=url, fileName="index.html")
    assert status == 200 and res["state"] == "Succeeded", res
