"""okg-sidecard against a real dbus-daemon and the suite's real daemons."""
import os
import signal
import subprocess
import time

import pytest

from conftest import (HOT_UPDATE, HTTP_PROBE, SIDECARD, free_port, libexec_dir, make_config,
                      process_alive, scaled, spawn, wait_for)


def started_order(log):
    return [line.split("Started ")[1].split(" ")[0] for line in log.splitlines()
            if "Started " in line and " (PID " in line]


def test_start_order_follows_bootorder_not_file_order(suite_factory, tmp_path):
    # http_probe comes first in the file but has the higher bootorder.
    s = suite_factory(make_config(free_port(), [(HTTP_PROBE, 5), (HOT_UPDATE, 2)])).start()
    s.wait_ready()
    assert started_order(s.log_text()) == ["bus", "storage", "hot_update", "http_probe"]
    units = s.units()
    assert [units[n]["bootorder"] for n in ("hot_update", "http_probe")] == [2, 5]
    assert all(u["ready"] and u["state"] == "running" for u in units.values())


def test_ties_in_bootorder_keep_file_order(suite_factory):
    s = suite_factory(make_config(free_port(), [(HTTP_PROBE, 1), (HOT_UPDATE, 1)])).start()
    s.wait_ready()
    assert started_order(s.log_text()) == ["bus", "storage", "http_probe", "hot_update"]


def test_next_daemon_starts_only_after_ready(suite_factory, tmp_path):
    # okg-storaged is held for a while before it runs; nothing may start before its READY=1.
    libexec = libexec_dir(tmp_path, {"okg-storaged": "sleep 1.5"})
    s = suite_factory(make_config(free_port()), libexec=libexec).start()
    s.wait_ready()
    log = s.log_text()
    ready = log.index("storage is ready")
    assert log.index("Started hot_update") > ready
    assert log.index("Started http_probe") > log.index("hot_update is ready")


def test_start_timeout_moves_on(suite_factory, tmp_path):
    # hot_update never gets to READY=1; after startTimeoutSeconds the next plugin starts.
    libexec = libexec_dir(tmp_path, {"okg-hotupdated": "exec sleep 600"})
    s = suite_factory(make_config(free_port(), extra="startTimeoutSeconds: 1\n"),
                      libexec=libexec).start()
    s.wait_log(r"hot_update did not report READY=1 within 1 s")
    s.wait_log(r"http_probe is ready")
    assert s.unit_prop("hot_update", "StartTimedOut") is True
    assert s.unit_prop("hot_update", "Ready") is False
    # Not every plugin is ready, so /readyz says no and names the laggard.
    status, body = s.http("/readyz")
    assert status == 503
    assert {u["name"]: u["ready"] for u in body["units"]}["hot_update"] is False


def test_kill_9_restarts_with_backoff_policy_always(suite):
    first = suite.pid("http_probe")
    delays = []
    for attempt in range(1, 4):
        pid = suite.pid("http_probe")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: suite.units()["http_probe"]["pid"] not in (0, pid)
                 and suite.units()["http_probe"]["ready"], what="replacement ready")
        delays.append(attempt)
    units = suite.units()
    assert units["http_probe"]["restarts"] == 3
    assert units["http_probe"]["pid"] != first
    assert not process_alive(first)
    # Consecutive failures double the delay: 100, 200, 400 ms.
    log = suite.log_text()
    assert "Restarting http_probe in 100 ms (attempt 1)" in log
    assert "Restarting http_probe in 200 ms (attempt 2)" in log
    assert "Restarting http_probe in 400 ms (attempt 3)" in log
    assert suite.unit_prop("http_probe", "LastExitStatus") == "killed by SIGKILL"
    assert suite.unit_prop("http_probe", "ConsecutiveFailures") == 3
    # The other plugin was not touched.
    assert units["hot_update"]["restarts"] == 0


