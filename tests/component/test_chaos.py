"""A short run of the chaos script (tests/chaos/chaos.py): hot updates and state flips while
kill -9 hits random daemons and the API server goes away and comes back, then every check of
the script must pass. The full-length run is `tests/chaos/chaos.py BUILD_DIR --seconds 120`."""
import os
import subprocess
import sys

from conftest import BUILD, TOP

CHAOS = os.path.join(TOP, "tests", "chaos", "chaos.py")
SECONDS = 20
SEED = 7


def test_chaos_short_run():
    env = dict(os.environ, OKG_BUILD_DIR=BUILD)
    # Start-up (etcd, kube-apiserver, nginx, the suite), the chaos, an API server still coming
    # back, the bounded settle (60 s) and the stop: well under this safety net.
    try:
        r = subprocess.run(["/usr/bin/python3", CHAOS, BUILD, "--seconds", str(SECONDS),
                            "--seed", str(SEED)], capture_output=True, text=True, env=env,
                           timeout=SECONDS + 420)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) \
            else (e.stderr or "")
        raise AssertionError(f"chaos.py did not end within {SECONDS + 420} s\n{out}\n{err}")
    sys.stdout.write(r.stdout)
    assert r.returncode == 0, (f"chaos.py --seconds {SECONDS} --seed {SEED} exited with "
                               f"{r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
