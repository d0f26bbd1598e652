"""The daemons' exit statuses, as docs/sidecard.md and docs/probe.md document them and the service
units rely on (no restart after 2 or 3): one entry (OKG_DEFINE_MAIN_FUNCTION in okg-daemon.h)
maps what each daemon's run() returns. Also a set-up failure after the config was handed on: it
must be freed once (okg-hotupdated used to free it twice)."""
import os
import re
import subprocess

import pytest

from conftest import BUILD, HOT_UPDATE, SANITIZER_MARKERS, free_port, reset_signals, scaled

DAEMONS = {
    "okg-storaged": os.path.join(BUILD, "okg-storaged", "okg-storaged"),
    "okg-hotupdated": os.path.join(BUILD, "okg-hotupdated", "okg-hotupdated"),
    "okg-probed": os.path.join(BUILD, "okg-probed", "okg-probed"),
}
FAIL_ASPRINTF = os.path.join(BUILD, "tests", "component", "okg-test-fail-asprintf.so")


def run(argv, tmp_path, extra_env=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OKG_BUS_ADDRESS", "OKG_CONFIG", "OKG_PLUGIN_NAME", "NOTIFY_SOCKET")}
    env["OKG_STATE_DIR"] = str(tmp_path / "state")
    env.update(extra_env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=scaled(60), env=env,
                          preexec_fn=reset_signals)


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_exit_status_usage_help_config(daemon, tmp_path):
    binary = DAEMONS[daemon]
    r = run([binary, "--no-such-option"], tmp_path)
    assert r.returncode == 2, r.stderr
    r = run([binary, "--config", "/dev/null", "stray"], tmp_path)
    assert r.returncode == 2 and "unexpected argument 'stray'" in r.stderr, r.stderr

    for flag in ("--help", "--version"):
        r = run([binary, flag], tmp_path)
        assert r.returncode == 0 and daemon in r.stdout, (flag, r.stdout, r.stderr)

    missing = tmp_path / "missing.yaml"
    r = run([binary, "--config", str(missing)], tmp_path)
    assert r.returncode == 3 and "missing.yaml" in r.stderr, r.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("plugins: [\n  - name: x\n")
    r = run([binary, "--config", str(broken)], tmp_path)
    assert r.returncode == 3 and f"{broken}:" in r.stderr, r.stderr
    for out in (r.stdout, r.stderr):
        assert not any(m in out for m in SANITIZER_MARKERS), out


# One refused key per daemon, in the part of the file that daemon reads.
INVALID = {
    "okg-storaged": ("restartpolicy: Sometimes\n", "restartpolicy"),
    "okg-hotupdated": ("plugins:\n  - name: hot_update\n    config:\n      port: 0\n", "port"),
    "okg-probed": ("plugins:\n  - name: http_probe\n    config:\n      probeIntervalSeconds: 0\n",
                   "probeIntervalSeconds"),
}


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_exit_status_invalid_config_names_the_key(daemon, tmp_path):
    text, key = INVALID[daemon]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    r = run([DAEMONS[daemon], "--config", str(config)], tmp_path)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert re.search(rf"{re.escape(str(config))}:\d+:\d+: [^ ]*{key}: ", r.stderr), r.stderr


def test_hotupdated_setup_failure_frees_the_config_once(tmp_path):
    """manager_new() fails after it took the config (an allocation fails, injected): the daemon
    exits 1 with the reason, and the config is freed once, not again by main()."""
    config = tmp_path / "config.yaml"
    section = HOT_UPDATE.format(boot=0, hot_port=free_port(), download_dir=tmp_path / "downloads")
    config.write_text(f"plugins:\n{section}healthPort: {free_port()}\n")
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {
        "LD_PRELOAD": FAIL_ASPRINTF,
        "OKG_TEST_FAIL_ASPRINTF": "hotupdated-record.json",
        # A sanitized build: the preloaded library comes before the ASan runtime, on purpose.
        "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
    }
    r = run([DAEMONS["okg-hotupdated"], "--config", str(config)], tmp_path, env)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Failed to set up: Cannot allocate memory" in r.stderr, r.stderr
    assert not any(m in r.stderr for m in SANITIZER_MARKERS), r.stderr
