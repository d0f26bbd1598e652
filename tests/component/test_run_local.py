"""scripts/run-local.sh talks only to the servers it started: a port held by another process is
named in one line and the script fails, and every port can be chosen."""
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import BUILD, TOP, free_port, scaled, spawn, wait_for

SCRIPT = os.path.join(TOP, "scripts", "run-local.sh")
PORTS = ("health", "hot-update", "game", "cdn")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nginx"),
                       reason="run-local.sh runs nginx as root"),
    # It builds its build directory: only a real meson one (not valgrind.sh's shadow of one).
    pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "build.ninja")),
                       reason=f"{BUILD} is not a meson build directory"),
]


def env_without_cluster():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RUN_LOCAL_") and k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["RUN_LOCAL_BUILD_DIR"] = BUILD
    return env


def run_local(*args, env=None):
    return subprocess.run([SCRIPT, "--demo-only", *args], env=env or env_without_cluster(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=scaled(600))


def listening(port):
    out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True)
    return out.stdout.strip() != ""


class Stranger:
    """python3 -m http.server on 127.0.0.1:port: the issue's other process."""

    def __init__(self, port):
        self.port = port
        self.proc = spawn(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(port), what=f"http.server on {port}")

    def close(self):
        self.proc.kill()
        self.proc.wait()


def chosen_ports():
    # free_port() closes its socket, so two calls may hand out the same port: draw until the
    # four are different (run-local.sh refuses two roles on one port, rightly).
    chosen = {}
    while len(chosen) < len(PORTS):
        port = free_port()
        if port not in chosen.values():
            chosen[PORTS[len(chosen)]] = port
    return chosen


def as_options(ports):
    return [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]


@pytest.mark.parametrize("taken", PORTS)
def test_a_taken_port_is_named_and_nothing_is_ready(taken):
    ports = chosen_ports()
    stranger = Stranger(ports[taken])
    try:
        r = run_local(*as_options(ports))
    finally:
        stranger.close()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ready" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.startswith("run-local:")]
    assert len(lines) == 1, r.stderr
    assert lines[0] == (f"run-local: port {ports[taken]} ({taken}) is taken by python3 "
                        f"(pid {stranger.proc.pid}); choose another with --{taken}-port or "
                        f"RUN_LOCAL_{taken.upper().replace('-', '_')}_PORT")


def test_the_environment_chooses_ports_too():
    ports = chosen_ports()
    stranger = Stranger(ports["game"])
    env = env_without_cluster()
    for name, port in ports.items():
        env[f"RUN_LOCAL_{name.upper().replace('-', '_')}_PORT"] = str(port)
    try:
        r = run_local(env=env)
    finally:
        stranger.close()
    assert r.returncode == 1
    assert f"run-local: port {ports['game']} (game) is taken by python3" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--health-port", "http"], "--health-port / RUN_LOCAL_HEALTH_PORT: 'http' is not a port"),
    (["--cdn-port", "70000"], "--cdn-port / RUN_LOCAL_CDN_PORT: '70000' is not a port"),
    (["--game-port", "9000", "--cdn-port", "9000"], "the cdn and game ports are both 9000"),
])
def test_bad_ports_are_refused(args, message):
    r = run_local(*args)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_demo_on_chosen_ports():
    ports = chosen_ports()
    r = run_local(*as_options(ports))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert f"the suite is ready: curl http://127.0.0.1:{ports['health']}/readyz" in out
    assert f"http://127.0.0.1:{ports['hot-update']}/hot-update" in out
    assert re.search(r'"state": ?"Succeeded"', out), out
    assert "<h1>2048 v2</h1>" in out
    assert '"opsState": "WaitToBeDeleted"' in out
    # Everything it started is gone again.
    for port in ports.values():
        wait_for(lambda: not listening(port), what=f"port {port} closed")


