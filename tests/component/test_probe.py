"""okg-probed in the suite: a real nginx game whose state file the test rewrites, a Python stub
for JSON, error codes, delays and hangs, okg-storaged writing the GameServer (its local store,
or a fake API server that counts requests), and io.kruise.game.Probe1 read with busctl."""
import json
import os
import re
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import BUILD, free_port, scaled, wait_for
from fake_kube import FakeKube
from probe_helpers import (NAMESPACE, POD, Answer, LocalStoreView, endpoint, ep_prop, in_kube,
                           mgr_prop, nginx_game, probe_call, probe_config, start_suite,
                           storage_prop, stub, wait_ep, wait_probes)

assert nginx_game and stub   # fixtures, used by name

GS_PATH = f"/apis/game.kruise.io/v1alpha1/namespaces/{NAMESPACE}/gameservers/{POD}"
POD_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}"


class FakeKubeView:
    """The same questions as LocalStoreView, answered from the merge patches a fake API server
    received; writes() counts the requests exactly."""

    def __init__(self, fake):
        self.fake = fake

    def _merged(self, path):
        doc = {}

        def merge(a, b):
            for k, v in b.items():
                if isinstance(v, dict) and isinstance(a.get(k), dict):
                    merge(a[k], v)
                elif v is None:
                    a.pop(k, None)
                else:
                    a[k] = v
        for w in self.fake.writes():
            if w[1] == "PATCH" and w[2].split("?")[0] == path:
                merge(doc, json.loads(w[4]))
        return doc

    def ops_state(self):
        return self._merged(GS_PATH).get("spec", {}).get("opsState")

    def pod_annotations(self):
        return self._merged(POD_PATH).get("metadata", {}).get("annotations", {})

    def gs_labels(self):
        return self._merged(GS_PATH).get("metadata", {}).get("labels", {})

    def version(self):
        return len(self.fake.writes())


@pytest.fixture(params=["local", "fake-kube"])
def backend(request, tmp_path):
    """(extra env for the suite, a function suite -> store view). A view answers ops_state(),
    pod_annotations() and version() (changes with every write). A real API server variant is
    one more param: the env that points okg-storaged at it and a view reading the objects
    (version: their resourceVersion)."""
    if request.param == "local":
        yield {}, LocalStoreView
        return
    fake = FakeKube(tmp_path)
    tok = tmp_path / "token"
    tok.write_text("t-1\n")
    yield {"KUBECONFIG": fake.kubeconfig(str(tok), namespace=NAMESPACE)}, \
        lambda suite: FakeKubeView(fake)
    fake.close()


def snapshot(suite, index):
    """Probes and ConsecutiveSuccesses read in one GetAll, so they belong together."""
    out = suite.busctl("call", "io.kruise.game.Probe1", f"/io/kruise/game/Probe1/endpoint/{index}",
                       "org.freedesktop.DBus.Properties", "GetAll", "s",
                       "io.kruise.game.Probe1.Endpoint", json_out=True)
    return {k: v["data"] for k, v in out["data"][0].items()}


def test_proposal_states_drive_the_gameserver(suite_factory, nginx_game, backend):
    """None -> WaitToBeDeleted -> Allocated -> None on a real nginx: the GameServer follows,
    each change is applied by the first probe that sees it, and each costs one write."""
    env, view = backend
    text = probe_config(free_port(), [endpoint(
        nginx_game.url, "method: GET\nexpectedStatusCode: 200\ntimeout: 2",
        in_kube("None", "WaitToBeDeleted", "Allocated",
                annotation_key="game.example.com/probed-state"))])
    s = start_suite(suite_factory, text, env)
    store = view(s)

    wait_for(lambda: store.ops_state() == "None", what="opsState None")
    wait_for(lambda: store.pod_annotations().get("game.example.com/probed-state") == "None",
             what="pod annotation None")
    assert mgr_prop(s, "OpsState") == "None"
    writes = mgr_prop(s, "StorageWrites")
    assert writes == 2   # the GameServer and the pod annotation

    for state in ("WaitToBeDeleted", "Allocated", "None"):
        nginx_game.set_state(state + "\n")
        seen = ep_prop(s, 0, "Probes")
        wait_for(lambda: store.ops_state() == state, what=f"opsState {state}")
        snap = snapshot(s, 0)
        assert snap["State"] == state
        # The probe that started the current streak of this state is at most the second after
        # the file changed (the first may have been in flight with the old content).
        first_with_new_state = snap["Probes"] - snap["ConsecutiveSuccesses"] + 1
        assert first_with_new_state <= seen + 2, (snap, seen)
        wait_for(lambda: store.pod_annotations()["game.example.com/probed-state"] == state,
                 what=f"pod annotation {state}")
        writes += 2
        wait_for(lambda: mgr_prop(s, "StorageWrites") == writes, what="two writes per change")
    assert ep_prop(s, 0, "StateChanges") == 4
    assert mgr_prop(s, "StorageErrors") == 0
    # kubelet-style identification towards the game (nginx logs a request after its answer:
    # the last probe's line may come after its result)
    def probes():
        return [line for line in nginx_game.requests() if "Python-urllib" not in line]
    wait_for(lambda: len(probes()) >= 4, what="four probes in the access log")
    version = mgr_prop(s, "Version")
    assert all(f'"okg-probed/{version}"' in line for line in probes())


