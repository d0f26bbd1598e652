"""What the benchmarks share: ports, waiting, CPU time and memory of a process (from /proc), the
process tree of a suite, and starting the demo suite (okg-sidecard on
deploy/examples/config.yaml, kept off the demo's fixed ports)."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.05):
    """cond()'s first true value, polled every interval seconds; exits the bench after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def cpu_ns(pid):
    """Time on CPU of every thread of pid, in ns (schedstat: finer than utime/stime ticks); 0
    when the process is gone."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total


def proc_field(path, name):
    """The number after "name:" in a /proc file of "Name: value" lines, 0 when gone."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def status_field(pid, name):
    """A number of /proc/PID/status (VmRSS, voluntary_ctxt_switches...), 0 when gone."""
    return proc_field(f"/proc/{pid}/status", name)


def wakeups(pid):
    """A single-threaded daemon sleeps in epoll_wait between events: every wake-up ends in one
    context switch when it goes back to sleep."""
    return status_field(pid, "voluntary_ctxt_switches") + \
        status_field(pid, "nonvoluntary_ctxt_switches")


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children():
    """{ppid: [pid...]} of every process."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def descendants(root):
    """root and every process below it."""
    kids = children()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def child_pid(parent, match):
    """The first child of parent whose command line match(cmdline) accepts, or None."""
    for pid in children().get(parent, []):
        if match(cmdline(pid)):
            return pid
    return None


def rollup(pid, field):
    """A field of /proc/PID/smaps_rollup in KiB (Pss, Private_Dirty...), 0 when gone."""
    return proc_field(f"/proc/{pid}/smaps_rollup", field)


def mappings(pid):
    """One dict per mapping of /proc/PID/smaps: path ("" when anonymous, [heap], [stack]...) and
    its fields in KiB (Pss, Private_Dirty, Private_Clean, Shared_Clean, Shared_Dirty...)."""
    out = []
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                p = line.split()
                if not p[0].endswith(":"):
                    out.append({"path": p[5] if len(p) > 5 else ""})
                elif len(p) == 3 and p[2] == "kB":
                    out[-1][p[0][:-1]] = int(p[1])
    except OSError:
        pass
    return out


def pss_alone(pids):
    """PSS per process as if the suite ran alone on the machine: a page a file shares is divided
    among the suite's processes that map that file only. Measured PSS also divides it among
    every other process mapping the same library (on a loaded machine: lower, and varying);
    this estimate is the same on a quiet and a busy machine. Returns ({pid: KiB},
    {pid: {path: KiB}})."""
    maps = {pid: mappings(pid) for pid in pids}
    users = {}
    for m in maps.values():
        for path in {x["path"] for x in m if x["path"].startswith("/")}:
            users[path] = users.get(path, 0) + 1
    by_path = {}
    for pid, m in maps.items():
        d = by_path.setdefault(pid, {})
        for x in m:
            priv = x.get("Private_Clean", 0) + x.get("Private_Dirty", 0)
            sh = x.get("Shared_Clean", 0) + x.get("Shared_Dirty", 0)
            path = x["path"]
            d[path] = d.get(path, 0) + priv + (sh / users[path] if path.startswith("/") else sh)
    return {pid: sum(d.values()) for pid, d in by_path.items()}, by_path


def readyz(port):
    """(status, body) of GET /readyz, (None, None) when nothing answers."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/readyz")
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        return r.status, body
    except (OSError, ValueError):
        return None, None


def demo_config(tmp):
    """The demo config in tmp/config.yaml with its health port and the hot-update server on free
    loopback ports and its downloads under tmp. Returns (path, health port)."""
    port = free_port()
    with open(os.path.join(TOP, "deploy", "examples", "config.yaml")) as f:
        text = f.read().replace("healthPort: 5001", f"healthPort: {port}")
    text = text.replace("      loadPatchType: signal\n",
                        f"      loadPatchType: signal\n      bindAddress: 127.0.0.1\n"
                        f"      port: {free_port()}\n      downloadDir: {tmp}/downloads\n")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(text)
    return cfg, port


