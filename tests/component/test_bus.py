"""The bus API: io.kruise.game.Sidecar1 through busctl and through an sd-bus client, and
org.freedesktop.LogControl1 on every daemon."""
import os
import subprocess

from conftest import BUILD, scaled, wait_for

CLIENT = os.path.join(BUILD, "tests", "component", "okg-test-bus-client")
NAMES = ("io.kruise.game.Sidecar1", "io.kruise.game.Storage1", "io.kruise.game.HotUpdate1",
         "io.kruise.game.Probe1")


def client(suite, *args):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")   # a test tool, not the product
    return subprocess.run([CLIENT, suite.bus_address, *args], capture_output=True, text=True,
                          timeout=scaled(30), env=env)


def test_busctl_tree_shows_every_daemon(suite):
    for name in NAMES:
        out = suite.busctl("tree", "--list", name).stdout
        assert "/org/freedesktop/LogControl1" in out, name
    out = suite.busctl("tree", "--list", "io.kruise.game.Sidecar1").stdout
    for unit in ("bus", "storage", "hot_5fupdate", "http_5fprobe"):
        assert f"/io/kruise/game/Sidecar1/unit/{unit}" in out


def test_introspection_names_the_methods(suite):
    out = suite.busctl("introspect", "io.kruise.game.Sidecar1", "/io/kruise/game/Sidecar1").stdout
    for member in ("ListPlugins", "PluginStatus", "StartPlugin", "StopPlugin", "RestartPlugin",
                   "AddPlugin", "RemovePlugin", "ReloadConfig", "GetVersion", "Version"):
        assert member in out