def test_policy_on_failure(suite_factory):
    cfg = make_config(free_port()).replace("restartpolicy: Always", "restartpolicy: OnFailure")
    s = suite_factory(cfg).start()
    s.wait_ready()
    pid = s.pid("hot_update")
    os.kill(pid, signal.SIGKILL)                   # a failure: restarted
    wait_for(lambda: s.units()["hot_update"]["pid"] not in (0, pid), what="restart")
    pid = wait_for(lambda: s.units()["hot_update"]["ready"] and s.pid("hot_update"))
    os.kill(pid, signal.SIGTERM)                   # a clean exit (status 0): left alone
    wait_for(lambda: s.units()["hot_update"]["state"] == "inactive", what="inactive")
    time.sleep(0.5)
    u = s.units()["hot_update"]
    assert u["pid"] == 0 and u["restarts"] == 1
    assert s.unit_prop("hot_update", "LastExitStatus") == "exited with status 0"
    # OnFailure plugins do not make the sidecar unhealthy by being gone.
    assert s.http("/healthz")[0] == 200


def test_policy_never_and_per_plugin_override(suite_factory):
    probe = HTTP_PROBE.replace("    bootorder: {boot}\n", "    bootorder: {boot}\n    restartpolicy: Never\n")
    s = suite_factory(make_config(free_port(), [(probe, 1), (HOT_UPDATE, 0)])).start()
    s.wait_ready()
    assert s.unit_prop("http_probe", "RestartPolicy") == "Never"
    assert s.unit_prop("hot_update", "RestartPolicy") == "Always"
    pid = s.pid("http_probe")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.units()["http_probe"]["state"] == "failed", what="failed")
    time.sleep(0.5)
    assert s.units()["http_probe"]["pid"] == 0
    assert s.units()["http_probe"]["restarts"] == 0


def test_storage_is_always_restarted(suite_factory):
    cfg = make_config(free_port()).replace("restartpolicy: Always", "restartpolicy: Never")
    s = suite_factory(cfg).start()
    s.wait_ready()
    pid = s.pid("storage")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.units()["storage"]["pid"] not in (0, pid) and s.units()["storage"]["ready"],
             what="storage back")


def test_watchdog_kills_a_hung_daemon(suite_factory):
    """A stopped daemon is killed for its watchdog and replaced; the healthy ones are kept.
    The window over which they must be kept is measured by okg-sidecard itself, not by a test
    sleep: hot_update is hung twice, and its second kill comes at least one watchdog period
    after its replacement was started, so after every other daemon was started: one whose pings
    were not honoured would have been killed before it. The period is long enough (5 s, scaled)
    that a healthy daemon (it pings every 1/2 to 3/4 period) misses it only when its loop is
    stuck, not because the machine is loaded."""
    period = max(5, round(scaled(5)))
    s = suite_factory(make_config(free_port(), extra=f"watchdogSeconds: {period}\n")).start()
    s.wait_ready()
    others = {n: u["pid"] for n, u in s.units().items() if n != "hot_update"}
    for round_ in (1, 2):
        pid = s.pid("hot_update")
        os.kill(pid, signal.SIGSTOP)                   # hung: the loop no longer runs
        s.wait_log(r"hot_update \(PID %d\) missed its watchdog" % pid)
        wait_for(lambda: s.units()["hot_update"]["pid"] not in (0, pid)
                 and s.units()["hot_update"]["ready"], what=f"replacement {round_}")
        assert "watchdog" in s.unit_prop("hot_update", "LastExitStatus")
        assert not process_alive(pid)
    units = s.units()
    assert units["hot_update"]["restarts"] == 2
    for name, pid in others.items():
        assert units[name]["pid"] == pid and units[name]["restarts"] == 0, (name, units[name])
    assert s.log_text().count("missed its watchdog") == 2


