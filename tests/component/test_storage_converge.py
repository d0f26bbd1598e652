"""okg-storaged converges on what it accepted whatever the network and the objects do (issue
16), against a real kube-apiserver: a connection that stops carrying bytes, objects recreated
or changed by someone else, a field the API server refuses, a journal grown during an outage.
A TCP proxy of the test's freezes connections; nothing else is faked."""
import json

import pytest

from conftest import wait_for
from kube import kube, write_kubeconfig  # noqa: F401
from tcp_proxy import TcpProxy
from test_storage_kube import S, Pod, call, prop, start_suite


@pytest.fixture
def proxy(kube):
    host, port = kube.server.removeprefix("https://").rsplit(":", 1)
    p = TcpProxy(host, int(port))
    yield p
    p.close()


def through(pod, proxy, kube, tmp_path):
    """The pod's sidecar talks to the API server through the proxy."""
    pod.env["KUBECONFIG"] = write_kubeconfig(str(tmp_path / "kubeconfig-proxy"),
                                             f"https://{proxy.address}", kube.ca,
                                             token_file=pod.token_file, namespace=pod.ns)


def test_frozen_connection_is_replaced(kube, suite_factory, tmp_path, proxy):
    """S2: the connection freezes (bytes stop, the socket stays open); the write that times out
    on it is retried on a new connection and lands."""
    pod = Pod(kube, tmp_path)
    through(pod, proxy, kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 0, 0)
    wait_for(lambda: prop(s, "Pending") == 0, what="the first write")
    assert proxy.freeze() >= 1
    before = proxy.connections()
    call(s, "SetGameServer", "sa{ss}a{ss}", "Maintaining", 1, "okg.test/after", "freeze", 0)
    wait_for(lambda: prop(s, "Pending") == 0, timeout=150, what="the write after the freeze")
    gs = pod.get("gs")
    assert gs["spec"]["opsState"] == "Maintaining"
    assert gs["metadata"]["labels"]["okg.test/after"] == "freeze"
    assert proxy.connections() > before
    s.wait_log("the next one opens a new connection")


def test_frozen_pod_read_is_replaced(kube, suite_factory, tmp_path, proxy):
    """S2, another request kind: a record read through a frozen connection fails (Busy); the
    next read opens a new connection and answers."""
    pod = Pod(kube, tmp_path)
    through(pod, proxy, kube, tmp_path)
    s = start_suite(suite_factory, pod)
    call(s, "PutRecord", "s", json.dumps({"version": "v1"}))
    wait_for(lambda: prop(s, "Pending") == 0, what="the record")
    assert proxy.freeze() >= 1
    before = proxy.connections()
    # The read waits for the request's own timeout (30 s), longer than busctl's default.
    out = s.busctl("--timeout=120", "call", *S, "GetFleetRecord", "s", "version", check=False)
    assert out.returncode != 0 and "Timeout was reached" in out.stderr
    got, who = call(s, "GetFleetRecord", "s", "version")["data"]
    assert json.loads(got)["version"] == "v1" and who == pod.name
    assert proxy.connections() > before