@pytest.mark.parametrize("args, option, hint", [
    (["--health-port"], "--health-port", "N"),
    (["--cdn-port", "--demo-only"], "--cdn-port", "N"),
    (["--game-port", ""], "--game-port", "N"),
    (["--build-dir"], "--build-dir", "DIR"),
])
def test_an_option_without_its_value_is_named(args, option, hint):
    r = subprocess.run([SCRIPT, *args], env=env_without_cluster(), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=scaled(600))
    assert r.returncode == 1
    assert r.stderr == f"run-local: {option} needs a value ({option} {hint})\n"
    assert r.stdout == ""


@pytest.mark.parametrize("taken", PORTS)
def test_a_port_bound_but_not_listening_is_named(taken):
    """A socket bound to the port without listen(): ss lists only listeners, yet the server's
    bind() fails; the message must name the port, not nginx's "still could not bind()"."""
    ports = chosen_ports()
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[taken]))
        r = run_local(*as_options(ports))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the suite is ready" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.startswith("run-local:")]
    assert lines == [f"run-local: port {ports[taken]} ({taken}) is taken by a socket bound to it "
                     f"but not listening (ss cannot show its owner); choose another with "
                     f"--{taken}-port or RUN_LOCAL_{taken.upper().replace('-', '_')}_PORT"], r.stderr


def test_a_second_run_leaves_the_first_alone(tmp_path):
    """Two runs in one build directory share its demo/: the second one must refuse in one line
    and change nothing of the first (its bus socket, its config, its ports), even on other
    ports; once the first has stopped, a run works again."""
    demo = os.path.join(BUILD, "demo")
    first_ports, second_ports = chosen_ports(), chosen_ports()
    out = tmp_path / "first.out"
    with open(out, "w") as f:
        first = spawn([SCRIPT, *as_options(first_ports)], env=env_without_cluster(),
                      stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                      start_new_session=True)
    try:
        def first_up():
            assert first.poll() is None, out.read_text()[-3000:]
            return "the suite keeps running" in out.read_text()
        wait_for(first_up, timeout=600, what="the first run-local.sh")
        config = open(os.path.join(demo, "config.yaml")).read()
        bus = os.path.join(demo, "run", "bus")
        assert os.path.exists(bus)

        r = run_local(*as_options(second_ports))
        assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
        assert r.stderr == (f"run-local: {demo} is in use by another run-local.sh (pid {first.pid}); "
                            f"stop it first or choose another --build-dir or RUN_LOCAL_BUILD_DIR\n")
        assert r.stdout == ""
        assert os.path.exists(bus)
        assert open(os.path.join(demo, "config.yaml")).read() == config
        assert not any(listening(p) for p in second_ports.values())
        st = subprocess.run([os.path.join(BUILD, "okgctl", "okgctl"), "-a", os.path.join(demo, "run"),
                             "status"], capture_output=True, text=True, timeout=scaled(30))
        assert st.returncode == 0 and "running, ready, healthy" in st.stdout, st.stderr
        assert all(listening(p) for p in first_ports.values())
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=scaled(60))
    for port in first_ports.values():
        wait_for(lambda: not listening(port), what=f"port {port} closed")
    r = run_local(*as_options(second_ports))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def run_own_config(cfg, ports):
    return run_local("--config", str(cfg), "--game-port", str(ports["game"]),
                     "--cdn-port", str(ports["cdn"]))


def test_own_config_refused_names_file_line_and_key(tmp_path):
    """--config with a bad file: okg-sidecard's message (file, line, column, key), one line
    saying nothing was started, and nothing listens."""
    ports = chosen_ports()
    cfg = tmp_path / "my-config.yaml"
    cfg.write_text("plugins: []\nhealthPort: 70000\n")
    r = run_own_config(cfg, ports)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"{cfg}:2:13: healthPort: must be between 1 and 65535, got 70000" in r.stderr
    assert f"run-local: {cfg} is refused (the problems are above); nothing was started" in r.stderr
    assert "the suite is ready" not in r.stdout
    assert not listening(ports["game"]) and not listening(ports["cdn"])