def test_held_up_sidecard_does_not_kill_daemons_whose_pings_wait(suite_factory):
    """okg-sidecard itself held up (stopped here; a loaded node does the same) for longer than
    the watchdog period: the daemons kept pinging, their pings wait in the notify socket, and
    the expired timers must not kill them. The stop lasts at least three periods (a sleep is
    only a lower bound); afterwards two bus round trips make sure the loop went past the timers
    that expired while it was stopped (they were pending before the first call arrived)."""
    period = 2
    s = suite_factory(make_config(free_port(), extra=f"watchdogSeconds: {period}\n")).start()
    s.wait_ready()
    pids = {n: u["pid"] for n, u in s.units().items()}
    os.kill(s.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(3 * period)
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
    s.units()
    units = s.units()
    assert "missed its watchdog" not in s.log_text()
    for name, pid in pids.items():
        assert units[name]["pid"] == pid and units[name]["restarts"] == 0, (name, units[name])
    # A daemon that is hung still is killed (its own pings stopped).
    pid = s.pid("hot_update")
    os.kill(pid, signal.SIGSTOP)
    s.wait_log(r"hot_update \(PID %d\) missed its watchdog" % pid)


def test_sigterm_stops_in_reverse_order(suite):
    pids = {n: u["pid"] for n, u in suite.units().items()}
    assert suite.stop() == 0
    log = suite.log_text()
    order = [line.split("Stopping ")[1].split(" ")[0] for line in log.splitlines()
             if "Stopping " in line and "(PID" in line]
    assert order == ["http_probe", "hot_update", "storage", "bus"]
    for name, pid in pids.items():
        assert not process_alive(pid), name
    # Every daemon of ours exited by itself with status 0 (a sanitizer finding would not).
    for name in ("http_probe", "hot_update", "storage"):
        assert f"{name} (PID {pids[name]}) stopped: exited with status 0." in log
    assert not os.path.exists(suite.runtime / "notify")


def test_stop_deadline_kills_and_exit_code_4(suite_factory, tmp_path):
    # A daemon that ignores SIGTERM is killed at the deadline; the exit code says so.
    libexec = libexec_dir(tmp_path, {"okg-probed": "trap '' TERM; exec sleep 600"})
    s = suite_factory(make_config(free_port(), extra="stopTimeoutSeconds: 1\nstartTimeoutSeconds: 1\n"),
                      libexec=libexec).start()
    s.wait_log("http_probe did not report READY=1")
    assert s.stop() == 4
    assert "http_probe (PID" in s.log_text() and "did not stop in time; killing it." in s.log_text()


def test_sigint_also_stops(suite):
    assert suite.stop(signal.SIGINT) == 0


def test_dbus_daemon_restart_and_reconnect(suite):
    bus_pid = suite.pid("bus")
    os.kill(bus_pid, signal.SIGKILL)
    # The bus comes back and every daemon owns its name again.
    def names():
        r = suite.busctl("list", "--acquired", "--no-legend", check=False)
        return {line.split()[0] for line in r.stdout.splitlines()} if r.returncode == 0 else set()
    want = {"io.kruise.game.Sidecar1", "io.kruise.game.Storage1", "io.kruise.game.HotUpdate1",
            "io.kruise.game.Probe1"}
    wait_for(lambda: want <= names(), what="all names back on the bus")
    units = suite.units()
    assert units["bus"]["restarts"] == 1 and units["bus"]["pid"] != bus_pid
    # The plugins themselves were not restarted: they reconnected.
    assert units["hot_update"]["restarts"] == 0 and units["http_probe"]["restarts"] == 0
    assert suite.http("/healthz")[0] == 200


def test_healthz_fails_when_an_always_plugin_cannot_run(suite_factory, tmp_path):
    libexec = libexec_dir(tmp_path, {"okg-probed": "exit 1"})
    s = suite_factory(make_config(free_port(), extra="startTimeoutSeconds: 1\n"),
                      libexec=libexec).start()
    # It keeps failing, so the back-off grows and it is down most of the time.
    s.wait_log(r"Restarting http_probe in 1600 ms")
    status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(s.http("/healthz")),
                            what="/healthz 503")
    assert body["status"] == "unavailable"
    assert s.http("/readyz")[0] == 503
    assert s.unit_prop("http_probe", "LastExitStatus") == "exited with status 1"


def test_health_endpoints_json(suite):
    status, body = suite.http("/healthz")
    assert status == 200 and body["status"] == "ok" and body["state"] == "running"
    status, body = suite.http("/readyz")
    assert status == 200
    assert {u["name"] for u in body["units"]} == {"bus", "storage", "hot_update", "http_probe"}
    assert suite.http("/nope")[0] == 404


