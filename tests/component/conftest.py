"""Helpers for the component tests: run okg-sidecard from a build directory with a real
dbus-daemon, talk to it with busctl and HTTP, and read its log."""
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("OKG_BUILD_DIR", os.path.join(TOP, "build-test"))
SIDECARD = os.path.join(BUILD, "okg-sidecard", "okg-sidecard")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def _timeout_factor():
    raw = os.environ.get("OKG_TEST_TIMEOUT_FACTOR")
    if raw is None:
        return 2.0 if os.environ.get("OKG_SANITIZED") == "1" else 1.0
    try:
        factor = float(raw)
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise pytest.UsageError(f"OKG_TEST_TIMEOUT_FACTOR={raw!r}: not a positive number")
    return factor


# Safety timeouts only catch hangs; on a loaded or instrumented machine everything is slower, so
# every one of them is multiplied by this factor (OKG_TEST_TIMEOUT_FACTOR; default 1, or 2 when
# OKG_SANITIZED=1).
TIMEOUT_FACTOR = _timeout_factor()
# The default safety timeout of wait_for and friends, before scaling.
SAFETY_TIMEOUT = 60.0


def scaled(seconds):
    """A safety timeout of `seconds` on a quiet machine, scaled by OKG_TEST_TIMEOUT_FACTOR."""
    return seconds * TIMEOUT_FACTOR


def reset_signals():
    """preexec_fn for subprocess: every signal's disposition back to the default and none blocked,
    whatever the test run inherited (nohup ignores SIGHUP, some CI runners ignore SIGINT/SIGQUIT
    or block signals). Python's subprocess restores only SIGPIPE, SIGXFZ and SIGXFSZ.
    It creates no objects (small ints, an empty tuple), as a preexec_fn should not."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def spawn(argv, **kw):
    """subprocess.Popen with default signal dispositions in the child (see reset_signals): the
    way tests start every process whose reaction to signals they rely on."""
    kw.setdefault("preexec_fn", reset_signals)
    return subprocess.Popen(argv, **kw)


# Under pytest-xdist each worker hands out ports from a range of its own, below the kernel's
# ephemeral range (where bind(0) and outgoing connections take theirs): a port one test chose
# but has not bound yet (or keeps unbound on purpose, to be refused) is never another worker's.
# Without xdist, the kernel chooses (bind to port 0).
WORKER_PORTS = (20000, 32000)
_next_port = None


def _worker_port_range():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return None
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    # A replaced (crashed) worker gets a higher number: it takes over a range no one uses now.
    n = int(worker[2:]) % count
    size = (WORKER_PORTS[1] - WORKER_PORTS[0]) // count
    return WORKER_PORTS[0] + n * size, WORKER_PORTS[0] + (n + 1) * size


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port on 127.0.0.1 that nothing is bound to (nor lingering on, in TIME_WAIT)."""
    global _next_port
    span = _worker_port_range()
    if span is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    lo, hi = span
    if _next_port is None:
        # Another run on the machine may use the same worker numbers: start somewhere else.
        _next_port = lo + (os.getpid() * 7919) % (hi - lo)
    for _ in range(hi - lo):
        port = _next_port
        _next_port = lo + (_next_port + 1 - lo) % (hi - lo)
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {lo}-{hi - 1}")