def test_steady_state_writes_nothing(suite_factory, nginx_game, backend):
    env, view = backend
    nginx_game.set_state("Allocated")
    text = probe_config(free_port(), [endpoint(
        nginx_game.url, "", in_kube("None", "Allocated", annotation_key="example.com/s",
                                    label_key="example.com/s"))])
    s = start_suite(suite_factory, text, env)
    store = view(s)
    wait_for(lambda: store.ops_state() == "Allocated", what="opsState Allocated")
    # The pod is a second write (a second call after the GameServer's): wait for it too, so
    # that "idle" below is not read before okg-storaged was handed it.
    wait_for(lambda: store.pod_annotations().get("example.com/s") == "Allocated",
             what="pod annotation Allocated")
    wait_for(lambda: storage_prop(s, "Pending") == 0, what="storage idle")
    before = (store.version(), mgr_prop(s, "StorageWrites"), storage_prop(s, "RequestsSent"),
              storage_prop(s, "WritesAcknowledged"))
    probes = ep_prop(s, 0, "Probes")
    wait_probes(s, 0, probes + 5)
    after = (store.version(), mgr_prop(s, "StorageWrites"), storage_prop(s, "RequestsSent"),
             storage_prop(s, "WritesAcknowledged"))
    assert after == before
    assert before[1] == 2
    assert ep_prop(s, 0, "StateChanges") == 1


def test_json_body_with_json_path(suite_factory, stub):
    stub.set("/state", Answer('{"status": {"state": "Allocated", "players": 7}}',
                              content_type="application/json"))
    text = probe_config(free_port(), [endpoint(
        stub.url("/state"), "jsonPath: status.state\nfailureThreshold: 2\nfailureState: Broken",
        in_kube("Allocated", "Broken"))])
    s = start_suite(suite_factory, text)
    store = LocalStoreView(s)
    wait_for(lambda: store.ops_state() == "Allocated", what="opsState from the JSON field")
    assert ep_prop(s, 0, "LastState") == "Allocated"

    stub.set("/state", Answer('{"status": {"players": 7}}'))
    wait_ep(s, 0, "LastResult", "bad-body")
    assert ep_prop(s, 0, "LastError") == 'no field "status.state" in the JSON body'
    wait_for(lambda: store.ops_state() == "Broken", what="failure state after 2 failures")
    assert ep_prop(s, 0, "Failing") is True

    stub.set("/state", Answer("Allocated"))
    wait_for(lambda: ep_prop(s, 0, "LastError").startswith("the body is not JSON"),
             what="plain text is not JSON")
    stub.set("/state", Answer('{"status": {"state": "Allocated"}}'))
    wait_for(lambda: store.ops_state() == "Allocated", what="recovered")
    assert ep_prop(s, 0, "Failing") is False