def test_start_order_after_waits_for_the_game(suite_factory, tmp_path):
    title = f"okg-test-game-{os.getpid()}"
    cfg = make_config(free_port()).replace("sidecarstartorder: Before", "sidecarstartorder: After")
    cfg += f"gameReady:\n  processName: {title}\n  timeoutSeconds: 60\n"
    s = suite_factory(cfg).start()
    wait_for(lambda: (s.http("/readyz")[1] or {}).get("waitingForGame"), what="waiting for the game")
    assert s.manager_prop("WaitingForGame") is True
    status, body = s.http("/readyz")
    assert status == 503 and body["waitingForGame"] is True
    assert s.http("/healthz")[0] == 200            # waiting is not a liveness failure
    units = s.units()
    assert units["hot_update"]["state"] == "waiting" and units["hot_update"]["pid"] == 0
    game = spawn(["bash", "-c", f'exec -a "{title} --port 1" sleep 600'])
    try:
        s.wait_ready()
        assert s.manager_prop("WaitingForGame") is False
        assert s.manager_prop("GameWaitTimedOut") is False
    finally:
        game.kill()
        game.wait()


def test_start_order_after_is_bounded(suite_factory):
    cfg = make_config(free_port()).replace("sidecarstartorder: Before", "sidecarStartOrder: After")
    cfg += "gameReady:\n  processName: okg-test-no-such-game\n  timeoutSeconds: 1\n"
    s = suite_factory(cfg).start()
    s.wait_ready()
    assert s.manager_prop("GameWaitTimedOut") is True
    assert "did not come up within 1 s" in s.log_text()


def test_start_order_after_by_url(suite_factory, tmp_path):
    import http.server
    import threading
    port = free_port()
    cfg = make_config(free_port()).replace("sidecarstartorder: Before", "sidecarstartorder: After")
    # Only the URL may tell that the game is up: a process title no process on the machine has
    # (an nginx of another test or of run-local.sh would otherwise open the gate at once).
    cfg = cfg.replace("nginx: master process nginx", f"okg-test-no-such-game-{port}")
    cfg += f"gameReady:\n  url: http://127.0.0.1:{port}/\n  timeoutSeconds: 60\n"
    s = suite_factory(cfg).start()
    wait_for(lambda: (s.http("/readyz")[1] or {}).get("waitingForGame"), what="waiting")
    assert s.manager_prop("WaitingForGame") is True
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        s.wait_ready()
        assert "Game answered at" in s.log_text()
    finally:
        srv.shutdown()