# Wait for each observable a test asserts on, not only for the one that says the action
# happened: what a separate step makes may come later. Pairs that were read too early: the
# GameServer and the pod (two storage calls), an answer and nginx's access or error log line,
# an answer and the API server's audit event, a Role written and the authorizer using it, the
# store showing a record and the writer having its acknowledgement.
def wait_for(cond, timeout=SAFETY_TIMEOUT, interval=0.05, what="condition"):
    """Polls cond() until it returns a truthy value; fails the test after timeout seconds (at least
    SAFETY_TIMEOUT, then scaled by OKG_TEST_TIMEOUT_FACTOR). The timeout is a safety net against
    hangs, not a performance assertion, so a shorter one is raised to SAFETY_TIMEOUT."""
    timeout = scaled(max(timeout, SAFETY_TIMEOUT))
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer for test peers: a client that goes away mid-request (the daemons
    under test reset connections on purpose: a refused download, a timeout, a kept-alive
    connection closed) is no error worth a traceback in pytest's output. Any other error in a
    handler is still printed (socketserver's handle_error)."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def libexec_dir(tmp_path, wrappers=None):
    """A directory with the daemons, as okg-sidecard finds them through OKG_LIBEXECDIR.
    wrappers maps a daemon name to a shell snippet run before exec'ing the real binary (which
    keeps the PID, so readiness still comes from the supervised process)."""
    d = tmp_path / "libexec"
    d.mkdir(exist_ok=True)
    for name in ("okg-storaged", "okg-hotupdated", "okg-probed"):
        real = os.path.join(BUILD, name, name)
        target = d / name
        if target.exists() or target.is_symlink():
            target.unlink()
        if wrappers and name in wrappers:
            target.write_text(f"#!/bin/bash\n{wrappers[name]}\nexec {real} \"$@\"\n")
            target.chmod(0o755)
        else:
            target.symlink_to(real)
    return str(d)


HOT_UPDATE = """\
  - name: hot_update
    config:
      bindAddress: 127.0.0.1
      port: {hot_port}
      downloadDir: {download_dir}
      loadPatchType: signal
      signal:
        processName: 'nginx: master process nginx'
        signalName: SIGHUP
      storageConfig:
        inKube:
          annotationKey: sidecar.vke.volcengine.com/hot-update-result
        type: InKube
    bootorder: {boot}
"""

HTTP_PROBE = """\
  - name: http_probe
    config:
      endpoints:
        - expectedStatusCode: 200
          method: GET
          storageConfig:
            inKube:
              markerPolices:
                - gameServerOpsState: WaitToBeDeleted
                  state: WaitToBeDeleted
                - gameServerOpsState: None
                  state: None
            type: InKube
          timeout: 30
          url: http://localhost:8080
      startDelaySeconds: 10
      probeIntervalSeconds: 5
    bootorder: {boot}
"""


_hot_ports = {}


def make_config(health_port, plugins=None, extra=""):
    """A config in the proposal's format. plugins: list of (template, bootorder). The hot-update
    port and download folder are fixed per health port, so the same call gives the same text
    (reload tests rely on that) and concurrent suites do not share port 5000."""
    if plugins is None:
        plugins = [(HTTP_PROBE, 1), (HOT_UPDATE, 0)]
    hot_port = _hot_ports.setdefault(health_port, free_port())
    download_dir = f"/tmp/okg-test-downloads-{health_port}"
    body = "plugins:\n" + "".join(t.format(boot=b, hot_port=hot_port, download_dir=download_dir)
                                   for t, b in plugins)
    body += "restartpolicy: Always\nresources:\n  CPU: 100m\n  Memory: 128Mi\n"
    body += "sidecarstartorder: Before\n"
    body += f"healthPort: {health_port}\nhealthAddress: 127.0.0.1\n"
    return body + extra


class Suite:
    """One okg-sidecard process with its own runtime and state directories."""

    def __init__(self, tmp_path, config_text, libexec=None, config_dir=None):
        self.tmp = tmp_path
        self.runtime = tmp_path / "run"
        self.state = tmp_path / "state"
        self.config_dir = config_dir or (tmp_path / "etc")
        self.config_dir.mkdir(exist_ok=True)
        self.config = self.config_dir / "config.yaml"
        if config_text is not None:
            self.config.write_text(config_text)
        self.log_path = tmp_path / "sidecard.log"
        self.libexec = libexec or libexec_dir(tmp_path)
        self.proc = None
        self.command_prefix = []        # e.g. setpriv, to run the suite as another user
        m = re.search(r"healthPort: (\d+)", config_text or "")
        self.health_port = int(m.group(1)) if m else None

    @property
    def bus_address(self):
        return f"unix:path={self.runtime}/bus"

    def start(self, extra_env=None, args=None, cwd=None):
        """args replaces the --config/--runtime-dir/--state-dir options (relative paths with
        cwd, for instance)."""
        env = dict(os.environ)
        env["OKG_LIBEXECDIR"] = self.libexec
        env["OKG_BUS_CONFIG"] = os.path.join(BUILD, "units", "okg-bus.conf")
        env.setdefault("SYSTEMD_LOG_LEVEL", "info")
        env.update(extra_env or {})
        self.log = open(self.log_path, "w")
        self.started_at = time.monotonic()
        self.proc = spawn(
            self.command_prefix + [SIDECARD] + (
                args if args is not None else
                ["--config", str(self.config), "--runtime-dir", str(self.runtime),
                 "--state-dir", str(self.state)]),
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        return self

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern, timeout=SAFETY_TIMEOUT):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log_text()), timeout, what=f"log /{pattern}/")

    # ---- HTTP ----
    def http(self, path):
        """(status, parsed JSON body) from the health port."""
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=scaled(10)) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None, None

    def wait_ready(self, timeout=SAFETY_TIMEOUT):
        return wait_for(lambda: self.http("/readyz")[0] == 200, timeout, what="/readyz 200")

    # ---- bus ----
    def busctl(self, *args, check=True, json_out=False):
        cmd = ["busctl", f"--address={self.bus_address}"]
        if json_out:
            cmd.append("--json=short")
        cmd += list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(60))
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
        if json_out and r.returncode == 0:
            return json.loads(r.stdout) if r.stdout.strip() else None
        return r

    def unit_path(self, name):
        out = self.busctl("call", "io.kruise.game.Sidecar1", "/io/kruise/game/Sidecar1",
                          "io.kruise.game.Sidecar1", "GetUnit", "s", name, json_out=True)
        return out["data"][0]

    def unit_prop(self, name, prop):
        out = self.busctl("get-property", "io.kruise.game.Sidecar1", self.unit_path(name),
                          "io.kruise.game.Sidecar1.Unit", prop, json_out=True)
        return out["data"]

    def manager_prop(self, prop):
        out = self.busctl("get-property", "io.kruise.game.Sidecar1", "/io/kruise/game/Sidecar1",
                          "io.kruise.game.Sidecar1", prop, json_out=True)
        return out["data"]

    def call(self, method, sig="", *args, check=True):
        cmd = ["call", "io.kruise.game.Sidecar1", "/io/kruise/game/Sidecar1",
               "io.kruise.game.Sidecar1", method]
        if sig:
            cmd += [sig] + [str(a) for a in args]
        if check:
            return self.busctl(*cmd, json_out=True)
        return self.busctl(*cmd, check=False)

    def units(self):
        """{name: dict} from ListUnits."""
        out = self.call("ListUnits")["data"][0]
        keys = ("name", "kind", "state", "pid", "ready", "bootorder", "restarts", "path")
        return {row[0]: dict(zip(keys, row)) for row in out}

    def pid(self, name):
        return self.units()[name]["pid"]

    def monitor(self, interface, member):
        """A SignalMonitor for the signal interface.member on this suite's bus."""
        return SignalMonitor(self, interface, member)

    # ---- lifetime ----
    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("okg-sidecard did not stop within its deadline")
        return self.proc.returncode

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.log.close()


