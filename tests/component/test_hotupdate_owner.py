"""Hot updates of a file the sidecar's user does not own, in a download folder it may write: an
init container (root) seeded it, or a `cp -a` kept another user's owner. With
fs.protected_hardlinks=1 (the usual default) the kernel refuses a hard link to such a file, so
keeping the previous version must not need one. The suite runs as a non-root UID (setpriv), or
as root with every capability dropped."""
import http.server
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading

import pytest

from conftest import Suite, wait_for
from hotupdate_helpers import HotUpdate, LocalBackend

NOBODY = 65534          # has a passwd entry, which dbus-daemon needs
OTHER = 4242            # owns the seeded file in the second case
SEED = b"v0 seeded by the init container\n"

CASES = {
    # The image's default: a non-root sidecar, the file seeded by root.
    "nonroot-sidecar-root-file": dict(
        prefix=["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--"],
        folder_owner=NOBODY, file_owner=0),
    # A root sidecar with every capability dropped, the file copied with its owner (cp -a).
    "root-nocaps-sidecar-other-file": dict(
        prefix=["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"],
        folder_owner=0, file_owner=OTHER),
}


def protected_hardlinks():
    with open("/proc/sys/fs/protected_hardlinks") as f:
        return f.read().strip() == "1"


class ReloadEndpoint:
    """The game's reload endpoint (loadPatchType: request): no signal across UIDs needed."""

    def __init__(self):
        self.calls = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.calls += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(params=sorted(CASES))
def owner_world(request):
    """(HotUpdate world, case): a base folder outside pytest's private tmp (which other UIDs
    cannot enter), the seeded file, a reload endpoint; the suite is not started yet."""
    if os.geteuid() != 0:
        pytest.skip("needs root to seed files as other users and start the suite as one")
    if not protected_hardlinks():
        pytest.fail("fs.protected_hardlinks is 0: this test would not show the fault")
    case = CASES[request.param]
    base = tempfile.mkdtemp(prefix="okg-owner-")
    os.chmod(base, 0o755)
    os.chown(base, case["folder_owner"], case["folder_owner"])
    suites = []

    def factory(text):
        s = Suite(pathlib.Path(base), text)
        s.command_prefix = case["prefix"]
        suites.append(s)
        return s

    hot = HotUpdate(pathlib.Path(base), factory, LocalBackend(),
                    os.path.join(base, "nginx"))
    os.chown(hot.downloads, case["folder_owner"], case["folder_owner"])
    seeded = hot.downloads / "index.html"
    seeded.write_bytes(SEED)
    os.chmod(seeded, 0o644)
    os.chown(seeded, case["file_owner"], case["file_owner"])
    reload = ReloadEndpoint()
    try:
        yield hot, case, reload
    finally:
        for s in suites:
            s.close()
        hot.close()
        reload.close()
        left = subprocess.run(["pgrep", "-f", base], capture_output=True, text=True).stdout
        shutil.rmtree(base, ignore_errors=True)
        assert not left.strip(), f"processes left behind: {left}"


def test_update_and_rollback_of_another_users_file(owner_world):
    hot, case, reload = owner_world
    hot.start(mode="request", extra=f"request:\n  port: {reload.port}\n"
                                    f"postReloadCheck:\n  url: {hot.files.url('/check')}\n"
                                    "  timeoutSeconds: 3\n  initialDelayMilliseconds: 0\n")
    pid = hot.suite.proc.pid      # setpriv exec'd okg-sidecard; its daemons inherit the rest
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    uid = int(status.split("Uid:")[1].split()[1])
    assert uid == (NOBODY if case["folder_owner"] == NOBODY else 0)
    assert "CapEff:\t0000000000000000" in status

    # v1 fails its post-reload check: the seeded file itself goes back, owner and all.
    hot.files.check_status = 500
    url1, _ = hot.files.put("/v1/index.html", "hello from v1\n")
    status, res = hot.post(version="v1", url=url1)
    assert status == 500 and res["state"] == "RolledBack", res
    assert hot.file() == SEED and hot.version() is None
    assert os.stat(hot.downloads / "index.html").st_uid == case["file_owner"]
    assert hot.temp_files() == []

    # v2 replaces it; the seeded file is kept as the previous copy.
    hot.files.check_status = 200
    url2, sha2 = hot.files.put("/v2/index.html", "hello from v2\n")
    status, res = hot.post(version="v2", url=url2, sha256=sha2)
    assert status == 200 and res["state"] == "Succeeded", res
    assert hot.file() == b"hello from v2\n"
    prev = hot.downloads / ".okg-prev-index.html"
    assert prev.read_bytes() == SEED and os.stat(prev).st_uid == case["file_owner"]
    assert hot.temp_files() == []
    # v1, its rollback, v2: the game was told each time.
    assert reload.calls == 3

    assert hot.suite.stop() == 0