def test_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(make_config(5001))
    r = subprocess.run([SIDECARD, "--check-config", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and "valid" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(make_config(5001).replace("restartpolicy: Always", "restartpolicy: Sometimes"))
    r = subprocess.run([SIDECARD, "--check-config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 3
    assert f"{bad}:" in r.stderr and "restartpolicy" in r.stderr
    # The same file refuses to start, with the same message.
    r2 = subprocess.run([SIDECARD, "--config", str(bad), "--runtime-dir", str(tmp_path / "r")],
                        capture_output=True, text=True, timeout=scaled(10))
    assert r2.returncode == 3 and r.stderr.strip() in r2.stderr
    r = subprocess.run([SIDECARD, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([SIDECARD, "--check-config", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "missing.yaml" in r.stderr


def test_health_port_in_use_is_a_clear_error(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "c.yaml"
        cfg.write_text(make_config(port))
        env = dict(os.environ, OKG_LIBEXECDIR=libexec_dir(tmp_path))
        r = subprocess.run([SIDECARD, "--config", str(cfg), "--runtime-dir", str(tmp_path / "r"),
                            "--state-dir", str(tmp_path / "s")],
                           capture_output=True, text=True, timeout=scaled(10), env=env)
    assert r.returncode == 1
    assert f"Cannot serve health on 127.0.0.1:{port}" in r.stderr
    # Found before anything was started: the port is bound before dbus-daemon is spawned (the
    # HTTP server itself is set up on that socket while dbus-daemon starts).
    assert "Started bus" not in r.stderr
    assert not (tmp_path / "r" / "bus").exists()


def test_health_port_in_use_on_ipv6_is_named_in_brackets(tmp_path):
    import socket
    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "c.yaml"
        cfg.write_text(make_config(port).replace("healthAddress: 127.0.0.1", "healthAddress: \"::1\""))
        env = dict(os.environ, OKG_LIBEXECDIR=libexec_dir(tmp_path))
        r = subprocess.run([SIDECARD, "--config", str(cfg), "--runtime-dir", str(tmp_path / "r"),
                            "--state-dir", str(tmp_path / "s")],
                           capture_output=True, text=True, timeout=scaled(10), env=env)
    assert r.returncode == 1
    assert f"Cannot serve health on [::1]:{port}" in r.stderr, r.stderr


def test_runtime_dir_too_deep_names_the_path_and_the_limit(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(make_config(free_port()))
    env = dict(os.environ, OKG_LIBEXECDIR=libexec_dir(tmp_path))
    r = subprocess.run([SIDECARD, "--config", str(cfg), "--runtime-dir", str(deep),
                        "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=scaled(10), env=env)
    assert r.returncode != 0
    assert "a unix socket address holds" in r.stderr and "107" in r.stderr, r.stderr
    assert str(deep) in r.stderr
    assert "Started bus" not in r.stderr


def test_backoff_is_capped_and_resets_after_a_stable_run(suite_factory):
    # resetAfterSeconds is well above the time a replacement takes to become ready and be killed
    # again, even on a loaded machine, so only the deliberate wait below resets the back-off.
    # (5 s was not: with parallel test workers beside other jobs, a cycle took longer.)
    reset = max(20, round(scaled(20)))
    extra = f"restartBackoff:\n  initialMilliseconds: 50\n  maxSeconds: 1\n  resetAfterSeconds: {reset}\n"
    s = suite_factory(make_config(free_port(), extra=extra)).start()
    s.wait_ready()

    def kill_and_wait():
        pid = s.pid("http_probe")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: s.units()["http_probe"]["pid"] not in (0, pid)
                 and s.units()["http_probe"]["ready"], what="replacement ready")

    for _ in range(6):
        kill_and_wait()
    log = s.log_text()
    for attempt, ms in enumerate([50, 100, 200, 400, 800, 1000], start=1):
        assert f"Restarting http_probe in {ms} ms (attempt {attempt})" in log
    # A run longer than resetAfterSeconds starts the back-off over.
    time.sleep(reset + 0.5)
    kill_and_wait()
    assert s.log_text().count("Restarting http_probe in 50 ms (attempt 1)") == 2
    assert s.unit_prop("http_probe", "ConsecutiveFailures") == 1


def test_daemons_start_clean_in_their_own_session_and_die_with_sidecard(suite):
    """docs/sidecard.md "Start sequence": each daemon is okg-sidecard's child, runs in its own
    session and gets SIGTERM if okg-sidecard dies. (The daemons are started with
    clone(CLONE_VM | CLONE_VFORK) rather than fork(); this is what that must keep.)"""
    units = suite.units()
    for name, u in units.items():
        pid = u["pid"]
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[3]) == pid, f"{name}: session {fields[3]}, not its own"
        assert int(fields[1]) == suite.proc.pid, name
    pids = [u["pid"] for u in units.values()]
    suite.proc.kill()
    suite.proc.wait(scaled(10))
    wait_for(lambda: not any(process_alive(p) for p in pids),
             what="every daemon gone after okg-sidecard was killed")


def test_ipv6_health_address_is_logged_in_brackets(suite_factory):
    """healthAddress "::1": the log read `Serving /healthz and /readyz on ::1:5001`, where the
    port cannot be told from the address; now `[::1]:PORT`, as a URL writes it."""
    port = free_port()
    s = suite_factory(make_config(port, []).replace("plugins:\n", "plugins: []\n")
                      .replace("healthAddress: 127.0.0.1", 'healthAddress: "::1"')).start()
    s.wait_log(rf"Serving /healthz and /readyz on \[::1\]:{port}\.")