def test_manager_properties_and_version(suite):
    assert suite.manager_prop("State") == "running"
    assert suite.manager_prop("Ready") is True
    assert suite.manager_prop("Healthy") is True
    assert suite.manager_prop("StartOrder") == "Before"
    assert suite.manager_prop("RestartPolicy") == "Always"
    version = suite.call("GetVersion")["data"][0]
    assert version == suite.manager_prop("Version")
    r = subprocess.run([os.path.join(BUILD, "okg-sidecard", "okg-sidecard"), "--version"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == f"okg-sidecard {version}"


def test_unit_properties(suite):
    units = suite.units()
    assert suite.unit_prop("hot_update", "MainPID") == units["hot_update"]["pid"] > 0
    assert suite.unit_prop("hot_update", "State") == "running"
    assert suite.unit_prop("hot_update", "Ready") is True
    assert suite.unit_prop("hot_update", "BootOrder") == 0
    assert suite.unit_prop("http_probe", "BootOrder") == 1
    assert suite.unit_prop("hot_update", "Restarts") == 0
    assert suite.unit_prop("hot_update", "LastExitCode") == -1
    assert suite.unit_prop("hot_update", "BusName") == "io.kruise.game.HotUpdate1"
    assert suite.unit_prop("storage", "Kind") == "storage"


def test_stop_and_start_a_plugin(suite):
    pid = suite.pid("http_probe")
    suite.call("StopPlugin", "s", "http_probe")
    wait_for(lambda: suite.units()["http_probe"]["state"] == "inactive", what="stopped")
    assert suite.units()["http_probe"]["pid"] == 0
    # Stopped on purpose: not restarted, not unhealthy, and not counted for readiness.
    assert suite.http("/healthz")[0] == 200
    suite.call("StartPlugin", "s", "http_probe")
    wait_for(lambda: suite.units()["http_probe"]["ready"], what="started again")
    assert suite.pid("http_probe") != pid
    assert suite.units()["http_probe"]["restarts"] == 0


def test_restart_plugin_via_sd_bus_client_sees_properties_changed(suite):
    r = client(suite, "restart-and-watch", "hot_update")
    assert r.returncode == 0, r.stderr
    old, new = int(r.stdout.split()[1]), int(r.stdout.split()[3])
    assert old != new and suite.pid("hot_update") == new


def test_sd_bus_client_list_and_status(suite):
    r = client(suite, "list")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert [row[0] for row in rows] == ["hot_update", "http_probe"]
    assert all(row[1] == "plugin" and row[2] == "running" and row[4] == "1" for row in rows)
    r = client(suite, "status", "http_probe")
    assert r.returncode == 0, r.stderr
    status = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert status["State"] == "running" and status["Ready"] == "true"
    assert int(status["MainPID"]) == suite.pid("http_probe")


def test_errors_are_named(suite):
    r = client(suite, "call-error", "StartPlugin", "no_such_plugin")
    assert r.stdout.startswith("io.kruise.game.Sidecar1.Error.NoSuchPlugin: No plugin named 'no_such_plugin'")
    r = client(suite, "call-error", "StopPlugin", "storage")
    assert r.stdout.startswith("io.kruise.game.Sidecar1.Error.NotAPlugin:")
    r = suite.call("RemovePlugin", "s", "bus", check=False)
    assert r.returncode != 0 and "infrastructure" in r.stderr


def test_add_and_remove_plugin_at_run_time(suite_factory, tmp_path):
    from conftest import HOT_UPDATE, free_port, make_config
    s = suite_factory(make_config(free_port(), [(HOT_UPDATE, 0)])).start()
    s.wait_ready()
    config = ("endpoints:\n  - url: http://127.0.0.1:9/\n    storageConfig:\n      type: InKube\n"
              "      inKube:\n        markerPolices:\n          - state: None\n"
              "            gameServerOpsState: None\nprobeIntervalSeconds: 3\n")
    out = s.call("AddPlugin", "sis", "http_probe", 7, config)
    assert out["data"][0] == "/io/kruise/game/Sidecar1/unit/http_5fprobe"
    wait_for(lambda: s.units().get("http_probe", {}).get("ready"), what="added plugin ready")
    assert s.unit_prop("http_probe", "Transient") is True
    assert s.unit_prop("http_probe", "BootOrder") == 7
    # Adding it twice, an unknown kind, or a bad config are refused with a reason.
    r = s.call("AddPlugin", "sis", "http_probe", 1, config, check=False)
    assert r.returncode != 0 and "already present" in r.stderr
    r = s.call("AddPlugin", "sis", "gpu_probe", 1, "", check=False)
    assert r.returncode != 0 and 'unknown plugin "gpu_probe"' in r.stderr
    pid = s.pid("http_probe")
    s.call("RemovePlugin", "s", "http_probe")
    wait_for(lambda: "http_probe" not in s.units(), what="removed")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="process gone")
    r = s.call("AddPlugin", "sis", "http_probe", 1, "probeIntervalSeconds: 0\n", check=False)
    assert r.returncode != 0 and "AddPlugin:" in r.stderr and "probeIntervalSeconds" in r.stderr
    assert "http_probe" not in s.units()


def test_log_control_on_every_daemon(suite):
    for name in NAMES:
        args = (name, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1")
        assert suite.busctl("get-property", *args, "LogLevel", json_out=True)["data"] == "info"
        suite.busctl("set-property", *args, "LogLevel", "s", "debug")
        assert suite.busctl("get-property", *args, "LogLevel", json_out=True)["data"] == "debug"
        r = suite.busctl("set-property", *args, "LogLevel", "s", "loud", check=False)
        assert r.returncode != 0 and "Invalid log level" in r.stderr
        suite.busctl("set-property", *args, "LogLevel", "s", "info")
        ident = suite.busctl("get-property", *args, "SyslogIdentifier", json_out=True)["data"]
        assert ident.startswith("okg-")
    # The level really changes what is logged: debug shows the unit state transitions.
    suite.busctl("set-property", "io.kruise.game.Sidecar1", "/org/freedesktop/LogControl1",
                 "org.freedesktop.LogControl1", "LogLevel", "s", "debug")
    suite.call("RestartPlugin", "s", "http_probe")
    suite.wait_log(r"http_probe: running -> stopping")
