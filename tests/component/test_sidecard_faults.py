"""okg-sidecard start-up faults (issue 10): relative paths on the command line and in the
environment (F2), and daemons (re)started on a config okg-sidecard has not accepted (F5)."""
import os
import signal
import socket
import subprocess

from conftest import (BUILD, HTTP_PROBE, SANITIZER_MARKERS, SIDECARD, free_port, make_config,
                      wait_for)
from probe_helpers import mgr_prop
from test_okgctl import okgctl

# ---- F2: every path handed on to the daemons is absolute ----


def proc_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(e.split("=", 1) for e in f.read().decode(errors="replace").split("\0") if "=" in e)


def test_relative_command_line_paths_reach_ready(suite_factory, tmp_path):
    w = tmp_path / "w"
    w.mkdir()
    port = free_port()
    s = suite_factory(make_config(port), config_dir=w)
    s.runtime, s.state = w / "run", w / "state"    # where the relative options below point
    s.start(args=["--config", "config.yaml", "--runtime-dir", "run", "--state-dir", "state"],
            cwd=str(w))
    # Before the fix NOTIFY_SOCKET was "run/notify", which sd_notify() ignores: no READY=1, no
    # watchdog pings, /readyz 503 for ever and a watchdog kill of every daemon.
    s.wait_ready(timeout=60)
    assert s.http("/healthz")[0] == 200
    assert s.manager_prop("RuntimeDirectory") == str(w / "run")
    assert s.manager_prop("StateDirectory") == str(w / "state")
    assert s.manager_prop("ConfigFile") == str(w / "config.yaml")
    for name in ("storage", "hot_update", "http_probe"):
        env = proc_environ(s.pid(name))
        assert env["NOTIFY_SOCKET"] == str(w / "run" / "notify"), name
        assert env["OKG_BUS_ADDRESS"] == f"unix:path={w}/run/bus", name
        assert env["OKG_STATE_DIR"] == str(w / "state"), name
        assert os.path.isabs(env["OKG_CONFIG"]), name
    assert all(u["restarts"] == 0 for u in s.units().values())
    log = s.log_text()
    assert "did not report READY=1" not in log and "missed its watchdog" not in log


