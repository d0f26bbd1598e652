"""Config reload: a ConfigMap update (the ..data symlink swap) is picked up with inotify, only the
difference is applied, and a bad config is refused while the running one stays."""
import os
import signal
import subprocess

from conftest import HOT_UPDATE, HTTP_PROBE, SIDECARD, free_port, make_config, wait_for


class ConfigMapDir:
    """The layout kubelet gives a ConfigMap volume: config.yaml -> ..data/config.yaml and
    ..data -> ..<timestamp>; an update writes a new timestamped folder and renames a new
    ..data symlink over the old one."""

    def __init__(self, root, text):
        self.root = root
        self.root.mkdir()
        self.gen = 0
        self._write(text)
        os.symlink("..data/config.yaml", self.root / "config.yaml")

    def _write(self, text):
        self.gen += 1
        d = self.root / f"..2026_11_27_00_00_{self.gen:02d}"
        d.mkdir()
        (d / "config.yaml").write_text(text)
        tmp = self.root / "..data_tmp"
        os.symlink(d.name, tmp)
        os.rename(tmp, self.root / "..data")
        return d

    def update(self, text):
        old = os.readlink(self.root / "..data")
        self._write(text)
        for f in (self.root / old).iterdir():
            f.unlink()
        (self.root / old).rmdir()


def start(suite_factory, tmp_path, text):
    cm = ConfigMapDir(tmp_path / "configmap", text)
    s = suite_factory(None, config_dir=cm.root)
    s.health_port = int(text.split("healthPort: ")[1].split()[0])
    s.start()
    s.wait_ready()
    return s, cm


def test_configmap_swap_adds_a_plugin(suite_factory, tmp_path):
    port = free_port()
    s, cm = start(suite_factory, tmp_path, make_config(port, [(HOT_UPDATE, 0)]))
    hot_pid = s.pid("hot_update")
    cm.update(make_config(port, [(HOT_UPDATE, 0), (HTTP_PROBE, 1)]))
    wait_for(lambda: s.units().get("http_probe", {}).get("ready"), what="new plugin ready")
    assert s.pid("hot_update") == hot_pid          # unchanged plugins are left alone
    assert "Config reloaded" in s.log_text()


def test_changed_section_restarts_only_that_plugin(suite_factory, tmp_path):
    port = free_port()
    s, cm = start(suite_factory, tmp_path, make_config(port))
    hot, probe = s.pid("hot_update"), s.pid("http_probe")
    cm.update(make_config(port).replace("probeIntervalSeconds: 5", "probeIntervalSeconds: 7"))
    s.wait_log("The config of plugin http_probe changed; restarting it.")
    wait_for(lambda: s.units()["http_probe"]["ready"] and s.pid("http_probe") != probe,
             what="probe restarted")
    assert s.pid("hot_update") == hot


def test_removed_plugin_is_stopped(suite_factory, tmp_path):
    port = free_port()
    s, cm = start(suite_factory, tmp_path, make_config(port))
    probe = s.pid("http_probe")
    cm.update(make_config(port, [(HOT_UPDATE, 0)]))
    wait_for(lambda: "http_probe" not in s.units(), what="plugin removed")
    wait_for(lambda: not os.path.exists(f"/proc/{probe}"), what="its process gone")


def test_bad_config_is_refused_and_running_one_stays(suite_factory, tmp_path):
    port = free_port()
    s, cm = start(suite_factory, tmp_path, make_config(port))
    pids = {n: u["pid"] for n, u in s.units().items()}
    bad = make_config(port, [(HOT_UPDATE, 0)]).replace("signalName: SIGHUP", "signalName: SIGNOPE")
    cm.update(bad)
    s.wait_log("Config reload refused; keeping the running config.")
    log = s.log_text()
    assert "config.yaml:" in log and "signalName" in log and "SIGNOPE" in log
    # Nothing changed: both plugins still run with the same processes.
    assert {n: u["pid"] for n, u in s.units().items()} == pids
    # ReloadConfig over the bus reports the same problem as a named error.
    r = s.call("ReloadConfig", check=False)
    assert r.returncode != 0 and "signalName" in r.stderr
    # A fixed config is then applied.
    cm.update(make_config(port, [(HOT_UPDATE, 0)]))
    wait_for(lambda: "http_probe" not in s.units(), what="good config applied")


