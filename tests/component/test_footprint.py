"""What each daemon maps, as docs/footprint.md says: libcurl (and its thirty libraries) is
loaded by okg-probed only by a first probe that needs it (https, a host name; plain http to an
address goes through its own client), and not at all by the other daemons of a suite that
makes no HTTP request (tests/component/test_probe_http_client.py has the https case)."""
from conftest import free_port, wait_for
from probe_helpers import (Answer, endpoint, ep_prop, in_kube, probe_config, start_suite, stub)

assert stub   # fixture, used by name


def maps_libcurl(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any("/libcurl" in line for line in f)


def endpoint_probe_now(suite, index):
    out = suite.busctl("call", "io.kruise.game.Probe1", f"/io/kruise/game/Probe1/endpoint/{index}",
                       "io.kruise.game.Probe1.Endpoint", "ProbeNow", json_out=True)
    assert out["data"] == [True]


def test_probed_loads_libcurl_at_its_first_probe(suite_factory, stub):
    """Until the first probe (an hour away here) okg-probed maps no libcurl; a first probe of
    plain http to 127.0.0.1 does not load it either, and every endpoint probes as usual."""
    stub.set("/a", Answer("A"))
    stub.set("/b", Answer("B"))
    text = probe_config(free_port(), [endpoint(stub.url("/a"), "", in_kube("A", "B")),
                                      endpoint(stub.url("/b"), "", in_kube("A", "B"))],
                        interval=3600, start_delay=3600)
    s = start_suite(suite_factory, text)
    units = s.units()
    probed = units["http_probe"]["pid"]
    for name, u in units.items():
        assert not maps_libcurl(u["pid"]), name
    assert not maps_libcurl(s.proc.pid)
    assert ep_prop(s, 0, "Probes") == 0 and ep_prop(s, 1, "Probes") == 0

    endpoint_probe_now(s, 1)
    wait_for(lambda: ep_prop(s, 1, "Probes") == 1, what="endpoint 1's first probe")
    assert ep_prop(s, 1, "State") == "B"
    assert not maps_libcurl(probed)
    # The other endpoint makes its client at its own first probe.
    endpoint_probe_now(s, 0)
    wait_for(lambda: ep_prop(s, 0, "Probes") == 1, what="endpoint 0's first probe")
    assert ep_prop(s, 0, "State") == "A"
    assert ep_prop(s, 0, "LastError") == ""
    assert s.units()["http_probe"]["pid"] == probed


def test_first_probe_without_a_server_is_a_failure_like_any_other(suite_factory):
    """A first probe that finds nothing listening (connection refused) counts as a failed
    probe; the next one is made with the same client, still without libcurl."""
    port = free_port()
    text = probe_config(free_port(), [endpoint(f"http://127.0.0.1:{port}/x", "", in_kube("A"))],
                        interval=3600, start_delay=3600)
    s = start_suite(suite_factory, text)
    probed = s.units()["http_probe"]["pid"]
    assert not maps_libcurl(probed)
    for n in (1, 2):
        endpoint_probe_now(s, 0)
        wait_for(lambda: ep_prop(s, 0, "Probes") == n, what=f"probe {n}")
        assert ep_prop(s, 0, "Failures") == n
        assert "refused" in ep_prop(s, 0, "LastError").lower()
    assert not maps_libcurl(probed)