def start_sidecard(build, cfg, tmp, env=None, log=subprocess.DEVNULL):
    """okg-sidecard of build on cfg, its state under tmp."""
    e = dict(os.environ, OKG_BUS_CONFIG=os.path.join(build, "units", "okg-bus.conf"))
    e.pop("NOTIFY_SOCKET", None)
    e.update(env or {})
    return subprocess.Popen([os.path.join(build, "okg-sidecard", "okg-sidecard"), "--config", cfg,
                             "--runtime-dir", os.path.join(tmp, "run"),
                             "--state-dir", os.path.join(tmp, "state")],
                            stdout=log, stderr=subprocess.STDOUT, env=e)


class Nginx:
    """A real nginx on a free loopback port serving dir/html (html/state holds state), keeping
    connections alive; its access log lists per request the connection's number, the request's
    number on it and the user agent (see connections())."""

    def __init__(self, d, state="Allocated\n"):
        self.dir = d
        os.makedirs(f"{d}/html", exist_ok=True)
        os.makedirs(f"{d}/logs", exist_ok=True)
        self.set_state(state)
        self.port = free_port()
        user = "user root;\n" if os.geteuid() == 0 else ""
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(f"""{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    log_format probe '$connection $connection_requests "$http_user_agent"';
    access_log {d}/logs/access.log probe buffer=64k flush=1s;
    keepalive_requests 1000000;
    client_body_temp_path {d}/tmp-body;
    proxy_temp_path {d}/tmp-proxy;
    fastcgi_temp_path {d}/tmp-fastcgi;
    uwsgi_temp_path {d}/tmp-uwsgi;
    scgi_temp_path {d}/tmp-scgi;
    default_type text/plain;
    server {{ listen 127.0.0.1:{self.port} backlog=4096; root {d}/html; location / {{ }} }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", d, "-c", f"{d}/nginx.conf", "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 15, "nginx")

    def set_state(self, text):
        with open(f"{self.dir}/html/state", "w") as f:
            f.write(text)

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def url(self, q=""):
        return f"http://127.0.0.1:{self.port}/state{q}"

    def log_lines(self):
        """The access log so far (nginx writes its buffer out every second)."""
        with open(f"{self.dir}/logs/access.log") as f:
            return f.read().splitlines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(10)


def connections(lines, agent):
    """(requests, connections opened) among the access log lines of one user agent: a connection
    is new where its request number ($connection_requests) is 1. (Counting distinct connections
    would count the kept-alive pool too.)"""
    mine = [line.split() for line in lines if agent in line]
    return len(mine), sum(1 for f in mine if f[1] == "1")


def build_curl_loop(tmp):
    """bench/probe-bench-curl.c built into tmp: the least a program can do to make the same
    HTTP requests with libcurl's easy interface. Returns its path."""
    out = os.path.join(tmp, "probe-bench-curl")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(TOP, "bench", "probe-bench-curl.c"), *flags], check=True)
    return out


def curl_loop(binary, nginx, url, count, mode, rate):
    """Runs the libcurl loop: count requests to url, mode "reuse" (keep-alive) or "fresh" (a new
    connection each), rate per second (0: back to back). Returns (CPU s per 10,000 requests,
    requests ok, requests made, new connections per request from nginx's log)."""
    before = len(nginx.log_lines())
    out = subprocess.run([binary, url, str(count), mode, str(rate)], capture_output=True, text=True)
    made, ok, used = out.stdout.split()
    time.sleep(1.2)   # nginx flushes its log buffer every second
    req, conn = connections(nginx.log_lines()[before:], "okg-probed/bench")
    return float(used) * 10000 / int(made), int(ok), int(made), conn / max(req, 1)
