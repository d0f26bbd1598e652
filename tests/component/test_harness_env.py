"""The test harness itself does not depend on what the test run inherited or on machine load:
processes the tests start get default signal dispositions, and safety timeouts scale with
OKG_TEST_TIMEOUT_FACTOR."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from conftest import TOP, scaled, spawn

HERE = os.path.dirname(os.path.abspath(__file__))


def sig_masks(pid):
    """(SigIgn, SigBlk) of a process, as integers."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("SigIgn", "SigBlk"):
                out[key] = int(value, 16)
    return out["SigIgn"], out["SigBlk"]


def test_spawned_processes_get_default_signal_dispositions():
    # What nohup, a CI runner or a shell's job control may leave behind: signals ignored, and
    # one blocked.
    ignored = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR2)
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in ignored}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    try:
        plain = subprocess.Popen(["sleep", "600"])
        clean = spawn(["sleep", "600"])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for s, h in saved.items():
            signal.signal(s, h)
    try:
        # Without the helper the child inherits them (this is the fault the helper removes)...
        ign, blk = sig_masks(plain.pid)
        assert ign & (1 << (signal.SIGHUP - 1)) and blk & (1 << (signal.SIGUSR1 - 1))
        # ...with it, nothing is ignored or blocked.
        assert sig_masks(clean.pid) == (0, 0)
    finally:
        for p in (plain, clean):
            p.kill()
            p.wait()


def test_a_test_run_under_nohup_sees_default_signals():
    """The issue's input: the suite started with SIGHUP ignored (nohup). The test that needs a
    game which does not handle SIGHUP still sees one."""
    # A short base folder: the suite's bus socket path must fit in sun_path.
    base = tempfile.mkdtemp(prefix="okg-nohup-")
    try:
        r = subprocess.run(
            ["nohup", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--basetemp={base}/t", os.path.join(HERE, "test_hotupdate.py")
             + "::test_signal_the_game_does_not_handle_is_not_sent"],
            cwd=TOP, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=scaled(600))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout


def factor_seen(env):
    code = ("import conftest; print(conftest.TIMEOUT_FACTOR, conftest.scaled(10), "
            "conftest.SAFETY_TIMEOUT)")
    base = {k: v for k, v in os.environ.items()
            if k not in ("OKG_TEST_TIMEOUT_FACTOR", "OKG_SANITIZED")}
    return subprocess.run([sys.executable, "-c", code], cwd=HERE, env=dict(base, **env),
                          capture_output=True, text=True, timeout=60)


def test_timeouts_scale_with_the_environment():
    assert factor_seen({}).stdout.split() == ["1.0", "10.0", "60.0"]
    assert factor_seen({"OKG_SANITIZED": "1"}).stdout.split()[:2] == ["2.0", "20.0"]
    assert factor_seen({"OKG_TEST_TIMEOUT_FACTOR": "3"}).stdout.split()[:2] == ["3.0", "30.0"]
    # The explicit factor wins over the sanitizer default.
    r = factor_seen({"OKG_TEST_TIMEOUT_FACTOR": "1.5", "OKG_SANITIZED": "1"})
    assert r.stdout.split()[:2] == ["1.5", "15.0"]
    for bad in ("0", "-2", "fast", "nan"):
        r = factor_seen({"OKG_TEST_TIMEOUT_FACTOR": bad})
        assert r.returncode != 0 and "OKG_TEST_TIMEOUT_FACTOR" in r.stderr, (bad, r.stderr)


def test_quiet_http_server_drops_only_a_gone_client(capfd):
    """The test peers' HTTP server prints no traceback for a client that reset the connection
    or went away (BrokenPipe), and still prints one for any other error of a handler."""
    import http.server
    import threading
    import urllib.request
    from conftest import QuietHTTPServer

    errors = {"/reset": ConnectionResetError, "/pipe": BrokenPipeError, "/bad": ValueError}

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            raise errors[self.path]("from the handler")

    srv = QuietHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for path in errors:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{srv.server_address[1]}{path}",
                                       timeout=scaled(10))
            except OSError:
                pass
    finally:
        srv.shutdown()
        srv.server_close()
    err = capfd.readouterr().err
    assert "ValueError: from the handler" in err, err
    assert "ConnectionResetError" not in err and "BrokenPipeError" not in err, err
