"""okgctl against a running suite: human output and --json."""
import json
import os
import subprocess

from conftest import BUILD, HTTP_PROBE, make_config, free_port, scaled, wait_for
from hotupdate_helpers import backend, hot  # noqa: F401  (fixtures)

OKGCTL = os.path.join(BUILD, "okgctl", "okgctl")


def okgctl(suite, *args):
    return subprocess.run([OKGCTL, "--address", str(suite.runtime), *args], capture_output=True,
                          text=True, timeout=scaled(30))


def test_status_human_and_json(suite):
    r = okgctl(suite, "status")
    assert r.returncode == 0, r.stderr
    assert "running, ready, healthy" in r.stdout
    for name in ("bus", "storage", "hot_update", "http_probe"):
        assert any(line.split()[0] == name for line in r.stdout.splitlines()[3:]), name
    r = okgctl(suite, "--json", "status")
    st = json.loads(r.stdout)
    assert st["ready"] is True and st["state"] == "running"
    assert {u["name"]: u["pid"] for u in st["units"]} == {n: u["pid"] for n, u in suite.units().items()}


def test_plugins_restart_and_errors(suite):
    before = suite.pid("hot_update")
    r = okgctl(suite, "restart", "hot_update")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: suite.units()["hot_update"]["pid"] not in (0, before)
             and suite.units()["hot_update"]["ready"], what="restarted")
    plugins = json.loads(okgctl(suite, "--json", "plugins").stdout)
    assert [p["name"] for p in plugins] == ["hot_update", "http_probe"]
    r = okgctl(suite, "stop", "nope")
    assert r.returncode == 1 and "No plugin named 'nope'" in r.stderr
    r = okgctl(suite, "stop")
    assert r.returncode == 2 and "takes 1 argument, got 0" in r.stderr
    r = okgctl(suite, "frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = subprocess.run([OKGCTL, "--address", "/nonexistent", "status"], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot connect" in r.stderr


def test_storage_reload_and_log_level(suite):
    st = json.loads(okgctl(suite, "--json", "storage").stdout)
    assert st["Backend"] == "local" and st["Pending"] == 0
    assert okgctl(suite, "reload").stdout.strip() == "config unchanged"
    assert okgctl(suite, "log-level", "probed", "debug").returncode == 0
    levels = dict(line.split() for line in okgctl(suite, "log-level").stdout.splitlines())
    assert levels["io.kruise.game.Probe1"] == "debug"
    assert levels["io.kruise.game.Storage1"] == "info"
    r = okgctl(suite, "log-level", "storaged", "loud")
    assert r.returncode == 1 and "Invalid log level" in r.stderr


def test_hot_update_and_probes(hot):
    """okgctl hot-update runs a real update of nginx; okgctl probes lists the endpoints."""
    s = hot.start()
    url, _ = hot.files.put("/game/v3/index.html", "v3 via okgctl\n")
    r = okgctl(s, "hot-update", "v3", url)
    assert r.returncode == 0 and r.stdout.startswith("Succeeded:"), r.stdout + r.stderr
    assert hot.nginx.body("/index.html") == b"v3 via okgctl\n"
    st = json.loads(okgctl(s, "--json", "hot-update").stdout)
    assert st["version"] == "v3"
    r = okgctl(s, "hot-update", "v4", "ftp://example.invalid/x")
    assert r.returncode == 1 and "Invalid" in (r.stdout + r.stderr)
    assert hot.nginx.body("/index.html") == b"v3 via okgctl\n"


def test_probes_listing(suite):
    r = okgctl(suite, "--json", "probes")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [e["url"] for e in out["endpoints"]] == ["http://localhost:8080"]
    r = okgctl(suite, "probes")
    assert r.returncode == 0 and "http://localhost:8080" in r.stdout


def test_probes_table_cuts_a_long_url_and_keeps_its_columns(suite_factory):
    """One endpoint, one line, columns aligned: a URL longer than its column is cut with "..."
    (--json has it whole) and a result like connect-error fits its column."""
    long_url = "http://127.0.0.1:9/" + "a-very-long-path-segment/" * 4 + "state"
    cfg = make_config(free_port(), plugins=[(HTTP_PROBE.replace("http://localhost:8080", long_url)
                                             .replace("startDelaySeconds: 10", "startDelaySeconds: 0")
                                             .replace("probeIntervalSeconds: 5",
                                                      "probeIntervalSeconds: 1"), 1)])
    s = suite_factory(cfg).start()
    s.wait_ready()
    wait_for(lambda: json.loads(okgctl(s, "--json", "probes").stdout)["endpoints"][0]["lastResult"]
             != "", what="a first probe result")
    out = json.loads(okgctl(s, "--json", "probes").stdout)
    assert out["endpoints"][0]["url"] == long_url
    result = out["endpoints"][0]["lastResult"]
    r = okgctl(s, "probes")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[2], r.stdout.splitlines()[3]
    assert long_url not in r.stdout
    assert row[4:44] == long_url[:37] + "..."
    for column in ("STATE", "RESULT", "FAILING"):
        assert header.index(column) > 0
    # Every column starts where its heading does.
    assert row[header.index("RESULT"):].split()[0] == result
    assert row[header.index("FAILING"):].split()[0] in ("yes", "no")


def test_relative_address(suite):
    """README runs `okgctl -a build-run/demo/run status`: a relative runtime directory or socket
    path must work like the absolute one (it used to be handed to sd-bus as an address and
    fail with "Connection refused")."""
    parent = os.path.dirname(str(suite.runtime))
    name = os.path.basename(str(suite.runtime))
    for addr in (name, "./" + name, os.path.join(name, "bus")):
        r = subprocess.run([OKGCTL, "--address", addr, "status"], capture_output=True, text=True,
                           cwd=parent, timeout=scaled(30))
        assert r.returncode == 0, (addr, r.stderr)
        assert "running, ready, healthy" in r.stdout, addr


def test_address_paths_of_every_kind(suite, tmp_path):
    """Anything that is not a D-Bus address is a path: through $OKG_BUS_ADDRESS too, a runtime
    directory whose name needs escaping in an address (space, comma), and a relative socket path
    with "..". A path that does not exist is named and nothing connects."""
    odd = tmp_path / "a b,c;d"
    odd.symlink_to(suite.runtime, target_is_directory=True)
    env = {**os.environ, "OKG_BUS_ADDRESS": os.path.basename(str(suite.runtime))}
    cases = [(["status"], os.path.dirname(str(suite.runtime)), env),
             (["--address", odd.name, "status"], str(tmp_path), None),
             (["--address", str(odd / "bus"), "status"], "/", None),
             # From inside the runtime directory: cwd + the relative path must fit in a socket
             # address (108 bytes) however deep pytest's tmp_path is (xdist adds popen-gwN/).
             (["--address", os.path.join("..", "run", "bus"), "status"],
              str(suite.runtime), None)]
    for args, cwd, e in cases:
        r = subprocess.run([OKGCTL, *args], capture_output=True, text=True, cwd=cwd, env=e,
                           timeout=scaled(30))
        assert r.returncode == 0, (args, r.stderr)
        assert "running, ready, healthy" in r.stdout, args
    r = subprocess.run([OKGCTL, "--address", "no-such-run", "status"], capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=scaled(30))
    assert r.returncode == 1 and r.stdout == ""
    assert "no-such-run: No such file or directory" in r.stderr, r.stderr


def test_messages_are_a_commands_not_a_daemons(suite):
    """Every subcommand's messages on stderr read "okgctl: ..." (or continue such a line), never
    the daemons' "okg[PID]: ..." or "<N>" prefixes, whatever SYSTEMD_LOG_TARGET says."""
    import re
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_LOG_TARGET": "kmsg"}
    cases = [["status"], ["plugins"], ["probes"], ["storage"], ["log-level"],
             ["service-quality"], ["hot-update"], ["stop", "nope"], ["frobnicate"], ["reload"]]
    for args in cases:
        r = subprocess.run([OKGCTL, "--address", str(suite.runtime), *args], capture_output=True,
                           text=True, timeout=scaled(30), env=env)
        assert "okgctl: Exiting with status" in r.stderr, (args, r.stderr)
        for line in r.stderr.splitlines():
            assert not re.match(r"^(<\d>)?[\w-]+\[\d+\]:", line), (args, r.stderr)
            assert line.startswith(("okgctl: ", "(")), (args, r.stderr)
    r = subprocess.run([OKGCTL, "--address", "/nonexistent", "status"], capture_output=True,
                       text=True, timeout=scaled(30), env=env)
    assert r.returncode == 1 and "okgctl: cannot connect" in r.stderr, r.stderr
    assert not re.search(r"^(<\d>)?[\w-]+\[\d+\]:", r.stderr, re.M), r.stderr


def test_messages_name_the_command_as_typed(suite, tmp_path):
    """Run as the kubectl plugin (kubectl-okg, what `kubectl okg` executes) every message names
    `kubectl okg`, as okgctl's name okgctl: the prefixes, getopt's complaints and the hints."""
    from fleet_env import have_kubectl, kubectl_plugin_dir
    plugin = os.path.join(kubectl_plugin_dir(tmp_path), "kubectl-okg")
    cases = [(["fleet", "frobnicate"], "{} fleet: unknown command 'frobnicate' (hot-update, "
              "status) (see {} fleet --help)\n"),
             (["fleet", "status", "--bogus"], "{} fleet: unrecognized option '--bogus'\n"),
             (["--bogus"], "{}: unrecognized option '--bogus'\n"),
             (["frobnicate"], "{}: unknown command 'frobnicate' (see {} --help)\n"),
             (["stop"], "{}: 'stop' takes 1 argument, got 0 (see {} --help)\n")]
    for binary, name in ((OKGCTL, "okgctl"), (plugin, "kubectl okg")):
        for args, want in cases:
            r = subprocess.run([binary, "--address", str(suite.runtime), *args],
                               capture_output=True, text=True, timeout=scaled(30))
            assert r.returncode == 2, (binary, args, r.stderr)
            assert r.stderr == want.format(name, name), (binary, args, r.stderr)
        r = subprocess.run([binary, "--address", "/nonexistent", "status"], capture_output=True,
                           text=True, timeout=scaled(30))
        assert r.returncode == 1 and r.stderr.startswith(f"{name}: cannot connect"), r.stderr
        r = subprocess.run([binary, "--address", str(suite.runtime), "stop", "nope"],
                           capture_output=True, text=True, timeout=scaled(30))
        assert r.returncode == 1 and r.stderr.startswith(f"{name}: nope: "), r.stderr
    # Through kubectl itself: it runs the plugin by its path.
    assert have_kubectl(), "kubectl is not installed (scripts/setup.sh installs kubernetes-client)"
    env = {**os.environ, "PATH": os.path.dirname(plugin) + os.pathsep + os.environ["PATH"]}
    r = subprocess.run(["kubectl", "okg", "fleet", "frobnicate"], capture_output=True, text=True,
                       env=env, timeout=scaled(30))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("kubectl okg fleet: unknown command 'frobnicate'"), r.stderr


def test_relative_address_from_a_deep_directory(suite, tmp_path):
    """A relative --address is connected to as it is, from the current directory: a cwd so deep
    that cwd + path passes the 108 bytes of a socket address does not matter when the relative
    path fits. A path that does not fit itself (relative or absolute) is refused with its
    length and the limit, naming it; nothing connects."""
    deep = tmp_path
    while len(str(deep)) < 150:
        deep = deep / ("d" * 20)
    deep.mkdir(parents=True)
    (deep / "r").symlink_to(suite.runtime, target_is_directory=True)
    for addr in ("r", "./r/", "r/bus"):
        r = subprocess.run([OKGCTL, "--address", addr, "status"], capture_output=True, text=True,
                           cwd=str(deep), timeout=scaled(30))
        assert r.returncode == 0, (addr, r.stderr)
        assert "running, ready, healthy" in r.stdout, addr
    env = {**os.environ, "OKG_BUS_ADDRESS": "r"}
    r = subprocess.run([OKGCTL, "status"], capture_output=True, text=True, cwd=str(deep),
                       env=env, timeout=scaled(30))
    assert r.returncode == 0 and "running, ready, healthy" in r.stdout, r.stderr
    long_rel = "./" * 60 + "r/bus"
    for addr, cwd in ((str(deep / "r"), "/"), (str(deep / "r" / "bus"), "/"),
                      (long_rel, str(deep))):
        sock = addr if addr.endswith("bus") else addr + "/bus"
        r = subprocess.run([OKGCTL, "--address", addr, "status"], capture_output=True,
                           text=True, cwd=cwd, timeout=scaled(30))
        assert r.returncode == 1 and r.stdout == "", (addr, r.stdout)
        assert r.stderr.startswith(
            f"okgctl: cannot connect to the suite's bus at {addr}: the socket path {sock} is "
            f"{len(sock)} bytes, more than the 107 a unix socket address holds\n"), r.stderr
    # A D-Bus address whose socket path does not fit says so (not "Argument list too long").
    addr = f"unix:path={deep / 'r' / 'bus'}"
    r = subprocess.run([OKGCTL, "--address", addr, "status"], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert r.stderr.startswith(f"okgctl: cannot connect to the suite's bus at {addr}: its socket "
                               "path is more than the 107 bytes a unix socket address holds\n"), \
        r.stderr


def test_empty_address_is_a_usage_error(tmp_path):
    """`okgctl -a "$RUNTIME_DIR" status` with the variable unset: before, the empty address
    silently meant the default bus /run/okg-sidecar/bus, so a script could drive another suite
    than the one it named. Now it is refused (also as the kubectl plugin), nothing is asked."""
    plugin = tmp_path / "kubectl-okg"
    plugin.symlink_to(OKGCTL)
    for binary, prog in ((OKGCTL, "okgctl"), (str(plugin), "kubectl okg")):
        for args in (["-a", "", "status"], ["--address=", "restart", "http_probe"]):
            r = subprocess.run([binary, *args], capture_output=True, text=True,
                               timeout=scaled(30),
                               env=dict(os.environ, OKG_BUS_ADDRESS=str(tmp_path / "nowhere")))
            assert r.returncode == 2, (binary, args, r.stderr)
            assert r.stderr.startswith(f"{prog}: --address: the address is empty"), r.stderr
