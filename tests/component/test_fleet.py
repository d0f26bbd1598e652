"""okgctl fleet end to end: a real kube-apiserver, real suites as pods on their own pod IPs in a
network namespace (fleet_env.py), the hot updates delivered through the API server's pod proxy
(or --direct), outcomes read back from the pods' annotations."""
import http.server
import json
import os
import pty
import socket
import subprocess
import threading

from kube import write_kubeconfig

from conftest import SANITIZER_MARKERS, wait_for
from fleet_env import (ANNOTATION, OKGCTL, FileServer, fleet, fleet_world,  # noqa: F401
                       have_kubectl, kubectl_plugin_dir)

V2 = b"v2 of the game config\n"


def serve(fleet, version, data=None):
    return fleet.world.files.put(f"/{fleet.ns}/{version}/index.html", data or f"{version}\n".encode())


def states(out):
    return {p["pod"]: p["state"] for p in out["pods"]}


def test_whole_set_through_the_proxy_in_update_order(fleet):
    # OKG's order: updatePriority higher first, then not Allocated before Allocated.
    fleet.add_pod("game-0", ops_state="Allocated")
    fleet.add_pod("game-1")
    fleet.add_pod("game-2", priority=10, ops_state="Allocated")
    fleet.add_pod("game-3", ops_state="Maintaining")
    fleet.start()
    url, sha = serve(fleet, "v2", V2)
    mark = fleet.kube.audit.mark()

    rc, out, err = fleet.hot_update_json("v2", url, "--sha256", sha, "--max-in-flight", "2")
    assert rc == 0, err
    assert out["complete"] and out["updated"] == 4 and out["failed"] == 0
    assert [p["pod"] for p in out["pods"]] == ["game-2", "game-1", "game-3", "game-0"]
    assert set(states(out).values()) == {"Succeeded"}
    assert all(p["from"] is None and p["to"] == "v2" for p in out["pods"])
    for name, pod in fleet.pods.items():
        assert pod.file() == V2
        ann = fleet.annotation(name)
        assert ann["currentVersion"] == "v2" and ann["state"] == "Succeeded"
    # Every request went through the API server's pod proxy, one per pod.
    assert fleet.wait_proxy_posts(mark, 4, code=200) == ["game-0", "game-1", "game-2", "game-3"]
    assert fleet.proxy_posts(mark) == ["game-0", "game-1", "game-2", "game-3"]

    rc, out, err = fleet.okgctl("fleet", "status", "-n", fleet.ns, fleet.gss)
    assert rc == 0, err
    assert "4 pods: v2: 4" in out
    assert "Allocated" in out and "Maintaining" in out


def test_rerun_at_the_version_sends_nothing_and_exits_0(fleet):
    for i in range(2):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2")
    first = fleet.kube.audit.mark()
    assert fleet.hot_update("v2", url)[0] == 0
    # The first run's requests reach the audit log just after their answers: the mark goes
    # after them, or one of them would be counted as the second run's.
    fleet.wait_proxy_posts(first, 2)
    mark = fleet.kube.audit.mark()
    rc, out, err = fleet.hot_update_json("v2", url)
    assert rc == 0, err
    assert out["atVersionBefore"] == 2 and set(states(out).values()) == {"AtVersion"}
    assert all(p["from"] == "v2" and p["to"] == "v2" and p["atVersion"] for p in out["pods"])
    fleet.kube.audit.settle()
    assert fleet.proxy_posts(mark) == []


def test_failing_canary_stops_the_rollout(fleet):
    fleet.add_pod("game-0", priority=5, reload_path="/status/500")   # first in order: the canary
    for i in range(1, 4):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2", V2)
    mark = fleet.kube.audit.mark()

    rc, out, err = fleet.hot_update_json("v2", url, "--canary", "1", "--max-in-flight", "4",
                                         "--max-failures", "0")
    assert rc == 1
    assert out["stopReason"] == "a canary failed" and out["notStarted"] == 3
    st = states(out)
    assert st["game-0"] == "ReloadFailed"
    assert all(st[f"game-{i}"] == "NotStarted" for i in range(1, 4))
    # The others are untouched: no request reached them, no annotation, the old file.
    assert fleet.wait_proxy_posts(mark, 1) == ["game-0"]
    for i in range(1, 4):
        assert fleet.annotation(f"game-{i}") is None
        assert fleet.pods[f"game-{i}"].file() == b"v0 from the image\n"
    # The canary's own outcome is the truth from its annotation.
    assert fleet.annotation("game-0")["state"] == "ReloadFailed"
    assert fleet.pods["game-0"].file() == b"v0 from the image\n"