class SignalMonitor:
    """busctl monitor for one signal on a suite's bus, read by a thread: `signals` holds the
    payload (a list of arguments) of every one received, in order. listen() returns once the
    monitor is listening (it sees a marker signal of its own, sent from MARKER_PATH, which
    `signals` leaves out); use the result as a context manager, which stops busctl. Lets a test assert on the specific event it
    caused rather than on a property that later, unrelated events may overwrite."""
    MARKER_PATH = "/io/kruise/game/OkgTestMarker"

    def __init__(self, suite, interface, member):
        self.suite = suite
        self.interface = interface
        self.member = member
        self.signals = []
        self._marker_seen = False
        self.proc = None

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            if msg.get("member") != self.member:
                continue
            if msg.get("path") == self.MARKER_PATH:
                self._marker_seen = True
            else:
                self.signals.append(msg["payload"]["data"])

    def listen(self, signature, *marker_args):
        """Starts busctl and waits until it listens: emits the signal (with marker_args, which must
        match signature) from MARKER_PATH until it shows up."""
        match = f"type='signal',interface='{self.interface}',member='{self.member}'"
        self.proc = spawn(["busctl", f"--address={self.suite.bus_address}", "monitor",
                           "--json=short", f"--match={match}"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

        def seen():
            self.suite.busctl("emit", self.MARKER_PATH, self.interface, self.member, signature,
                              *[str(a) for a in marker_args])
            time.sleep(0.2)
            return self._marker_seen
        wait_for(seen, what=f"busctl monitor listening for {self.member}")
        return self

    def wait(self, pred=lambda args: True, what=None):
        """The payload of the first signal received for which pred(payload) is true."""
        return wait_for(lambda: next((a for a in self.signals if pred(a)), None),
                        what=what or f"a {self.member} signal")

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- running in parallel (pytest-xdist, --dist loadgroup) ----

# Test modules whose tests share something outside their tmp_path and so must run one after
# another, on one worker: module -> why.
SERIAL_MODULES = {
    # run-local.sh keeps its demo in the build directory and holds a lock on it for the run.
    "test_run_local.py": "run-local.sh's demo in the build directory",
}


def _xdist_group(item):
    """The group an item must share a worker with, or None."""
    module = os.path.basename(str(item.fspath))
    if module in SERIAL_MODULES:
        return module
    # A module-scoped fixture (an API server of the module's own, a netns world, an install
    # tree) is made once per worker that runs one of its tests: keep its users together.
    defs = getattr(item, "_fixtureinfo", None)
    for fixturedefs in (defs.name2fixturedefs.values() if defs else ()):
        if any(d.scope in ("module", "package", "class") for d in fixturedefs):
            return module + "::module-fixtures"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under xdist, marks the items that must share a worker (see _xdist_group) with
    xdist_group, and puts the groups first, the largest first, so that none of them starts late
    and keeps the run waiting at the end. Without xdist nothing changes."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    groups = {}
    for item in items:
        g = _xdist_group(item)
        if g:
            item.add_marker(pytest.mark.xdist_group(g))
            groups.setdefault(g, []).append(item)
    grouped = [i for g in sorted(groups, key=lambda g: -len(groups[g])) for i in groups[g]]
    rest = [i for i in items if not _xdist_group(i)]
    items[:] = grouped + rest


@pytest.fixture
def suite_factory(tmp_path):
    suites = []

    def make(config_text, **kw):
        s = Suite(tmp_path, config_text, **kw)
        suites.append(s)
        return s

    yield make
    close_suites(suites, tmp_path)


def close_suites(suites, tmp_path):
    """Kills the suites; fails on a sanitizer report in their logs or on a process of theirs
    (anything mentioning tmp_path) still running."""
    text = ""
    for s in suites:
        s.close()
        if s.log_path.exists():
            text += s.log_path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]
    assert not bad, "sanitizer reports in the suite's log:\n" + "\n".join(bad[:20])
    # Nothing may outlive its okg-sidecard (children get SIGTERM through PDEATHSIG when it is
    # killed, so give them a moment).
    def leftovers():
        out = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
        return out.stdout.strip()
    deadline = time.monotonic() + scaled(10)
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(), f"processes left behind: {leftovers()}"


@pytest.fixture
def suite(suite_factory, tmp_path):
    """The proposal's demo config (both plugins), started and ready."""
    port = free_port()
    s = suite_factory(make_config(port)).start()
    s.wait_ready()
    return s


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def have_busctl():
    return shutil.which("busctl") is not None