def test_body_is_read_up_to_10_kib(suite_factory, stub):
    stub.set("/padded", Answer("Allocated" + " " * 20000 + "ignored"))
    stub.set("/long", Answer("x" * 20000))
    stub.set("/long-json", Answer('{"state": "Allocated", "pad": "' + "x" * 20000 + '"}'))
    text = probe_config(free_port(), [
        endpoint(stub.url("/padded")),
        endpoint(stub.url("/long")),
        endpoint(stub.url("/long-json"), "jsonPath: state"),
    ])
    s = start_suite(suite_factory, text)
    # Cut at 10 KiB like kubelet: what is past the cap is not read.
    wait_ep(s, 0, "State", "Allocated")
    wait_ep(s, 1, "LastResult", "success")
    assert ep_prop(s, 1, "LastState") == "x" * 10240
    wait_ep(s, 2, "LastResult", "bad-body")
    assert ep_prop(s, 2, "LastError").startswith("the body is not JSON: unexpected end of data")


def test_timeouts_are_honoured_per_endpoint(suite_factory, stub):
    """Two endpoints on the same URL, whose answer the test holds back: the 1 s one times out
    (again and again) while the one with the longest timeout is still waiting for its first
    answer, and gets it once the test lets the stub answer. Order, not time, shows each is cut
    at its own timeout; the only duration checked is the lower bound (a probe is not cut before
    its timeout), which load can only make longer."""
    gate = threading.Event()
    stub.set("/slow", Answer("Allocated", gate=gate))
    text = probe_config(free_port(), [
        endpoint(stub.url("/slow"), "timeout: 1"),
        endpoint(stub.url("/slow"), "timeout: 3600"),
    ], interval=1)
    s = start_suite(suite_factory, text)
    try:
        wait_for(lambda: ep_prop(s, 1, "Probing") is True, what="endpoint 1 waiting")
        n0 = ep_prop(s, 0, "Probes")
        # Two probes of endpoint 0 start and end while endpoint 1 waits: the second one
        # started after endpoint 1's probe, so endpoint 1 outlived a whole 1 s timeout.
        wait_probes(s, 0, max(n0 + 1, 2))
        assert ep_prop(s, 0, "LastResult") == "timeout"
        assert ep_prop(s, 0, "LastError") == "no answer within 1s"
        assert ep_prop(s, 0, "LastDurationUSec") >= 900000
        assert ep_prop(s, 0, "State") == ""
        assert ep_prop(s, 1, "Probing") is True and ep_prop(s, 1, "Probes") == 0
        # A lasting problem is logged once, not once per probe.
        assert s.log_text().count(f"Probe of {stub.url('/slow')} failed (timeout)") == 1
    finally:
        gate.set()
    wait_ep(s, 1, "LastResult", "success")
    assert ep_prop(s, 1, "State") == "Allocated"


def test_hanging_endpoint_does_not_delay_a_healthy_one(suite_factory, stub):
    """The healthy endpoint probes on while the hanging one's first probe is in flight (order:
    its probes are counted before the hang ends, and the hang's timeout is the largest). Its
    pace is checked only from below, on the daemon's own count against a window the test
    measures around it: a window measured too long (a loaded machine) only loosens the bound."""
    stub.set("/hang", Answer(hang=True))
    stub.set("/ok", Answer("None"))
    text = probe_config(free_port(), [
        endpoint(stub.url("/hang"), "timeout: 3600"),
        endpoint(stub.url("/ok"), "timeout: 1", in_kube("None")),
    ], interval=1)
    s = start_suite(suite_factory, text)
    wait_for(lambda: stub.count("/hang") >= 1, what="the hanging request arrived")
    begin = time.monotonic()
    n_begin = ep_prop(s, 1, "Probes")
    n_end = wait_probes(s, 1, n_begin + 4)
    end = time.monotonic()
    # All the while the first probe of the hanging endpoint is still in flight.
    assert ep_prop(s, 0, "Probing") is True
    assert ep_prop(s, 0, "Probes") == 0
    assert stub.count("/hang") == 1
    assert ep_prop(s, 1, "State") == "None"
    wait_for(lambda: LocalStoreView(s).ops_state() == "None", what="opsState None")
    # Not faster than the interval: probes start at least 0.95 interval apart (jitter) and
    # never overlap, so of the probes that ended between the two reads all but the first two
    # started inside the window.
    assert n_end - n_begin <= (end - begin) / 0.95 + 2, (n_begin, n_end, end - begin)