def test_max_failures_stops_starting_pods(fleet):
    fleet.add_pod("game-0", priority=9, reload_path="/status/500")
    fleet.add_pod("game-1", priority=8, reload_path="/status/503")
    for i in range(2, 5):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2")

    rc, out, err = fleet.hot_update_json("v2", url, "--max-in-flight", "1", "--max-failures", "2")
    assert rc == 1
    assert out["stopReason"] == "--max-failures reached"
    assert out["failed"] == 2 and out["notStarted"] == 3
    for i in range(2, 5):
        assert fleet.annotation(f"game-{i}") is None

    # Another kind of failure limit: the default (1) stops at the first failure.
    rc, out, err = fleet.hot_update_json("v2", url, "--max-in-flight", "1")
    assert rc == 1 and out["failed"] == 1 and out["notStarted"] == 4


def test_pods_never_started_keep_their_known_version(fleet):
    for i in range(3):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2")
    assert fleet.hot_update("v2", url)[0] == 0
    missing = url.replace("/v2/", "/v3-missing/")   # game-0 fails, the default limit stops the rest
    rc, out, err = fleet.hot_update_json("v3", missing, "--order", "name", "--max-in-flight", "1")
    assert rc == 1 and out["failed"] == 1 and out["notStarted"] == 2, out
    by_pod = {p["pod"]: p for p in out["pods"]}
    assert by_pod["game-1"]["state"] == "NotStarted" and by_pod["game-2"]["state"] == "NotStarted"
    assert all(p["from"] == "v2" for p in out["pods"]), out
    rc, out, err = fleet.hot_update("v3", missing, "--order", "name", "--max-in-flight", "1")
    rows = [line.split() for line in out.splitlines() if line.startswith("game-") and "NotStarted" in line]
    assert len(rows) == 2 and all(r[2] == "v2" for r in rows), out


def test_rerun_resumes_a_stopped_rollout(fleet):
    flaky = FileServer()           # game-2's game refuses to reload until it is fixed
    flaky.check_status = 500
    try:
        for i in range(2):
            fleet.add_pod(f"game-{i}")
        fleet.add_pod("game-2", reload_path="/check", files=flaky)
        fleet.add_pod("game-3")
        fleet.start()
        url, _ = serve(fleet, "v2", V2)

        first = fleet.kube.audit.mark()
        rc, out, err = fleet.hot_update_json("v2", url, "--order", "name")
        assert rc == 1
        st = states(out)
        assert st == {"game-0": "Succeeded", "game-1": "Succeeded", "game-2": "ReloadFailed",
                      "game-3": "NotStarted"}

        flaky.check_status = 200
        # The mark goes after the first run's requests are in the audit log (just after their
        # answers), or game-2's would be counted twice.
        fleet.wait_proxy_posts(first, 3)
        mark = fleet.kube.audit.mark()
        rc, out, err = fleet.hot_update_json("v2", url, "--order", "name")
        assert rc == 0, err
        st = states(out)
        assert st == {"game-0": "AtVersion", "game-1": "AtVersion", "game-2": "Succeeded",
                      "game-3": "Succeeded"}
        assert fleet.wait_proxy_posts(mark, 2) == ["game-2", "game-3"]
        assert all(p.file() == V2 for p in fleet.pods.values())
    finally:
        flaky.close()


