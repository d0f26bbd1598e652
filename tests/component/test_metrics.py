"""/metrics on the health port: the Prometheus text format, checked against actions taken."""
import os
import re
import signal
import urllib.request

from conftest import scaled, wait_for
from hotupdate_helpers import backend, hot  # noqa: F401  (fixtures)

S = ("io.kruise.game.Storage1", "/io/kruise/game/Storage1", "io.kruise.game.Storage1")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN)$')


def scrape(suite):
    """{(name, frozenset(labels)): value}, checking the format on the way."""
    with urllib.request.urlopen(f"http://127.0.0.1:{suite.health_port}/metrics", timeout=scaled(10)) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    families, out = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in families, f"family {name} twice"
            families[name] = None
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name in families and kind in ("counter", "gauge", "histogram", "summary", "untyped")
            families[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels = m.group(1), m.group(3) or ""
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in families or base in families, f"sample {name} without HELP/TYPE"
            assert name.startswith("okg_sidecar_")
            lab = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
            assert (name, lab) not in out, f"duplicate sample {line}"
            out[(name, lab)] = float(m.group(4))
    for name, kind in families.items():
        if kind == "counter":
            assert name.endswith("_total"), name
    return out


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_metrics_follow_actions(suite):
    m = scrape(suite)
    assert value(m, "okg_sidecar_ready") == 1 and value(m, "okg_sidecar_healthy") == 1
    assert value(m, "okg_sidecar_unit_up", unit="hot_update") == 1
    assert value(m, "okg_sidecar_plugin_restarts_total", unit="http_probe") == 0
    assert value(m, "okg_sidecar_metrics_source_up", source="storage") == 1
    assert value(m, "okg_sidecar_storage_backend", backend="local") == 1
    acked = value(m, "okg_sidecar_storage_writes_acknowledged_total")

    # A plugin killed and brought back is counted.
    pid = suite.pid("http_probe")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: suite.units()["http_probe"]["pid"] not in (0, pid)
             and suite.units()["http_probe"]["ready"], what="restarted")
    # Two storage writes are counted once acknowledged.
    suite.busctl("call", *S, "SetPodMetadata", "a{ss}a{ss}", "1", "app", "x", "0")
    suite.busctl("call", *S, "SetGameServer", "sa{ss}a{ss}", "Allocated", "0", "0")
    wait_for(lambda: value(scrape(suite), "okg_sidecar_storage_writes_acknowledged_total") == acked + 2,
             what="writes counted")
    m = scrape(suite)
    assert value(m, "okg_sidecar_plugin_restarts_total", unit="http_probe") == 1
    assert value(m, "okg_sidecar_storage_pending_writes") == 0
    assert value(m, "okg_sidecar_storage_api_requests_total") == 0     # local store


def test_metrics_while_a_daemon_is_down(suite):
    suite.call("StopPlugin", "s", "http_probe")
    wait_for(lambda: suite.units()["http_probe"]["state"] == "inactive", what="stopped")
    m = scrape(suite)
    assert value(m, "okg_sidecar_unit_up", unit="http_probe") == 0
    assert ("okg_sidecar_metrics_source_up", frozenset({("source", "http_probe")})) not in m
    # A hung daemon does not hang the scrape: the storage daemon is stopped (SIGSTOP) and the
    # answer comes after the scrape's own deadline, without its figures.
    pid = suite.pid("storage")
    os.kill(pid, signal.SIGSTOP)
    try:
        m = scrape(suite)
        assert value(m, "okg_sidecar_metrics_source_up", source="storage") == 0
        assert ("okg_sidecar_storage_pending_writes", frozenset()) not in m
    finally:
        os.kill(pid, signal.SIGCONT)


def test_hot_update_figures(hot):
    """Hot updates by result, download bytes and seconds, from a real update of nginx."""
    s = hot.start()
    before = scrape(s)
    body = "x" * 5000 + "\n"
    url, _ = hot.files.put("/game/v1/index.html", body)
    status, res = hot.post(version="v1", url=url)
    assert status == 200 and res["state"] == "Succeeded", res
    status, res = hot.post(version="v1", url=url)            # the same again: Unchanged
    status, res = hot.post(version="bad version!", url=url)   # refused: Invalid
    assert status == 400
    m = scrape(s)
    assert value(m, "okg_sidecar_metrics_source_up", source="hot_update") == 1
    assert value(m, "okg_sidecar_hotupdate_total", result="Succeeded") == 1
    assert value(m, "okg_sidecar_hotupdate_total", result="Unchanged") == 1
    assert value(m, "okg_sidecar_hotupdate_total", result="Invalid") == 1
    assert value(m, "okg_sidecar_hotupdate_downloads_total") == \
        value(before, "okg_sidecar_hotupdate_downloads_total") + 1
    assert value(m, "okg_sidecar_hotupdate_download_bytes_total") == len(body)
    assert value(m, "okg_sidecar_hotupdate_download_seconds_total") > 0
    assert value(m, "okg_sidecar_hotupdate_version_info", version="v1") == 1