def test_thresholds_with_probe_now(suite_factory, stub):
    """Probes driven one by one with ProbeNow (the automatic ones are an hour away)."""
    stub.set("/s", Answer("A"))
    text = probe_config(free_port(), [endpoint(
        stub.url("/s"), "successThreshold: 2\nfailureThreshold: 2\nfailureState: Down",
        in_kube("A", "B", "Down"))], interval=3600, start_delay=3600)
    s = start_suite(suite_factory, text)
    store = LocalStoreView(s)
    n = 0

    def probe(answer):
        nonlocal n
        if answer is not None:
            stub.set("/s", answer)
        out = s.busctl("call", "io.kruise.game.Probe1", "/io/kruise/game/Probe1/endpoint/0",
                       "io.kruise.game.Probe1.Endpoint", "ProbeNow", json_out=True)
        assert out["data"] == [True]
        n += 1
        wait_for(lambda: ep_prop(s, 0, "Probes") == n, what=f"probe {n}")
        return ep_prop(s, 0, "State")

    assert ep_prop(s, 0, "Probes") == 0
    assert probe(None) == ""              # 1 of 2
    assert probe(None) == "A"
    wait_for(lambda: store.ops_state() == "A", what="opsState A")
    assert probe(Answer("B")) == "A"      # a new state needs its own 2
    assert probe(Answer("A")) == "A"      # the flap ends B's streak
    assert probe(Answer("B")) == "A"
    assert probe(None) == "B"
    assert probe(Answer("", status=503)) == "B"
    assert ep_prop(s, 0, "Failing") is False
    assert ep_prop(s, 0, "LastError") == "HTTP status 503, expected 200-399"
    assert ep_prop(s, 0, "LastResult") == "bad-status"
    assert ep_prop(s, 0, "LastStatusCode") == 503
    assert probe(None) == "Down"
    assert ep_prop(s, 0, "Failing") is True
    assert ep_prop(s, 0, "ConsecutiveFailures") == 2
    wait_for(lambda: store.ops_state() == "Down", what="opsState Down")
    assert probe(Answer("B")) == "Down"   # recovery also needs 2
    assert probe(None) == "B"
    assert ep_prop(s, 0, "Failing") is False
    wait_for(lambda: store.ops_state() == "B", what="opsState B")
    assert ep_prop(s, 0, "Failures") == 2
    assert ep_prop(s, 0, "StateChanges") == 4
    # ProbeNow on the manager probes every endpoint
    assert probe_call(s, "ProbeNow")["data"] == [1]
    wait_for(lambda: ep_prop(s, 0, "Probes") == n + 1, what="manager ProbeNow")


def test_request_shape_and_expected_status(suite_factory, stub):
    stub.set("/post", Answer("None", status=200))
    stub.set("/created", Answer("None", status=201))
    stub.set("/redirect", Answer("moved", status=302))
    text = probe_config(free_port(), [
        endpoint(stub.url("/post"),
                 'method: post\nbody: \'{"probe": true}\'\nexpectedStatusCode: 201\n'
                 'headers:\n  X-Game-Token: secret\n  Accept: text/plain'),
        endpoint(stub.url("/created"), "method: PUT\nexpectedStatusCode: 201"),
        endpoint(stub.url("/redirect"), "method: HEAD"),
    ])
    s = start_suite(suite_factory, text)
    wait_ep(s, 0, "LastResult", "bad-status")
    assert ep_prop(s, 0, "LastError") == "HTTP status 200, expected 201"
    _, method, headers, body = stub.last("/post")
    assert method == "POST" and body == b'{"probe": true}'
    assert headers["X-Game-Token"] == "secret" and headers["Accept"] == "text/plain"
    version = mgr_prop(s, "Version")
    assert headers["User-Agent"] == f"okg-probed/{version}"
    assert "Expect" not in headers

    wait_ep(s, 1, "LastResult", "success")
    assert stub.last("/created")[1] == "PUT"
    # A final 3xx is never a state: with no Location to follow, the probe fails (redirects
    # themselves are in test_probe_faults.py).
    wait_ep(s, 2, "LastResult", "bad-status")
    assert stub.last("/redirect")[1] == "HEAD"
    assert ep_prop(s, 2, "LastStatusCode") == 302
    assert ep_prop(s, 2, "LastError") == "HTTP status 302: a redirect without a Location to follow"
    assert ep_prop(s, 2, "LastState") == ""