class RecordsThenDies(http.server.BaseHTTPRequestHandler):
    """A fault: a sidecar that records the outcome on its pod, then dies before answering."""
    fleet = None
    pod = "game-2"

    def log_message(self, *a):
        pass

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        outcome = {"version": req["version"], "url": req["url"], "state": "Succeeded",
                   "success": True, "message": "applied", "at": "2026-12-06T00:00:00.000Z",
                   "currentVersion": req["version"]}
        f = self.fleet
        f.admin.check(f.admin.patch(f.admin.pod_path(f.ns, self.pod),
                                    {"metadata": {"annotations": {ANNOTATION: json.dumps(outcome)}}}),
                      200, what="the annotation")
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


def test_no_answer_the_annotation_decides(fleet):
    fleet.add_pod("game-0")
    fleet.add_pod("game-1", suite=False)         # nothing listens on its pod IP
    fake = fleet.add_pod("game-2", suite=False)
    fleet.start()
    RecordsThenDies.fleet = fleet
    server = http.server.ThreadingHTTPServer((fake.ip, 5000), RecordsThenDies)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url, _ = serve(fleet, "v2")
        rc, out, err = fleet.hot_update_json("v2", url, "--max-failures", "0", "--order", "name")
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 1
    pods = {p["pod"]: p for p in out["pods"]}
    assert pods["game-0"]["state"] == "Succeeded"
    assert pods["game-1"]["state"] == "Unreachable" and not pods["game-1"]["atVersion"]
    assert "no answer from the pod" in pods["game-1"]["message"]
    # No answer, but the pod recorded the version before it went away: done.
    assert pods["game-2"]["state"] == "Succeeded" and pods["game-2"]["atVersion"]
    assert "annotation says v2 is in place" in pods["game-2"]["message"]
    assert out["updated"] == 2 and out["failed"] == 1


class HeldThenRecords(RecordsThenDies):
    """A pod that keeps the request until the test releases it, then records and dies."""
    pod = "game-0"
    release = None

    def do_POST(self):
        self.release.wait(300)
        super().do_POST()


