#!/usr/bin/python3
"""Chaos run of the whole suite against a real kube-apiserver (issue 7, item 2).

Usage: tests/chaos/chaos.py BUILD_DIR [--seconds 120] [--seed N] [--settle 60] [--keep]

Run as root on Debian 12; everything listens on loopback. It starts etcd + kube-apiserver
(tests/kube/ through tests/component/kube.py) with a namespace carrying deploy/rbac.yaml, the pod
game-0 and its GameServer, a bound token file and a kubeconfig; a real nginx (master + workers)
as the game, serving the download folder, whose file `state` is the game's state page; a file
server with the versions v1, v2, ... of index.html; and okg-sidecard from BUILD_DIR with the
hot_update and http_probe plugins and storage through $KUBECONFIG.

For --seconds, concurrently:
  (a) hot updates v1, v2, ... one after another, each waiting for its answer;
  (b) the game's state page flips among None/Allocated/WaitToBeDeleted/Maintaining every
      0.5-2 s;
  (c) every 1.5-4 s kill -9 of a random one of okg-storaged, okg-hotupdated, okg-probed,
      dbus-daemon (PIDs from ListUnits on the suite's bus, else from /proc);
  (d) every 12-25 s the API server is stopped for 2-6 s and started again.
Then the chaos stops, the last state stays, and the suite gets --settle seconds to settle. The
checks: the last acknowledged hot update is what the pod annotation, the recovery record, the
hot-update daemon and nginx all show (a later update that got no answer because its daemon was
killed may legitimately have gone through); the GameServer's spec.opsState is the mapping of the
last state written; every unit is running and ready; okg-sidecard is alive; nothing is pending
in okg-storaged. And over the whole run: no acknowledged version was ever replaced by an older
one (the file in the download folder and GET /hot-update are watched all along, so a lost
result shows even when a later update covers it up); no daemon exited other than by our kills
(or, started while dbus-daemon was down, could not join the bus and exited 1); okg-sidecard
and every daemon stop with status 0 on SIGTERM; no sanitizer report. Exit status 0 only when
every check passes.

The random choices (which daemon, which state, the delays) come from --seed; the timing of the
processes themselves is of course not deterministic. Everything started is stopped on the way
out; the work directory is removed unless a check failed or --keep is given."""
import argparse
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
import urllib.error
import urllib.parse
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "component"))

try:
    import pytest  # noqa: F401  (the helpers import it; a plain python3 may not have it)
except ImportError:
    class _Failed(Exception):
        pass

    def _fail(msg, pytrace=True):
        raise _Failed(msg)

    sys.modules["pytest"] = types.SimpleNamespace(
        fixture=lambda *a, **kw: (a[0] if a and callable(a[0]) else (lambda f: f)),
        fail=_fail, skip=_fail, mark=types.SimpleNamespace())

import kube as k  # noqa: E402
from hotupdate_helpers import ANNOTATION, FileServer, Nginx, hot_update_section  # noqa: E402