def test_connection_refused_and_state_changed_signal(suite_factory, stub):
    dead = f"http://127.0.0.1:{free_port()}/state"
    stub.set("/s", Answer("Allocated"))
    text = probe_config(free_port(), [
        endpoint(dead, "failureThreshold: 1\nfailureState: Unreachable"),
        endpoint(stub.url("/s"), "", in_kube("Allocated")),
    ], interval=3600, start_delay=3600)
    s = start_suite(suite_factory, text)
    with s.monitor("io.kruise.game.Probe1", "StateChanged").listen("sss", "marker", "", "") as mon:
        probe_call(s, "ProbeNow")
        wait_ep(s, 0, "State", "Unreachable")
        wait_ep(s, 1, "State", "Allocated")
        assert ep_prop(s, 0, "LastResult") == "connect-error"
        assert ep_prop(s, 0, "LastError") == "Couldn't connect to server: Connection refused"
        listed = probe_call(s, "ListEndpoints")["data"][0]
        assert listed == [[0, "/io/kruise/game/Probe1/endpoint/0", dead, "Unreachable",
                           "connect-error", True],
                          [1, "/io/kruise/game/Probe1/endpoint/1", stub.url("/s"), "Allocated",
                           "success", False]]
        wait_for(lambda: len(mon.signals) >= 2, what="two StateChanged signals")
        assert sorted(mon.signals) == sorted([[dead, "", "Unreachable"],
                                              [stub.url("/s"), "", "Allocated"]])


def test_http_metric_is_exposed_not_written(suite_factory, stub):
    stub.set("/m", Answer("Allocated"))
    storage = "            type: HTTPMetric\n            httpMetric:\n              metricName: game_state\n"
    text = probe_config(free_port(), [endpoint(stub.url("/m"), "", storage)])
    s = start_suite(suite_factory, text)
    wait_ep(s, 0, "State", "Allocated")
    assert ep_prop(s, 0, "StorageType") == "HTTPMetric"
    assert ep_prop(s, 0, "MetricName") == "game_state"
    metrics = probe_call(s, "GetMetrics")["data"][0]
    assert f'game_state{{endpoint="0",url="{stub.url("/m")}",state="Allocated"}} 1\n' in metrics
    assert "# TYPE game_state gauge\n" in metrics
    assert re.search(r'okg_sidecar_probe_probes_total\{endpoint="0",url="[^"]+"\} [1-9]', metrics)
    # okg-sidecard's /metrics on the health port carries it
    with urllib.request.urlopen(f"http://127.0.0.1:{s.health_port}/metrics", timeout=scaled(10)) as r:
        scraped = r.read().decode()
    assert f'game_state{{endpoint="0",url="{stub.url("/m")}",state="Allocated"}} 1\n' in scraped
    assert 'okg_sidecar_probe_state{endpoint="0",' in scraped
    wait_probes(s, 0, ep_prop(s, 0, "Probes") + 1)
    assert mgr_prop(s, "StorageWrites") == 0
    assert LocalStoreView(s).gameserver() is None


# ---- every invalid http_probe config is refused by okg-probed itself, with the exact lines ----

BAD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config-bad")
PROBE_BAD = sorted(f for f in os.listdir(BAD) if f.endswith(".yaml")
                   and "name: http_probe" in open(os.path.join(BAD, f)).read()
                   and all(".config" in line for line in
                           open(os.path.join(BAD, f[:-5] + ".expected")).read().splitlines()))


@pytest.mark.parametrize("name", PROBE_BAD)
def test_invalid_config_is_refused_by_the_daemon(name):
    expected = open(os.path.join(BAD, name[:-5] + ".expected")).read().splitlines()
    r = subprocess.run([os.path.join(BUILD, "okg-probed", "okg-probed"), "--config", name],
                       cwd=BAD, capture_output=True, text=True, timeout=scaled(30),
                       env=dict(os.environ, SYSTEMD_LOG_LEVEL="info", OKG_BUS_ADDRESS=""))
    assert r.returncode == 3, r.stderr
    got = [line.split(": ", 1)[1] for line in r.stderr.splitlines()
           if line.startswith("okg-probed[")]
    got = [re.sub(r" \(\S+:\d+ \S+\)$", "", line) for line in got]
    assert got == expected


def test_probe_daemon_count_of_bad_configs():
    # the probe-specific fixtures are all found (a lost directory would pass vacuously)
    assert len(PROBE_BAD) >= 20, PROBE_BAD