def test_empty_path_option_is_refused(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(make_config(free_port()))
    r = subprocess.run([SIDECARD, "--config", str(cfg), "--runtime-dir", ""], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--runtime-dir: the path is empty" in r.stderr


def test_daemon_started_directly_with_relative_paths(tmp_path):
    """A daemon run by another supervisor (or by hand) with relative paths: --config relative to
    its working directory, and a relative NOTIFY_SOCKET and OKG_STATE_DIR made absolute."""
    w = tmp_path / "w"
    (w / "run").mkdir(parents=True)
    (w / "config.yaml").write_text(make_config(free_port(), [(HTTP_PROBE, 0)]))
    bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", "--nosyslog",
                            f"--config-file={BUILD}/units/okg-bus.conf",
                            f"--address=unix:path={w}/run/bus", "--print-address"],
                           stdout=subprocess.PIPE, text=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    probed = None
    try:
        assert bus.stdout.readline().startswith("unix:")
        notify.bind(str(w / "run" / "notify"))
        notify.settimeout(60)
        env = dict(os.environ, NOTIFY_SOCKET="run/notify", OKG_STATE_DIR="state",
                   OKG_BUS_ADDRESS=f"unix:path={w}/run/bus", SYSTEMD_LOG_LEVEL="info")
        env.pop("OKG_CONFIG", None)
        probed = subprocess.Popen([f"{BUILD}/okg-probed/okg-probed", "--config", "config.yaml",
                                   "--plugin", "http_probe"], cwd=str(w), env=env,
                                  stderr=subprocess.PIPE, text=True)
        # Before the fix nothing arrived: sd_notify() ignores a relative socket path.
        messages = notify.recv(4096).decode()
        assert "READY=1" in messages
        assert probed.poll() is None
        probed.terminate()
        err = probed.communicate(timeout=60)[1]
        assert probed.returncode == 0, err
        assert not any(m in err for m in SANITIZER_MARKERS), err
    finally:
        notify.close()
        for p in (probed, bus):
            if p and p.poll() is None:
                p.kill()
                p.wait(30)


# ---- F5: daemons start on the config okg-sidecard accepted, never on the live file ----

INTERVAL_USEC = 5 * 1000000


def start_probe_suite(suite_factory):
    port = free_port()
    good = make_config(port, [(HTTP_PROBE, 0)])
    s = suite_factory(good).start()
    s.wait_ready()
    assert mgr_prop(s, "ProbeIntervalUSec") == INTERVAL_USEC
    return s, good


def refuse(s, text):
    n = s.log_text().count("Config reload refused")
    s.config.write_text(text)
    wait_for(lambda: s.log_text().count("Config reload refused") > n, what="reload refused")


def wait_restarted(s, old_pid):
    wait_for(lambda: s.units()["http_probe"]["pid"] not in (0, old_pid)
             and s.units()["http_probe"]["ready"], timeout=60, what="http_probe restarted and ready")
    assert s.http("/healthz")[0] == 200
    assert s.http("/readyz")[0] == 200
    assert mgr_prop(s, "ProbeIntervalUSec") == INTERVAL_USEC


def test_restart_after_a_refused_reload_uses_the_accepted_config(suite_factory):
    s, good = start_probe_suite(suite_factory)
    snapshot = s.runtime / "accepted-config.yaml"
    assert snapshot.read_text() == good
    refuse(s, good.replace("probeIntervalSeconds: 5", "probeIntervalSeconds: 0"))
    assert snapshot.read_text() == good
    pid = s.pid("http_probe")
    r = okgctl(s, "restart", "http_probe")
    assert r.returncode == 0, r.stderr
    # Before the fix the plugin read the live file, exited 3 and crash-looped: /healthz 503.
    wait_restarted(s, pid)


def test_crash_after_a_refused_reload_does_not_apply_it(suite_factory):
    """The refused file's plugin section is valid on its own (the top level is what is wrong):
    before the fix a crashed plugin came back running the refused interval."""
    s, good = start_probe_suite(suite_factory)
    bad = (good.replace("probeIntervalSeconds: 5", "probeIntervalSeconds: 7")
               .replace("restartpolicy: Always", "restartpolicy: Sometimes"))
    refuse(s, bad)
    pid = s.pid("http_probe")
    os.kill(pid, signal.SIGKILL)
    wait_restarted(s, pid)
    # A good file is then applied, and the snapshot follows it.
    fixed = good.replace("probeIntervalSeconds: 5", "probeIntervalSeconds: 7")
    pid = s.pid("http_probe")
    s.config.write_text(fixed)
    wait_for(lambda: s.units()["http_probe"]["pid"] not in (0, pid)
             and s.units()["http_probe"]["ready"], timeout=60, what="restart on the new config")
    assert mgr_prop(s, "ProbeIntervalUSec") == 7 * 1000000
    assert (s.runtime / "accepted-config.yaml").read_text() == fixed


# ---- a daemon whose program cannot be executed: the reason, not just "status 127" ----


def test_missing_dbus_daemon_names_why_it_cannot_run(suite_factory, tmp_path):
    """OKG_DBUS_DAEMON naming a file that is not there: execve() fails in the child. Before,
    the log and /readyz said only `exited with status 127`, in a loop of restarts."""
    s = suite_factory(make_config(free_port(), plugins=[(HTTP_PROBE, 1)]))
    missing = tmp_path / "no-such" / "dbus-daemon"
    s.start(extra_env={"OKG_DBUS_DAEMON": str(missing)})
    s.wait_log(rf"bus \(PID \d+\) cannot execute {missing}: No such file or directory\.")

    def last_exit():
        code, body = s.http("/readyz")
        units = {u["name"]: u for u in (body or {}).get("units", [])}
        return code == 503 and units.get("bus", {}).get("lastExit")
    assert wait_for(last_exit, what="bus lastExit") == \
        f"cannot execute {missing}: No such file or directory"
    # Still retried by the restart policy, as a daemon that exited at once.
    s.wait_log(r"Restarting bus in \d+ ms \(attempt 2\)")


def test_plugin_program_that_is_not_a_program_names_why(suite_factory, tmp_path):
    """An executable okg-probed that is a text file without `#!` (a broken image, a copied
    script): execve() fails with ENOEXEC; the restart loop says so."""
    s = suite_factory(make_config(free_port(), plugins=[(HTTP_PROBE, 1)]))
    fake = tmp_path / "libexec" / "okg-probed"
    fake.unlink()
    fake.write_text("echo not a program\n")
    fake.chmod(0o755)
    s.start()
    s.wait_log(rf"http_probe \(PID \d+\) cannot execute {fake}: Exec format error\.")
    out = okgctl(s, "status").stdout
    assert f"cannot execute {fake}: Exec format error" in out


def test_plugin_program_not_executable_names_why_and_is_retried(suite_factory, tmp_path):
    """OKG_LIBEXECDIR's okg-probed without the x bit (a volume mounted noexec, a lost mode):
    before, `Cannot find the executable for http_probe: No such file or directory`, the plugin
    `failed` for good with no reason in `okgctl status`. Now the path and the reason show, the
    restart policy retries it, and a program put right is started."""
    s = suite_factory(make_config(free_port(), plugins=[(HTTP_PROBE, 1)]))
    prog = tmp_path / "libexec" / "okg-probed"
    real = prog.resolve()
    prog.unlink()
    prog.write_bytes(real.read_bytes())
    prog.chmod(0o644)
    s.start()
    s.wait_log(rf"http_probe \(PID \d+\) cannot execute {prog}: Permission denied\.")
    assert f"cannot execute {prog}: Permission denied" in okgctl(s, "status").stdout
    prog.chmod(0o755)
    s.wait_ready()