STATES = ["None", "Allocated", "WaitToBeDeleted", "Maintaining"]
# The state page's answer -> the GameServer's spec.opsState (markerPolices).
OPS_STATE = {s: s for s in STATES}
POD = "game-0"
GSS = "game"
VICTIMS = {  # unit name -> (what we call it, the process's comm)
    "storage": ("okg-storaged", "okg-storaged"),
    "hot_update": ("okg-hotupdated", "okg-hotupdated"),
    "http_probe": ("okg-probed", "okg-probed"),
    "bus": ("dbus-daemon", "dbus-daemon"),
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")
STABLE = 3.0  # seconds every check must keep passing at the end
SIDECAR = "io.kruise.game.Sidecar1"
SIDECAR_PATH = "/io/kruise/game/Sidecar1"
STORAGE = "io.kruise.game.Storage1"
STORAGE_PATH = "/io/kruise/game/Storage1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now():
    return time.monotonic()


class Log:
    """Timestamped lines to the run log (and, with verbose, to stderr)."""

    def __init__(self, path, verbose):
        self.f = open(path, "a", buffering=1)
        self.t0 = now()
        self.verbose = verbose
        self.lock = threading.Lock()

    def __call__(self, msg):
        line = f"[{now() - self.t0:8.3f}] {msg}"
        with self.lock:
            self.f.write(line + "\n")
            if self.verbose:
                print(line, file=sys.stderr, flush=True)

    def close(self):
        self.f.close()


def proc_stat(pid):
    """(comm, state, ppid) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    return comm, fields[0], int(fields[1])


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


def content(version, seed):
    return (f"<!doctype html><title>chaos {version}</title>\n"
            f"<p>okg-sidecar chaos run, seed {seed}, version {version}</p>\n").encode()


class Chaos:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build_dir)
        self.sidecard_bin = os.path.join(self.build, "okg-sidecard", "okg-sidecard")
        self.okgctl_bin = os.path.join(self.build, "okgctl", "okgctl")
        self.work = tempfile.mkdtemp(prefix="okg-chaos-")
        self.log = Log(os.path.join(self.work, "chaos.log"), args.verbose)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.kube = None
        self.nginx = None
        self.files = None
        self.sidecard = None
        self.sidecard_log = None
        # What happened.
        self.updates = []           # dicts: n, version, status, state, recorded, outcome, t0, t1
        self.flips = []             # (t, state)
        self.last_state = "None"
        self.kills = collections.Counter()
        self.kill_skips = 0
        self.killed_pids = {}       # pid -> unit
        self.outages = []           # (t_stop, t_started, seconds down)
        self.apiserver_down = False
        self.thread_errors = []
        self.regressions = {}       # acknowledged version -> how it was seen replaced by an older one
        self.unknown_in_place = 0   # GET /hot-update idle with no current version

    # ------------------------------------------------------------------ setup

    def start_kube(self):
        os.environ["KUBE_APISERVER"] = k.build_apiserver()
        kdir = os.path.join(self.work, "kube")
        os.makedirs(kdir)
        self.kube = k.KubeEnv(kdir)
        self.kube.start()
        self.kube.admin.apply(k.GAMESERVER_CRD)
        self.ns, _ = self.kube.sidecar_namespace("chaos")
        labels = {"game.kruise.io/owner-gss": GSS}
        self.kube.admin.create_pod(self.ns, POD, labels=labels)
        self.kube.admin.create_gameserver(self.ns, POD, ops_state="None", labels=labels)
        self.token_file = os.path.join(self.work, "token")
        self.kube.admin.write_token_file(self.token_file, self.ns)
        self.kubeconfig = self.kube.write_kubeconfig(os.path.join(self.work, "kubeconfig"),
                                                     self.ns, token_file=self.token_file)
        self.log(f"kube-apiserver at {self.kube.server}, namespace {self.ns}")

    def start_game(self):
        self.downloads = os.path.join(self.work, "downloads")
        os.makedirs(self.downloads)
        with open(os.path.join(self.downloads, "index.html"), "wb") as f:
            f.write(content("v0", self.args.seed))
        self.write_state("None")
        ndir = os.path.join(self.work, "nginx")
        os.makedirs(ndir)
        self.nginx = Nginx(ndir, self.downloads)
        self.nginx.start()
        self.files = FileServer()
        # A download cut off by kill -9 resets the connection: not worth a traceback.
        self.files.httpd.handle_error = lambda request, client_address: None
        self.log(f"nginx on port {self.nginx.port} (PID {self.nginx.pid}), files on {self.files.port}")

    def write_state(self, state):
        tmp = os.path.join(self.downloads, ".chaos-state.tmp")
        with open(tmp, "w") as f:
            f.write(state + "\n")
        os.rename(tmp, os.path.join(self.downloads, "state"))

    def config_text(self):
        self.hot_port = free_port()
        self.health_port = free_port()
        extra = ("postReloadCheck:\n"
                 f"  url: http://127.0.0.1:{self.nginx.port}/index.html\n"
                 "  timeoutSeconds: 5\n"
                 "  initialDelayMilliseconds: 100\n"
                 "connectTimeoutSeconds: 2\n"
                 "downloadTimeoutSeconds: 10\n"
                 "recoveryWaitSeconds: 10\n")
        hot = hot_update_section(self.hot_port, self.downloads, self.nginx.title, extra)
        hot = hot.format(boot=0)
        policies = "".join(f"                - state: {s}\n"
                           f"                  gameServerOpsState: {OPS_STATE[s]}\n"
                           for s in STATES)
        probe = ("  - name: http_probe\n"
                 "    config:\n"
                 "      probeIntervalSeconds: 1\n"
                 "      startDelaySeconds: 0\n"
                 "      endpoints:\n"
                 f"        - url: http://127.0.0.1:{self.nginx.port}/state\n"
                 "          timeout: 1\n"
                 "          storageConfig:\n"
                 "            type: InKube\n"
                 "            inKube:\n"
                 "              markerPolices:\n"
                 f"{policies}"
                 "    bootorder: 1\n")
        return ("plugins:\n" + hot + probe +
                "restartpolicy: Always\n"
                "sidecarstartorder: Before\n"
                f"healthPort: {self.health_port}\n"
                "healthAddress: 127.0.0.1\n"
                f"watchdogSeconds: {self.args.watchdog}\n"
                "startTimeoutSeconds: 30\n"
                "stopTimeoutSeconds: 20\n"
                "restartBackoff:\n"
                "  initialMilliseconds: 100\n"
                f"  maxSeconds: {self.args.backoff_max}\n"
                "  resetAfterSeconds: 60\n"
                "storage:\n"
                "  backend: kubernetes\n"
                "  drainTimeoutSeconds: 5\n")

    def start_suite(self):
        for b in (self.sidecard_bin, self.okgctl_bin):
            if not os.access(b, os.X_OK):
                raise RuntimeError(f"{b} is missing: build {self.build} first")
        etc = os.path.join(self.work, "etc")
        os.makedirs(etc)
        self.config = os.path.join(etc, "config.yaml")
        with open(self.config, "w") as f:
            f.write(self.config_text())
        r = subprocess.run([self.sidecard_bin, "--check-config", self.config],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"the chaos config is refused:\n{r.stderr}")
        self.runtime = os.path.join(self.work, "run")
        self.bus_address = f"unix:path={self.runtime}/bus"
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, POD_NAME=POD, POD_NAMESPACE=self.ns,
                   OKG_BUS_CONFIG=os.path.join(self.build, "units", "okg-bus.conf"))
        env.setdefault("SYSTEMD_LOG_LEVEL", "info")
        env.pop("OKG_LIBEXECDIR", None)
        self.sidecard_log_path = os.path.join(self.work, "sidecard.log")
        self.sidecard_log = open(self.sidecard_log_path, "w")
        self.sidecard = subprocess.Popen(
            [self.sidecard_bin, "--config", self.config, "--runtime-dir", self.runtime,
             "--state-dir", os.path.join(self.work, "state")],
            stdout=self.sidecard_log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.log(f"okg-sidecard PID {self.sidecard.pid}")
        deadline = now() + 60
        while self.health("/readyz")[0] != 200:
            if self.sidecard.poll() is not None:
                raise RuntimeError(f"okg-sidecard exited with {self.sidecard.returncode}; "
                                   f"see {self.sidecard_log_path}")
            if now() > deadline:
                raise RuntimeError("the suite did not become ready within 60 s")
            time.sleep(0.1)
        self.log("suite ready")

    # ------------------------------------------------------------------ looking at the suite

    def health(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}",
                                        timeout=5) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"null")
            except ValueError:
                return e.code, None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
            return None, None

    def busctl(self, *args, timeout=10):
        """Parsed --json=short output, or None when the call failed."""
        try:
            r = subprocess.run(["busctl", f"--address={self.bus_address}", "--json=short",
                                "--timeout=5", *args], capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0 or not r.stdout.strip():
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def okgctl(self, *args):
        try:
            r = subprocess.run([self.okgctl_bin, "--address", self.bus_address, "--json", *args],
                               capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def list_units(self):
        out = self.busctl("call", SIDECAR, SIDECAR_PATH, SIDECAR, "ListUnits")
        if not out:
            return None
        keys = ("name", "kind", "state", "pid", "ready", "bootorder", "restarts", "path")
        return {row[0]: dict(zip(keys, row)) for row in out["data"][0]}

    def storage_pending(self):
        out = self.busctl("get-property", STORAGE, STORAGE_PATH, STORAGE, "Pending")
        return None if out is None else out["data"]

    def find_pid(self, unit):
        """The unit's PID from ListUnits, else from /proc (the bus may be the one that is
        down); only a live child of our okg-sidecard with the expected name counts."""
        comm = VICTIMS[unit][1]
        units = self.list_units()
        if units and unit in units:
            pid = units[unit]["pid"]
            st = proc_stat(pid) if pid else None
            if st and st[0] == comm and st[2] == self.sidecard.pid and st[1] != "Z":
                return pid
            return None
        for d in os.listdir("/proc"):
            if d.isdigit():
                st = proc_stat(int(d))
                if st and st[0] == comm and st[2] == self.sidecard.pid and st[1] != "Z":
                    return int(d)
        return None

    # ------------------------------------------------------------------ the chaos

    def hot_base(self):
        return f"http://127.0.0.1:{self.hot_port}/hot-update"

    def hot_get(self):
        try:
            with urllib.request.urlopen(self.hot_base(), timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
            return None, None

    def post(self, version, url):
        data = urllib.parse.urlencode({"version": version, "url": url}).encode()
        req = urllib.request.Request(self.hot_base(), data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            try:
                status, raw = e.code, e.read()
            except (OSError, http.client.HTTPException) as e2:
                return None, None, f"{type(e2).__name__}: {e2}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            return None, None, f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        try:
            return status, json.loads(raw), None
        except ValueError:
            return status, None, f"not JSON: {raw[:200]!r}"

    def run_hot_updates(self):
        rng = random.Random(self.args.seed * 1000 + 1)
        n = 0
        while not self.stop.is_set():
            # Give each version a chance: wait (bounded) for the daemon to listen again.
            deadline = now() + 15
            while not self.stop.is_set() and self.hot_get()[0] is None and now() < deadline:
                time.sleep(0.1)
            if self.stop.is_set():
                break
            n += 1
            version = f"v{n}"
            url, _ = self.files.put(f"/{version}/index.html", content(version, self.args.seed))
            t0 = now()
            self.log(f"POST {version}")
            status, body, err = self.post(version, url)
            t1 = now()
            state = body.get("state") if isinstance(body, dict) else None
            recorded = body.get("recorded") if isinstance(body, dict) else None
            if status == 200 and state in ("Succeeded", "Unchanged"):
                outcome = "acknowledged"
            elif status is None:
                outcome = "no-answer"
            else:
                outcome = "failed"
            u = dict(n=n, version=version, status=status, state=state, recorded=recorded,
                     outcome=outcome, error=err, t0=t0, t1=t1,
                     message=body.get("message") if isinstance(body, dict) else None)
            with self.lock:
                self.updates.append(u)
            self.log(f"POST {version} -> {status} {state} recorded={recorded} ({outcome}"
                     f"{', ' + err if err else ''}) in {t1 - t0:.2f}s"
                     + (f": {u['message']}" if outcome != "acknowledged" and u["message"] else ""))
            if self.stop.wait(rng.uniform(0.1, 0.6)):
                break

    def last_acked_n(self):
        with self.lock:
            for u in reversed(self.updates):
                if u["outcome"] == "acknowledged":
                    return u["n"], u["version"]
        return 0, None

    def run_watch(self):
        """All along: the file in the download folder and okg-hotupdated's version in place
        must never go back below the last acknowledged version (read before looking, so an
        acknowledgement racing with the look does not count)."""
        path = os.path.join(self.downloads, "index.html")
        i = 0
        while not self.stop.wait(0.1):
            i += 1
            n, acked = self.last_acked_n()
            try:
                with open(path, "rb") as f:
                    v = self.served_version(f.read())
            except FileNotFoundError:
                v = None
            if n and (v is None or not isinstance(v, str) or int(v[1:]) < n):
                self.regression(acked, f"index.html has {v!r} after {acked} was acknowledged")
            if i % 5 == 0:
                status, body = self.hot_get()
                cur = ((body or {}).get("current") or {}).get("version")
                if status == 200 and n and body.get("state") == "idle":
                    if cur is None:
                        self.unknown_in_place += 1
                    elif int(cur[1:]) < n:
                        self.regression(acked, f"GET /hot-update has {cur} in place after "
                                               f"{acked} was acknowledged")

    def regression(self, acked, what):
        self.log(f"REGRESSION: {what}")
        if acked not in self.regressions:
            self.regressions[acked] = what

    def run_flips(self):
        rng = random.Random(self.args.seed * 1000 + 2)
        while not self.stop.wait(rng.uniform(0.5, 2.0)):
            state = rng.choice([s for s in STATES if s != self.last_state])
            self.write_state(state)
            with self.lock:
                self.last_state = state
                self.flips.append((now(), state))
            self.log(f"state -> {state}")

    def run_kills(self):
        rng = random.Random(self.args.seed * 1000 + 3)
        units = sorted(VICTIMS)
        while not self.stop.wait(rng.uniform(self.args.kill_min, self.args.kill_max)):
            unit = rng.choice(units)
            pid = self.find_pid(unit)
            if not pid:
                self.kill_skips += 1
                self.log(f"kill {VICTIMS[unit][0]}: not running now, skipped")
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                self.kill_skips += 1
                continue
            with self.lock:
                self.kills[unit] += 1
                self.killed_pids[pid] = unit
            self.log(f"kill -9 {VICTIMS[unit][0]} (PID {pid})")

    def run_outages(self):
        rng = random.Random(self.args.seed * 1000 + 4)
        wait = rng.uniform(5, 12)
        while not self.stop.wait(wait):
            down_for = rng.uniform(2, 6)
            t0 = now()
            self.log("API server: stopping")
            self.apiserver_down = True
            self.kube.stop_apiserver()
            self.log(f"API server: stopped, down for {down_for:.1f}s")
            self.stop.wait(down_for)   # cut short when the chaos ends
            self.kube.start_apiserver()
            self.apiserver_down = False
            t1 = now()
            self.outages.append((t0, t1, t1 - t0))
            self.log(f"API server: ready again after {t1 - t0:.1f}s")
            wait = rng.uniform(12, 25)

    def guarded(self, name, fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: B902 (report anything, the run goes on)
                self.thread_errors.append(f"{name}: {type(e).__name__}: {e}")
                self.log(f"thread {name} died:\n{traceback.format_exc()}")
        return threading.Thread(target=run, name=name, daemon=True)

    def chaos(self):
        threads = [self.guarded(n, f) for n, f in (
            ("hot-updates", self.run_hot_updates), ("flips", self.run_flips),
            ("kills", self.run_kills), ("outages", self.run_outages),
            ("watch", self.run_watch))]
        self.t_chaos = now()
        for t in threads:
            t.start()
        end = self.t_chaos + self.args.seconds
        while now() < end and self.sidecard.poll() is None:
            time.sleep(0.2)
        self.stop.set()
        self.log("chaos: stopping")
        for t in threads:
            t.join(120)
            if t.is_alive():
                self.thread_errors.append(f"{t.name}: still running after 120 s")
        if self.apiserver_down:
            self.log("API server: starting it again after the chaos")
            self.kube.start_apiserver()
            self.apiserver_down = False
        self.t_end = now()
        self.log(f"chaos: over after {self.t_end - self.t_chaos:.1f}s; last state {self.last_state}")

    # ------------------------------------------------------------------ the checks

    def expected_versions(self):
        """(last acknowledged version or None, versions allowed in place at the end): the last
        acknowledged one, or a later one that got no answer (its daemon may have applied and
        recorded it before it died)."""
        acked = [u for u in self.updates if u["outcome"] == "acknowledged"]
        if not acked:
            return None, set()
        last = acked[-1]
        allowed = {last["version"]}
        allowed |= {u["version"] for u in self.updates
                    if u["n"] > last["n"] and u["outcome"] == "no-answer"}
        return last["version"], allowed

    def observe(self):
        o = {}
        c = self.kube.admin
        try:
            s, pod = c.get(c.pod_path(self.ns, POD), timeout=5)
            ann = ((pod or {}).get("metadata") or {}).get("annotations") or {}
            o["annotation"] = json.loads(ann[ANNOTATION]) if s == 200 and ANNOTATION in ann else None
            s, cm = c.get(c.configmap_path(self.ns, "sidecar-result"), timeout=5)
            data = (cm or {}).get("data") or {}
            o["record"] = json.loads(data[POD]) if s == 200 and POD in data else None
            s, gs = c.get(c.gameserver_path(self.ns, POD), timeout=5)
            o["opsState"] = ((gs or {}).get("spec") or {}).get("opsState") if s == 200 else None
        except (k.KubeUnreachable, ValueError) as e:
            o["kube_error"] = str(e)
        o["status"] = self.okgctl("status")
        o["pending"] = self.storage_pending()
        o["hot"] = self.hot_get()[1]
        o["served"] = self.nginx.body("/index.html")
        o["sidecard_alive"] = self.sidecard.poll() is None
        return o

    def evaluate(self, o):
        """[(name, ok, detail)]"""
        checks = []
        last, allowed = self.expected_versions()
        ann, rec, hot = o.get("annotation"), o.get("record"), o.get("hot")
        in_place = rec.get("version") if rec else None
        if last is None:
            checks.append(("hot update: at least one acknowledged", False, "none acknowledged"))
        else:
            want = f"{last}" + (f" (or unanswered later {sorted(allowed - {last}, key=lambda v: int(v[1:]))})"
                                if len(allowed) > 1 else "")
            ann_cur = ann.get("currentVersion") if ann else None
            checks.append(("hot update: pod annotation shows the last acknowledged version",
                           ann_cur in allowed and ann_cur == in_place,
                           f"want {want}; annotation currentVersion {ann_cur!r} "
                           f"(version {ann.get('version') if ann else None!r}, "
                           f"state {ann.get('state') if ann else None!r})"))
            checks.append(("hot update: recovery record shows the last acknowledged version",
                           in_place in allowed,
                           f"want {want}; record version {in_place!r}, lastResult "
                           f"{(rec or {}).get('lastResult', {}).get('version')!r} "
                           f"{(rec or {}).get('lastResult', {}).get('state')!r}"))
            served = o.get("served")
            hot_cur = ((hot or {}).get("current") or {}).get("version")
            checks.append(("hot update: nginx serves it, okg-hotupdated has it in place",
                           in_place is not None and served == content(in_place, self.args.seed)
                           and hot_cur == in_place,
                           f"nginx serves {self.served_version(served)!r}, GET /hot-update "
                           f"current {hot_cur!r}"))
        want_ops = OPS_STATE[self.last_state]
        checks.append(("probe: GameServer spec.opsState is the last state's mapping",
                       o.get("opsState") == want_ops,
                       f"last state {self.last_state!r} -> want {want_ops!r}, "
                       f"got {o.get('opsState')!r}"))
        st = o.get("status")
        if st:
            bad = [f"{u['name']}: {u['state']}{'' if u['ready'] else ' not ready'}"
                   for u in st["units"] if u["state"] != "running" or not u["ready"]]
            names = {u["name"] for u in st["units"]}
            missing = sorted(set(VICTIMS) - names)
            checks.append(("units: every daemon running and ready",
                           not bad and not missing and st.get("ready"),
                           "; ".join(bad + [f"{m}: missing" for m in missing]) or
                           f"{len(st['units'])} units running+ready"))
        else:
            checks.append(("units: every daemon running and ready", False,
                           "okgctl status does not answer"))
        checks.append(("storage: nothing pending", o.get("pending") == 0,
                       f"Pending = {o.get('pending')!r}"))
        checks.append(("okg-sidecard alive", o.get("sidecard_alive"),
                       "running" if o.get("sidecard_alive")
                       else f"exited with {self.sidecard.returncode}"))
        return checks

    def served_version(self, body):
        if body is None:
            return None
        m = re.search(rb"version (v\d+)", body)
        return m.group(1).decode() if m else body[:40]

    def settle(self):
        """Observes until every check has passed for STABLE seconds in a row (so a daemon
        that is about to change something, say a recovery, gets the chance to), or until
        --settle seconds after the chaos."""
        deadline = self.t_end + self.args.settle
        passing_since = None
        self.settle_time = None
        while True:
            o = self.observe()
            checks = self.evaluate(o)
            t = now()
            if all(ok for _, ok, _ in checks):
                if passing_since is None:
                    passing_since = t
                    self.settle_time = t - self.t_end
                if t - passing_since >= STABLE:
                    self.log(f"settle: settled after {self.settle_time:.1f}s")
                    return o, checks
            else:
                passing_since = None
                self.settle_time = None
            if t > deadline:
                self.log("settle: gave up: " + "; ".join(
                    f"{n}: {d}" for n, ok, d in checks if not ok))
                return o, checks
            time.sleep(0.5)

    def events_of_acknowledged(self):
        """(acknowledged versions that have their HotUpdate Event, acknowledged count)."""
        try:
            s, body = self.kube.admin.get(f"/api/v1/namespaces/{self.ns}/events", timeout=10)
        except k.KubeUnreachable:
            return None, 0
        msgs = [e.get("message", "") for e in (body or {}).get("items", [])
                if e.get("reason") == "HotUpdate"] if s == 200 else []
        acked = [u for u in self.updates if u["outcome"] == "acknowledged"]
        have = [u["version"] for u in acked
                if any(m.startswith(f"{u['state']} {u['version']}:") for m in msgs)]
        return have, len(acked)

    def history_checks(self):
        r = self.regressions
        return [("hot update: no acknowledged version ever went back during the run", not r,
                 f"{len(r)} lost: " + "; ".join(r.values()) if r else
                 "the file and GET /hot-update only moved forward"
                 + (f" (idle without a version {self.unknown_in_place} times)"
                    if self.unknown_in_place else ""))]

    def exits_from_log(self):
        """[(unit, pid, reason, secondary)] of the daemon exits okg-sidecard logged while it
        ran. secondary: the daemon had just been started while dbus-daemon was down (killed by
        us), could not join the bus and exited 1, to be started again."""
        out = []
        rx = re.compile(r"^okg-sidecard\[\d+\]: (bus|storage|hot_update|http_probe) "
                        r"\(PID (\d+)\) (.+?)\.$")
        no_bus = set()
        rx_nobus = re.compile(r"^okg-[a-z]+\[(\d+)\]: Failed to join the private bus")
        with open(self.sidecard_log_path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                m = rx_nobus.match(line)
                if m:
                    no_bus.add(int(m.group(1)))
                    continue
                m = rx.match(line)
                if m and not m.group(3).startswith("stopped:"):
                    pid = int(m.group(2))
                    out.append((m.group(1), pid, m.group(3),
                                pid in no_bus and m.group(3) == "exited with status 1"
                                and self.kills["bus"] > 0))
        return out

    def log_checks(self):
        exits = self.exits_from_log()
        unexpected = [f"{u} PID {p}: {why}" for u, p, why, secondary in exits
                      if not secondary and (self.killed_pids.get(p) != u
                                            or why != "killed by SIGKILL")]
        self.secondary_exits = collections.Counter(u for u, _, _, s in exits if s)
        with open(self.sidecard_log_path, errors="replace") as f:
            text = f.read()
        reports = [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]
        ours = sum(1 for u, p, why, _ in exits if self.killed_pids.get(p) == u)
        stops = re.findall(r"^okg-sidecard\[\d+\]: (bus|storage|hot_update|http_probe) "
                           r"\(PID \d+\) stopped: (.+?)\.$", text, re.M)
        unclean = [f"{u}: {why}" for u, why in stops if why != "exited with status 0"]
        return [("no daemon exit other than our kills", not unexpected,
                 "; ".join(unexpected[:10]) or
                 f"{len(exits)} exits: {ours} our kills, {len(exits) - ours} started while the "
                 "bus was down (exit 1, restarted)"),
                ("clean stop: okg-sidecard exited 0, every daemon with status 0",
                 self.stop_code == 0 and not unclean and len(stops) == len(VICTIMS),
                 f"okg-sidecard exit code {self.stop_code}; "
                 + ("; ".join(unclean) if unclean else f"{len(stops)} daemons stopped cleanly")),
                ("no sanitizer report in the suite's log", not reports,
                 "; ".join(reports[:5]) or "none")]

    # ------------------------------------------------------------------ cleanup

    def stop_suite(self):
        """SIGTERM to okg-sidecard (it stops the daemons in order); returns its exit code."""
        if not self.sidecard:
            return None
        code = None
        if self.sidecard.poll() is None:
            self.sidecard.send_signal(signal.SIGTERM)
            try:
                code = self.sidecard.wait(40)
            except subprocess.TimeoutExpired:
                self.log("okg-sidecard did not stop within 40 s; SIGKILL")
                os.killpg(self.sidecard.pid, signal.SIGKILL)
                self.sidecard.wait()
                code = "killed"
        else:
            code = self.sidecard.returncode
        # The daemons run in sessions of their own; anything of ours still there goes now.
        deadline = now() + 10
        while True:
            left = self.our_processes()
            if not left or now() > deadline:
                break
            time.sleep(0.2)
        for pid in left:
            self.log(f"left behind: PID {pid}; SIGKILL")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.leftovers = left
        return code

    def our_processes(self):
        """PIDs of the suite (okg-sidecard, its daemons, its dbus-daemon) whose command line
        names our work directory."""
        out = []
        needle = self.work.encode()
        names = {b"okg-sidecard", b"dbus-daemon"} | {v[0].encode() for v in VICTIMS.values()}
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if (needle in cmd and os.path.basename(cmd.split(b"\0")[0]) in names
                    and alive(int(d))):
                out.append(int(d))
        return out

    def cleanup(self):
        self.stop.set()
        code = None
        try:
            code = self.stop_suite()
        except Exception as e:
            self.log(f"cleanup: suite: {e}")
        if self.nginx:
            try:
                workers = self.nginx.workers() if self.nginx.proc else []
                self.nginx.stop()
                for pid in workers:
                    if alive(pid):
                        os.kill(pid, signal.SIGKILL)
            except Exception as e:
                self.log(f"cleanup: nginx: {e}")
        if self.files:
            try:
                self.files.close()
            except Exception as e:
                self.log(f"cleanup: file server: {e}")
        if self.kube:
            try:
                self.kube.stop()
            except Exception as e:
                self.log(f"cleanup: kube: {e}")
        if self.sidecard_log:
            self.sidecard_log.close()
        return code

    # ------------------------------------------------------------------ the report

    def report(self, checks, observed):
        ups = self.updates
        by = collections.Counter(u["outcome"] for u in ups)
        states = collections.Counter(u["state"] for u in ups if u["outcome"] != "no-answer")
        last, allowed = self.expected_versions()
        unrecorded = [u["version"] for u in ups if u["outcome"] == "acknowledged"
                      and u["recorded"] is False]
        p = print
        p(f"okg-sidecar chaos run: build {self.build}, seed {self.args.seed}, "
          f"{self.args.seconds:g} s of chaos")
        p(f"hot updates: sent {len(ups)}, acknowledged {by['acknowledged']}, "
          f"failed {by['failed']}, no answer {by['no-answer']}; last acknowledged {last}")
        p("  answers by state: " + ", ".join(f"{s}={n}" for s, n in sorted(
            states.items(), key=lambda kv: str(kv[0]))))
        if unrecorded:
            p("  acknowledged with \"recorded\": false: " + ", ".join(
                v + (" (later lost)" if v in self.regressions else "") for v in unrecorded))
        p(f"state flips: {len(self.flips)}; last state {self.last_state} -> opsState "
          f"{OPS_STATE[self.last_state]}")
        p("kills: " + ", ".join(f"{VICTIMS[u][0]}={self.kills[u]}" for u in sorted(VICTIMS))
          + f" (total {sum(self.kills.values())}, skipped {self.kill_skips})")
        p(f"API outages: {len(self.outages)}"
          + (" (" + ", ".join(f"{d:.1f}s" for _, _, d in self.outages) + " from stop to ready)"
             if self.outages else ""))
        st = (observed or {}).get("status")
        if st:
            p("restarts as the suite reports them: " + ", ".join(
                f"{u['name']}={u['restarts']}" for u in st["units"]))
        if self.kube:
            have, n_acked = self.events_of_acknowledged_result
            if have is not None:
                p(f"HotUpdate Events found for {len(have)} of {n_acked} acknowledged updates "
                  "(informational: the answer waits for the record, not the Event)")
        ok_all = all(ok for _, ok, _ in checks)
        if hasattr(self, "t_end"):
            p(f"settled {self.settle_time:.1f}s after the chaos (checks then held {STABLE:g}s)"
              if self.settle_time is not None else f"not settled within {self.args.settle:g}s")
        for name, ok, detail in checks:
            p(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
        for e in self.thread_errors:
            p(f"FAIL  chaos thread: {e}")
        p(f"RESULT: {'PASS' if ok_all and not self.thread_errors else 'FAIL'}")
        return ok_all and not self.thread_errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--settle", type=float, default=60, help="bound on the wait at the end")
    ap.add_argument("--watchdog", type=int, default=5, help="watchdogSeconds")
    ap.add_argument("--backoff-max", type=int, default=2, help="restartBackoff.maxSeconds")
    ap.add_argument("--kill-min", type=float, default=1.5)
    ap.add_argument("--kill-max", type=float, default=4.0)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="the run log on stderr too")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if os.geteuid() != 0:
        print("chaos.py: run as root (nginx, signals across sessions)", file=sys.stderr)
        return 2

    def on_term(signo, frame):
        raise KeyboardInterrupt(f"signal {signo}")
    signal.signal(signal.SIGTERM, on_term)

    c = Chaos(args)
    print(f"chaos: seed {args.seed}, work directory {c.work}", file=sys.stderr, flush=True)
    checks, observed = [], None
    try:
        c.start_kube()
        c.start_game()
        c.start_suite()
        c.chaos()
        observed, checks = c.settle()
        c.events_of_acknowledged_result = c.events_of_acknowledged()
        c.stop_code = c.stop_suite()
        i = sum(1 for name, _, _ in checks if name.startswith("hot update"))
        checks = checks[:i] + c.history_checks() + checks[i:] + c.log_checks()
    except BaseException as e:
        c.log(f"aborted: {traceback.format_exc()}")
        print(f"chaos: aborted: {type(e).__name__}: {e}", file=sys.stderr)
        checks.append(("run completed", False, f"{type(e).__name__}: {e}"))
    finally:
        c.cleanup()
    if not hasattr(c, "settle_time"):
        c.settle_time = None
    if not hasattr(c, "events_of_acknowledged_result"):
        c.events_of_acknowledged_result = (None, 0)
    ok = c.report(checks, observed)
    c.log.close()
    if ok and not args.keep:
        shutil.rmtree(c.work, ignore_errors=True)
    else:
        print(f"work directory kept: {c.work} (chaos.log, sidecard.log, kube/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