def test_refused_reload_names_every_problem_one_per_line(suite_factory, tmp_path):
    """The InvalidConfig error holds every problem, one per line, in the words and order
    `okg-sidecard --check-config` prints them."""
    port = free_port()
    s, cm = start(suite_factory, tmp_path, make_config(port))
    bad = (make_config(port, [(HOT_UPDATE, 0)])
           .replace("signalName: SIGHUP", "signalName: SIGNOPE")
           .replace(f"healthPort: {port}", f"healthPort: {port}\nrestartpolicy: Sometimes"))
    cm.update(bad)
    s.wait_log("Config reload refused; keeping the running config.")
    check = subprocess.run([SIDECARD, "--check-config", str(s.config)], capture_output=True,
                           text=True, timeout=60)
    lines = check.stderr.splitlines()
    assert check.returncode == 3 and len(lines) == 2, check.stderr
    assert any("restartpolicy" in x for x in lines) and any("SIGNOPE" in x for x in lines)
    r = s.call("ReloadConfig", check=False)
    assert r.returncode != 0 and "\n".join(lines) in r.stderr, r.stderr
    for line in lines:
        assert line in s.log_text()


def test_sighup_and_bus_reload(suite_factory, tmp_path):
    port = free_port()
    s = suite_factory(make_config(port, [(HOT_UPDATE, 0)])).start()
    s.wait_ready()
    # Unchanged file: ReloadConfig says nothing changed.
    assert s.call("ReloadConfig")["data"][0] is False
    # Written in place (no inotify-friendly rename needed): picked up too.
    s.config.write_text(make_config(port, [(HOT_UPDATE, 0), (HTTP_PROBE, 3)]))
    wait_for(lambda: "http_probe" in s.units(), what="in-place edit applied")
    s.config.write_text(make_config(port, [(HOT_UPDATE, 0)]).replace("restartpolicy: Always",
                                                                      "restartpolicy: OnFailure"))
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.manager_prop("RestartPolicy") == "OnFailure", what="SIGHUP reload")


def test_health_port_change_moves_the_server(suite_factory, tmp_path):
    port, new_port = free_port(), free_port()
    s = suite_factory(make_config(port, [(HOT_UPDATE, 0)])).start()
    s.wait_ready()
    s.config.write_text(make_config(new_port, [(HOT_UPDATE, 0)]))
    s.health_port = new_port
    wait_for(lambda: s.http("/healthz")[0] == 200, what="health on the new port")
    s.health_port = port
    assert s.http("/healthz")[0] is None


def test_health_port_taken_at_reload_keeps_the_old_server(suite_factory, tmp_path):
    """A reload to a healthPort another process holds: the old server keeps answering (the
    kubelet probes the port of the pod spec), and the log says so. Before, the log read
    `health is off` (and the docs too) while /healthz kept answering on the old port."""
    import socket
    port = free_port()
    s = suite_factory(make_config(port, [(HOT_UPDATE, 0)])).start()
    s.wait_ready()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        s.config.write_text(make_config(port, [(HOT_UPDATE, 0)]).replace(
            f"healthPort: {port}", f"healthPort: {taken}"))
        s.wait_log(rf"Cannot serve health on 127\.0\.0\.1:{taken}: Address already in use")
        s.wait_log(rf"still serving /healthz and /readyz on 127\.0\.0\.1:{port} until a config "
                   rf"with a free address")
        assert "health is off" not in s.log_text()
        assert s.http("/healthz")[0] == 200
