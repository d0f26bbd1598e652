"""Helpers for the component tests: run okg-sidecard from a build directory with a real
dbus-daemon, talk to it with busctl and HTTP, and read its log."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("OKG_BUILD_DIR", os.path.join(TOP, "build-test"))
SIDECARD = os.path.join(BUILD, "okg-sidecard", "okg-sidecard")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=20.0, interval=0.05, what="condition"):
    """Polls cond() until it returns a truthy value; fails the test after timeout seconds.
    The timeout is a safety net against hangs, not a performance assertion."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what} (last value: {last!r})")


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
        m = re.search(r"healthPort: (\d+)", config_text or "")
        self.health_port = int(m.group(1)) if m else None

    @property
    def bus_address(self):
        return f"unix:path={self.runtime}/bus"

    def start(self, extra_env=None):
        env = dict(os.environ)
        env["OKG_LIBEXECDIR"] = self.libexec
        env["OKG_BUS_CONFIG"] = os.path.join(BUILD, "units", "okg-bus.conf")
        env.setdefault("SYSTEMD_LOG_LEVEL", "info")
        env.update(extra_env or {})
        self.log = open(self.log_path, "w")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [SIDECARD, "--config", str(self.config), "--runtime-dir", str(self.runtime),
             "--state-dir", str(self.state)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        return self

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern, timeout=20.0):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log_text()), timeout, what=f"log /{pattern}/")

    # ---- HTTP ----
    def http(self, path):
        """(status, parsed JSON body) from the health port."""
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None, None

    def wait_ready(self, timeout=30.0):
        return wait_for(lambda: self.http("/readyz")[0] == 200, timeout, what="/readyz 200")

    # ---- bus ----
    def busctl(self, *args, check=True, json_out=False):
        cmd = ["busctl", f"--address={self.bus_address}"]
        if json_out:
            cmd.append("--json=short")
        cmd += list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
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

    # ---- lifetime ----
    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
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
    deadline = time.monotonic() + 10
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