def test_progress_line_stays_live_while_a_pod_takes_long(fleet):
    # On a terminal the progress line is redrawn every second, not only when a pod finishes:
    # with one pod holding its request, the line comes again and again (it used to come once
    # from the timer, then freeze until the pod answered).
    fake = fleet.add_pod("game-0", suite=False)
    fleet.start()
    HeldThenRecords.fleet = fleet
    HeldThenRecords.release = threading.Event()
    server = http.server.ThreadingHTTPServer((fake.ip, 5000), HeldThenRecords)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url, _ = serve(fleet, "v2")
    master, slave = pty.openpty()
    err = bytearray()

    def read_tty():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            err.extend(chunk)

    env = {k: v for k, v in os.environ.items() if k != "OKG_NO_PROGRESS"}
    env["KUBECONFIG"] = fleet.kubeconfig
    proc = subprocess.Popen([OKGCTL, "fleet", "hot-update", "-n", fleet.ns, fleet.gss,
                             "--version", "v2", "--url", url], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    reader = threading.Thread(target=read_tty, daemon=True)
    reader.start()
    try:
        # One line when the pod starts, then one per second from the timer.
        wait_for(lambda: err.count(b"in flight 1") >= 4, what="the progress line redrawn")
        assert b"\r\033[Kdone 0  failed 0  in flight 1  left 0" in err
    finally:
        HeldThenRecords.release.set()
        out, _ = proc.communicate(timeout=120)
        reader.join(10)
        os.close(master)
        server.shutdown()
        server.server_close()
    text = err.decode(errors="replace")
    assert not [m for m in SANITIZER_MARKERS if m in text], text[-4000:]
    assert proc.returncode == 0, text[-2000:]
    assert b"game-0: Succeeded" in out


def test_direct_to_pod_ips(fleet):
    for i in range(3):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v3")
    mark = fleet.kube.audit.mark()
    rc, out, err = fleet.hot_update_json("v3", url, "--direct", "--max-in-flight", "100%")
    assert rc == 0, err
    assert set(states(out).values()) == {"Succeeded"}
    assert all(fleet.annotation(f"game-{i}")["currentVersion"] == "v3" for i in range(3))
    fleet.kube.audit.settle()
    assert fleet.proxy_posts(mark) == []


def test_operator_with_only_the_fleet_role_and_a_hot_update_token(fleet, tmp_path):
    token = tmp_path / "hot-update-token"
    token.write_text("s3cret-hot-update-token\n")
    for i in range(2):
        fleet.add_pod(f"game-{i}", auth_token_file=str(token))
    fleet.start()
    operator = fleet.operator()
    url, _ = serve(fleet, "v2", V2)

    # Without the token okg-hotupdated refuses (through the proxy), nothing changes. The
    # operator's kubeconfig has a tokenFile, yet the pod's 401 is not taken for the API
    # server's (which would re-read the file and send again): one request per pod.
    mark = fleet.kube.audit.mark()
    rc, out, err = fleet.hot_update_json("v2", url, "--max-failures", "0", kubeconfig=operator)
    assert rc == 1 and set(states(out).values()) == {"Unauthorized"}
    assert fleet.annotation("game-0") is None
    assert fleet.kube.audit.wait_count(2, since=mark, resource="pods", subresource="proxy") == 2
    fleet.kube.audit.settle()
    assert fleet.proxy_posts(mark) == ["game-0", "game-1"]
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n")
    rc, out, err = fleet.hot_update_json("v2", url, "--token-file", str(wrong), "--max-failures", "0",
                                         kubeconfig=operator)
    assert rc == 1 and set(states(out).values()) == {"Unauthorized"}

    # With it (sent as X-Hot-Update-Token: the API server consumes Authorization).
    rc, out, err = fleet.hot_update_json("v2", url, "--token-file", str(token), kubeconfig=operator)
    assert rc == 0, err
    assert all(p.file() == V2 for p in fleet.pods.values())
    rc, out, err = fleet.okgctl("fleet", "status", "-n", fleet.ns, fleet.gss, "--json",
                                kubeconfig=operator)
    assert rc == 0, err
    assert json.loads(out)["summary"] == "v2: 2"

    # The Role is all it has: no writes.
    client = fleet.kube.client(token=fleet.admin.token_request(fleet.ns, "okg-fleet-operator"))
    status, _ = client.patch(fleet.admin.pod_path(fleet.ns, "game-0"),
                             {"metadata": {"labels": {"x": "y"}}})
    assert status == 403


def test_bad_input_changes_nothing(fleet):
    fleet.add_pod("game-0")
    fleet.start()
    url, _ = serve(fleet, "v2")
    mark = fleet.kube.audit.mark()
    for args, what in ((["--order", "game-0,game-9"], "game-9"),
                       (["--max-in-flight", "0"], "--max-in-flight"),
                       (["--max-in-flight", "120%"], "--max-in-flight"),
                       (["--canary", "-1"], "--canary")):
        rc, out, err = fleet.hot_update("v2", url, *args)
        assert rc == 2 and what in err, (args, err)
    rc, out, err = fleet.okgctl("fleet", "hot-update", "-n", fleet.ns, "no/such", "--version", "v2",
                                "--url", url)
    assert rc == 2
    rc, out, err = fleet.hot_update("v2", url, "--context", "nope")
    assert rc == 1 and 'context "nope" is not among the contexts' in err
    # A dry run shows the plan and sends nothing either.
    rc, out, err = fleet.hot_update("v2", url, "--dry-run")
    assert rc == 0 and "game-0" in out and "update" in out
    fleet.kube.audit.settle()
    assert fleet.proxy_posts(mark) == []
    assert fleet.annotation("game-0") is None


def test_unreadable_token_file_is_a_config_error(fleet, tmp_path):
    """A one-shot client does not wait for its tokenFile (the daemons do): a missing or
    unreadable file is a configuration error, and nothing is sent as system:anonymous."""
    fleet.add_pod("game-0")
    fleet.start()
    url, _ = serve(fleet, "v2")
    (tmp_path / "a-dir").mkdir()
    for token_file in (tmp_path / "no-such-token", tmp_path / "a-dir"):
        cfg = write_kubeconfig(str(tmp_path / "bad.kubeconfig"), fleet.kube.server, fleet.kube.ca,
                               token_file=str(token_file), namespace=fleet.ns)
        mark = fleet.kube.audit.mark()
        for args in (("fleet", "status", "-n", fleet.ns, fleet.gss),
                     ("fleet", "hot-update", "-n", fleet.ns, fleet.gss, "--version", "v2",
                      "--url", url)):
            rc, out, err = fleet.okgctl(*args, kubeconfig=cfg)
            assert rc == 1 and "no usable Kubernetes configuration" in err, (args, err)
            assert str(token_file) in err and "yet" not in err, err
        fleet.kube.audit.settle()
        assert fleet.kube.audit.count(mark, user="system:anonymous") == 0
        assert fleet.kube.audit.count(mark, namespace=fleet.ns) == 0
    assert fleet.annotation("game-0") is None


def test_annotation_text_is_escaped_and_unreadable_ones_are_named(fleet):
    """Whatever a pod annotation says reaches the terminal as one escaped line per pod; one that
    is not an outcome object is shown as unreadable (with a warning), not as none."""
    for i in range(3):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2")
    hostile = {"version": "v1\x1b[2J", "state": "Succ\x1b]0;x\x07eeded", "success": True,
               "message": "line1\nline2\u2028line3\u202e", "at": "2026-12-06T00:00:00.000Z",
               "currentVersion": "v1\x1b[31m\r\nFAKE"}
    for name, value in (("game-0", json.dumps(hostile)), ("game-1", "not json {"),
                        ("game-2", json.dumps({"state": "Succeeded", "currentVersion": 7}))):
        fleet.admin.check(fleet.admin.patch(fleet.admin.pod_path(fleet.ns, name),
                                            {"metadata": {"annotations": {ANNOTATION: value}}}),
                          200, what="the annotation")
    for args in (("fleet", "status", "-n", fleet.ns, fleet.gss),
                 ("fleet", "hot-update", "-n", fleet.ns, fleet.gss, "--version", "v2", "--url", url,
                  "--dry-run")):
        rc, out, err = fleet.okgctl(*args)
        assert rc == 0, err
        for bad in ("\x1b", "\x07", "\r", "\u2028", "\u202e"):
            assert bad not in out, (bad, out)
        assert "FAKE" not in "".join(line[:3] for line in out.splitlines())
        lines = {line.split()[0 if args[1] == "status" else 1]: line
                 for line in out.splitlines() if "game-" in line}
        assert set(lines) == {"game-0", "game-1", "game-2"}, out
        assert "v1\\x1b[31m\\r\\nFAKE" in lines["game-0"], out
        assert "unreadable" in lines["game-1"] and "unreadable" in lines["game-2"], out
        assert "game-1" in err and "game-2" in err and "warning" in err, err
    rc, out, err = fleet.okgctl("fleet", "status", "-n", fleet.ns, fleet.gss)
    assert "\\u2028" in out and "line1\\nline2" in out
    summary = [line for line in out.splitlines() if line.startswith("3 pods:")]
    assert len(summary) == 1 and "unreadable: 2" in summary[0], out


def test_status_of_nothing_is_an_error(fleet):
    fleet.add_pod("game-0")
    fleet.start()
    url, _ = serve(fleet, "v2")
    for ns, gss in ((fleet.ns, "no-such-set"), ("no-such-namespace", fleet.gss)):
        want = f"no pods with label game.kruise.io/owner-gss={gss} in namespace {ns}"
        rc, out, err = fleet.okgctl("fleet", "hot-update", "-n", ns, gss, "--version", "v2",
                                    "--url", url)
        assert rc == 1 and want in err, err
        for extra in ((), ("--json",)):
            rc, out, err = fleet.okgctl("fleet", "status", "-n", ns, gss, *extra)
            assert rc == 1 and want in err and out == "", (extra, out, err)


def test_hot_update_parameters_are_checked_before_anything_is_sent(fleet):
    """okg-hotupdated's own rules, applied locally: one usage error, not one refusal per pod."""
    fleet.add_pod("game-0")
    fleet.start()
    url, _ = serve(fleet, "v2")
    mark = fleet.kube.audit.mark()
    for version, u, extra, what in (("", url, (), "invalid version"),
                                    ("v 2", url, (), "invalid version"),
                                    ("v2", "ftp://example.com/x.tar", (), "invalid url"),
                                    ("v2", "cdn.example.com/x.tar", (), "invalid url"),
                                    # User info in any form, never echoed.
                                    ("v2", url.replace("://", "://alice@"), (), "credentials"),
                                    ("v2", url.replace("://", "://alice:s3cr3t@"), (),
                                     "credentials"),
                                    ("v2", url.replace("://", "://:s3cr3t@"), (), "credentials"),
                                    ("v2", url.replace("://", "://@"), (), "credentials"),
                                    ("v2", url, ("--sha256", "abc"), "invalid sha256"),
                                    ("v2", url, ("--sha256", "g" * 64), "invalid sha256")):
        for dry in ((), ("--dry-run",)):
            rc, out, err = fleet.hot_update(version, u, *extra, *dry)
            assert rc == 2 and what in err and out == "", (version, u, extra, err)
            assert "alice" not in err and "s3cr3t" not in err, err
    fleet.kube.audit.settle()
    assert fleet.kube.audit.count(mark, namespace=fleet.ns) == 0
    assert fleet.annotation("game-0") is None


def test_canary_larger_than_the_pods_to_update_is_noted(fleet):
    for i in range(3):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2")
    rc, out, err = fleet.hot_update("v2", url, "--canary", "3", "--dry-run")
    assert rc == 0 and "note" not in err, err
    rc, out, err = fleet.hot_update("v2", url, "--canary", "5", "--dry-run")
    assert rc == 0 and "--canary 5 is more than the 3 pod(s) to update" in err, err
    rc, out, err = fleet.hot_update_json("v2", url, "--canary", "4")
    assert rc == 0 and "--canary 4 is more than the 3 pod(s) to update" in err, err
    assert out["pods"] and all(p["canary"] for p in out["pods"])


def test_kubectl_plugin(fleet, tmp_path):
    assert have_kubectl(), "kubectl is not installed (scripts/setup.sh installs kubernetes-client)"
    for i in range(2):
        fleet.add_pod(f"game-{i}")
    fleet.start()
    url, _ = serve(fleet, "v2")
    env = {"PATH": kubectl_plugin_dir(tmp_path) + os.pathsep + os.environ.get("PATH", "")}
    rc, out, err = fleet.okgctl("okg", "fleet", "hot-update", "-n", fleet.ns, fleet.gss,
                                "--version", "v2", "--url", url, "--kubeconfig", fleet.kubeconfig,
                                binary="kubectl", env=dict(env, KUBECONFIG="/nonexistent"))
    assert rc == 0, err
    rc, out, err = fleet.okgctl("okg", "fleet", "status", fleet.gss, "--kubeconfig",
                                fleet.kubeconfig, "--context", "okg-test", "--json", binary="kubectl",
                                env=dict(env, KUBECONFIG="/nonexistent"))
    assert rc == 0, err
    assert json.loads(out)["summary"] == "v2: 2"


def test_kubeconfig_list_is_merged_like_kubectl(fleet, tmp_path):
    """KUBECONFIG=a:b as kubectl reads it: each context, cluster and user from the first file
    that has one of that name, current-context from the first file that sets one, relative
    paths against the file that holds them, missing files skipped; a bad file anywhere in the
    list is an error naming it, and nothing is sent."""
    import shutil
    import yaml
    fleet.add_pod("game-0", suite=False)
    whole = yaml.safe_load(open(fleet.kubeconfig))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(fleet.kube.ca, tmp_path / "b" / "ca.crt")
    cluster = dict(whole["clusters"][0]["cluster"], **{"certificate-authority": "ca.crt"})
    a = {"kind": "Config", "current-context": "okg-test", "contexts": whole["contexts"]}
    b = {"current-context": "decoy",
         "contexts": [{"name": "okg-test", "context": {"cluster": "nowhere", "user": "nobody"}},
                      {"name": "decoy", "context": {"cluster": "nowhere", "user": "nobody"}}],
         "clusters": [{"name": "okg-test", "cluster": cluster}],
         "users": whole["users"]}
    (tmp_path / "a" / "config").write_text(yaml.safe_dump(a))
    (tmp_path / "b" / "config").write_text(yaml.safe_dump(b))
    (tmp_path / "empty").write_text("")
    merged = ":".join([str(tmp_path / "missing"), str(tmp_path / "a" / "config"),
                       str(tmp_path / "empty"), str(tmp_path / "b" / "config")])
    rc, out, err = fleet.okgctl("fleet", "status", fleet.gss, "--json", kubeconfig=merged)
    assert rc == 0, err
    assert [p["pod"] for p in json.loads(out)["pods"]] == ["game-0"]
    # b first: its current-context wins, and its cluster "nowhere" is defined in no file.
    swapped = f"{tmp_path / 'b' / 'config'}:{tmp_path / 'a' / 'config'}"
    rc, out, err = fleet.okgctl("fleet", "status", fleet.gss, kubeconfig=swapped)
    assert rc == 1 and 'the cluster of context "decoy" is not defined in' in err, err

    (tmp_path / "bad").write_text("clusters: [\n")
    (tmp_path / "list").write_text("- not a mapping\n")
    (tmp_path / "a-dir").mkdir()
    mark = fleet.kube.audit.mark()
    for bad in ("bad", "list", "a-dir"):
        rc, out, err = fleet.okgctl("fleet", "status", fleet.gss,
                                    kubeconfig=f"{merged}:{tmp_path / bad}")
        assert rc == 1 and "no usable Kubernetes configuration" in err, (bad, err)
        assert str(tmp_path / bad) in err, (bad, err)
    rc, out, err = fleet.okgctl("fleet", "status", fleet.gss,
                                kubeconfig=f"{tmp_path / 'missing'}:{tmp_path / 'gone'}")
    assert rc == 1 and "none of the files exists" in err, err
    fleet.kube.audit.settle()
    assert fleet.kube.audit.count(mark, namespace=fleet.ns) == 0


def test_pod_without_an_ip_is_named_and_sent_nothing(fleet):
    """A pod of the set with no status.podIP yet (Pending): through the proxy as with --direct,
    it is not sent anything and the message says why, instead of the API server's "address
    not allowed"."""
    fleet.add_pod("game-0")
    fleet.start()
    labels = {"game.kruise.io/owner-gss": fleet.gss}
    fleet.admin.create_pod(fleet.ns, "game-1", labels=labels)
    fleet.admin.create_gameserver(fleet.ns, "game-1", ops_state="None", labels=labels)
    url, _ = serve(fleet, "v2")
    for extra in ((), ("--direct",)):
        mark = fleet.kube.audit.mark()
        rc, out, err = fleet.hot_update_json("v2", url, "--order", "name", *extra)
        assert rc == 1, err
        pods = {p["pod"]: p for p in out["pods"]}
        assert pods["game-1"]["state"] == "Unreachable", out
        assert "has no IP yet" in pods["game-1"]["message"], out
        assert "address not allowed" not in pods["game-1"]["message"], out
        assert pods["game-0"]["atVersion"], out
        fleet.kube.audit.settle()
        assert "game-1" not in fleet.proxy_posts(mark)


def test_messages_are_okgctl_fleet_not_a_daemon_log(fleet, tmp_path):
    """What the Kubernetes client says reads "okgctl fleet: message", never "okg[PID]: ...";
    its notes show only when SYSTEMD_LOG_LEVEL asks for them."""
    import re
    fleet.add_pod("game-0", suite=False)
    cfg = fleet.operator()
    rc, out, err = fleet.okgctl("fleet", "status", fleet.gss, kubeconfig=cfg)
    assert rc == 0, err
    assert err == "", err
    rc, out, err = fleet.okgctl("fleet", "status", fleet.gss, kubeconfig=cfg,
                                env={"SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_LOG_TARGET": "kmsg"})
    assert rc == 0, err
    assert "okgctl fleet: Using the token in" in err, err
    for line in err.splitlines():
        assert line.startswith("okgctl fleet: "), err
        assert not re.match(r"^(<\d>)?[\w-]+\[\d+\]:", line), err