def test_own_config_missing_file_is_named(tmp_path):
    r = run_local("--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 1
    assert f"run-local: --config {tmp_path / 'nope.yaml'}: no such file" in r.stderr


def test_own_config_with_service_quality_runs(tmp_path):
    """--config with a service_quality section: the suite runs that file (its health port) beside
    the demo's nginx; the demo's own steps are left out."""
    ports = chosen_ports()
    ann = tmp_path / "podprobe"
    ann.write_text('[{"name":"idle","containerName":"game","probe":{"httpGet":{"path":"/state",'
                   f'"port":{ports["game"]}}},"initialDelaySeconds":0,"periodSeconds":1}},'
                   '"podConditionType":"game.kruise.io/idle"}]')
    cfg = tmp_path / "my-config.yaml"
    cfg.write_text("plugins:\n  - name: service_quality\n    bootorder: 0\n    config:\n"
                   f"      source: file\n      file: {ann}\n"
                   f"healthPort: {ports['health']}\nhealthAddress: 127.0.0.1\n")
    r = run_own_config(cfg, ports)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"the suite is ready: curl http://127.0.0.1:{ports['health']}/readyz" in r.stdout
    assert f"the suite runs {cfg}" in r.stdout
    assert "hot update" not in r.stdout
    for port in ports.values():
        wait_for(lambda: not listening(port), what=f"port {port} closed")


def run_local_in(cwd, *args):
    return subprocess.run([SCRIPT, "--demo-only", *args], env=env_without_cluster(), cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=scaled(600))


def test_own_config_relative_to_the_callers_directory(tmp_path):
    """--config etc/config.yaml from another directory: the file is the caller's (before, it was
    looked for under the repository and "no such readable file"); here it is refused by
    okg-sidecard's check under its absolute name, which shows it was found."""
    ports = chosen_ports()
    (tmp_path / "etc").mkdir()
    cfg = tmp_path / "etc" / "config.yaml"
    cfg.write_text("plugins: []\nhealthPort: 70000\n")
    r = run_local_in(tmp_path, "--config", "etc/config.yaml", "--game-port", str(ports["game"]),
                     "--cdn-port", str(ports["cdn"]))
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"{cfg}:2:13: healthPort: must be between 1 and 65535, got 70000" in r.stderr, r.stderr
    assert f"run-local: {cfg} is refused" in r.stderr


@pytest.mark.parametrize("make, why", [
    (lambda p: p.mkdir(), "is a directory, not a config file"),
    (lambda p: None, "no such file"),
    (lambda p: os.mkfifo(p), "not a regular file"),
], ids=["directory", "missing", "fifo"])
def test_own_config_relative_problems_are_told_apart(tmp_path, make, why):
    make(tmp_path / "c.yaml")
    r = run_local_in(tmp_path, "--config", "c.yaml")
    assert r.returncode == 1
    assert f"run-local: --config c.yaml ({tmp_path / 'c.yaml'}): {why}" in r.stderr, r.stderr


def test_own_config_health_port_taken_is_named_before_the_build(tmp_path):
    """The file's healthPort held by another process: one line naming it, before anything
    is built or started (not a late "Address already in use")."""
    ports = chosen_ports()
    cfg = tmp_path / "my-config.yaml"
    cfg.write_text(f"plugins: []\nhealthPort: {ports['health']}\nhealthAddress: 127.0.0.1\n")
    stranger = Stranger(ports["health"])
    try:
        r = run_own_config(cfg, ports)
    finally:
        stranger.close()
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert (f"run-local: port {ports['health']} (healthPort of {cfg}) is taken by python3 (pid "
            f"{stranger.proc.pid}); change healthPort in that file") in r.stderr, r.stderr
    assert not listening(ports["game"]) and not listening(ports["cdn"])
