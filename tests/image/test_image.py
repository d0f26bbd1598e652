"""The container image as users build it (scripts/image.sh): the suite runs from the image's
files as the image's own user (UID 65532), answers /readyz, applies a hot update to a file a root
init container seeded and signals the game, and stops cleanly; the image holds no apt cache, its
binaries are hardened, and the build context holds what the build needs and nothing of deploy/.

Runs the image with podman (runtime runc, host network and PID namespace: the game is a host
process of the same UID, as with shareProcessNamespace in a pod). Where podman cannot run a
container, OKG_IMAGE_RUNNER=chroot runs the same files: the image's root file system (buildah
mount) under unshare (a mount namespace) and chroot, as UID 65532."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "component"))

from conftest import free_port, make_config, wait_for  # noqa: E402
from test_hardening import REQUIRED, hardening  # noqa: E402
from hotupdate_helpers import (POD_ENV, FileServer, LocalBackend,  # noqa: E402
                               hot_update_section, sha256)

IMAGE = os.environ.get("OKG_IMAGE", "localhost/okg-sidecar:0.1.0")
RUNNER = os.environ.get("OKG_IMAGE_RUNNER", "podman")
# On this kind of machine (a VM without systemd, cgroup v1, low hard rlimits) podman needs runc,
# the cgroupfs manager and rlimits under the hard ones: its defaults fail with EPERM.
PODMAN = shlex.split(os.environ.get("OKG_PODMAN", "podman --runtime runc --cgroup-manager cgroupfs"))
PODMAN_RUN = shlex.split(os.environ.get("OKG_PODMAN_RUN",
                                        "--ulimit nofile=4096:4096 --ulimit nproc=4096:4096"))
UID = 65532
SEED = b"<html>2048, as the init container copied it</html>\n"


def run(*cmd, check=True, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=300, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


@pytest.fixture(scope="module")
def rootfs():
    """The image's root file system, mounted read-write from a working container."""
    if not shutil.which("buildah"):
        pytest.fail("buildah is missing (scripts/setup.sh)")
    ctr = run("buildah", "from", "--pull=never", IMAGE).stdout.strip()
    try:
        yield run("buildah", "mount", ctr).stdout.strip()
    finally:
        run("buildah", "umount", ctr, check=False)
        run("buildah", "rm", ctr, check=False)


def test_no_package_cache_or_lists(rootfs):
    def files(rel):
        out = []
        for d, _, names in os.walk(os.path.join(rootfs, rel)):
            out += [os.path.relpath(os.path.join(d, n), rootfs) for n in names]
        return out
    assert [f for f in files("var/cache/apt") if f.endswith((".deb", ".bin"))] == []
    assert [f for f in files("var/lib/apt/lists") if not f.endswith("lock")] == []
    # Nothing of the build host in the image.
    for f in ("etc/hostname", "etc/resolv.conf"):
        p = os.path.join(rootfs, f)
        assert not os.path.exists(p) or os.path.getsize(p) == 0, f


def test_image_binaries_hardened(rootfs):
    """As tests/component/test_hardening.py, on the release build the image holds."""
    bins = [os.path.join(rootfs, "usr/bin/okg-sidecard"), os.path.join(rootfs, "usr/bin/okgctl")]
    bins += [os.path.join(rootfs, "usr/libexec/okg-sidecar", d)
             for d in ("okg-storaged", "okg-hotupdated", "okg-probed")]
    for b in bins:
        got = hardening(b)
        assert [c for c in REQUIRED if not got.get(c, "").startswith("yes")] == [], (b, got)


def test_build_context(tmp_path):
    """What deploy/Containerfile.dockerignore leaves in the context, as buildah applies it."""
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY . /ctx\n")
    tag = f"localhost/okg-context-test:{uuid.uuid4().hex[:8]}"
    run("buildah", "build", "--quiet", "-f", str(tmp_path / "Containerfile"), "--ignorefile",
        os.path.join(TOP, "deploy", "Containerfile.dockerignore"), "-t", tag, TOP)
    ctr = run("buildah", "from", "--pull=never", tag).stdout.strip()
    try:
        mnt = run("buildah", "mount", ctr).stdout.strip()
        ctx = os.path.join(mnt, "ctx")
        names = set()
        for d, dirs, files in os.walk(ctx):
            names |= {os.path.relpath(os.path.join(d, n), ctx) for n in dirs + files}
    finally:
        run("buildah", "rm", ctr, check=False)
        run("buildah", "rmi", tag, check=False)
    assert "meson.build" in names and "meson_options.txt" in names
    # Every directory meson reads.
    for d in ("libokg-common", "okg-sidecard", "okg-storaged", "okg-hotupdated", "okg-probed",
              "okgctl", "units", "tests", "bench"):
        assert f"{d}/meson.build" in names, d
    bad = sorted(n for n in names if n.split("/")[0] in ("deploy", "docs", ".git")
                 or n.startswith("build") or re.search(r"(^|/)(Containerfile[^/]*|__pycache__"
                                                       r"|[^/]*\.md)$", n))
    assert bad == []


class Game:
    """The game: a process of UID 65532 on the host that reloads (copies the file it serves) on
    SIGHUP, as nginx's master would."""

    def __init__(self, base, downloads):
        self.dir = os.path.join(base, "game")
        os.mkdir(self.dir)
        os.chown(self.dir, UID, UID)
        self.script = os.path.join(self.dir, "game.py")
        with open(self.script, "w") as f:
            f.write(f"""import os, signal, time
def reload(*_):
    with open({os.path.join(downloads, "index.html")!r}, "rb") as f:
        data = f.read()
    with open({os.path.join(self.dir, "served.tmp")!r}, "wb") as f:
        f.write(data)
    os.rename({os.path.join(self.dir, "served.tmp")!r}, {os.path.join(self.dir, "served")!r})
    with open({os.path.join(self.dir, "reloads")!r}, "a") as f:
        f.write("reloaded\\n")
signal.signal(signal.SIGHUP, reload)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
reload()
while True:
    time.sleep(60)
""")
        self.proc = subprocess.Popen(["setpriv", f"--reuid={UID}", f"--regid={UID}",
                                      "--clear-groups", "/usr/bin/python3", self.script])
        self.title = f"/usr/bin/python3 {self.script}"
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "reloads")), what="game up")

    def served(self):
        with open(os.path.join(self.dir, "served"), "rb") as f:
            return f.read()

    def reloads(self):
        with open(os.path.join(self.dir, "reloads")) as f:
            return len(f.read().split())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sidecard_processes():
    """{pid: uid} of okg-sidecard processes started from the image's entrypoint."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{d}/status") as f:
                uid = int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            continue
        if argv[0] == b"/usr/bin/okg-sidecard" and b"/opt/sidecar/config.yaml" in argv:
            out[int(d)] = uid
    return out


def start_podman(name, base, env, log):
    cmd = PODMAN + ["run", "--rm"] + PODMAN_RUN + [
           "--name", name, "--network", "host", "--pid", "host",
           "-v", f"{base}/downloads:/app/downloads", "-v", f"{base}/etc:/opt/sidecar:ro"]
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    return subprocess.Popen(cmd + [IMAGE], stdout=log, stderr=subprocess.STDOUT)


def start_chroot(rootfs_dir, base, env, log):
    """The entrypoint under chroot in a private mount namespace: /proc, /dev, /tmp and the
    volumes mounted as a runtime would."""
    info = json.loads(run("buildah", "inspect", "--type", "image", IMAGE).stdout)
    entry = [shlex.quote(a) for a in info["OCIv1"]["config"]["Entrypoint"]]
    script = f"""set -e
r={rootfs_dir}
mount --make-rprivate /
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/tmp"
mount --bind {base}/downloads "$r/app/downloads"
mount --bind -o ro {base}/etc "$r/opt/sidecar"
exec chroot --userspec={UID}:{UID} "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \\
        {" ".join(f"{k}={v}" for k, v in env.items())} {" ".join(entry)}
"""
    return subprocess.Popen(["unshare", "--mount", "--", "bash", "-c", script],
                            stdout=log, stderr=subprocess.STDOUT)


def test_suite_runs_from_the_image():
    base = tempfile.mkdtemp(prefix="okg-image-test-", dir="/var/tmp")
    os.chmod(base, 0o755)
    downloads = os.path.join(base, "downloads")
    os.mkdir(downloads)
    os.chmod(downloads, 0o777)       # as an emptyDir is
    with open(os.path.join(downloads, "index.html"), "wb") as f:
        f.write(SEED)                # root's, 0644: the init container's copy
    os.mkdir(os.path.join(base, "etc"))
    game = Game(base, downloads)
    files = FileServer()
    log_path = os.path.join(base, "sidecar.log")
    log = open(log_path, "w")
    proc, ctr, name = None, None, f"okg-image-test-{uuid.uuid4().hex[:8]}"
    try:
        hot_port, health_port = free_port(), free_port()
        section = hot_update_section(hot_port, "/app/downloads", game.title)
        with open(os.path.join(base, "etc", "config.yaml"), "w") as f:
            f.write(make_config(health_port, [(section, 0)],
                                extra=LocalBackend.config_extra + "stopTimeoutSeconds: 20\n"))
        os.chmod(os.path.join(base, "etc", "config.yaml"), 0o644)

        if RUNNER == "podman":
            proc = start_podman(name, base, POD_ENV, log)
        else:
            ctr = run("buildah", "from", "--pull=never", IMAGE).stdout.strip()
            proc = start_chroot(run("buildah", "mount", ctr).stdout.strip(), base, POD_ENV, log)

        def ready():
            assert proc.poll() is None, open(log_path).read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz",
                                            timeout=5) as r:
                    return r.status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False
        wait_for(ready, timeout=60, what="/readyz 200")
        # The image's own user, not one podman --user would have added to /etc/passwd.
        assert set(sidecard_processes().values()) == {UID}

        url, digest = files.put("/v2/index.html", "<html>2048 v2</html>\n")
        data = f"version=v2&url={url}&sha256={digest}".encode()
        req = urllib.request.Request(f"http://127.0.0.1:{hot_port}/hot-update", data=data)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, res = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, res = e.code, json.loads(e.read())
        assert status == 200 and res["state"] == "Succeeded", res
        assert res["sha256"] == sha256("<html>2048 v2</html>\n")
        with open(os.path.join(downloads, "index.html"), "rb") as f:
            assert f.read() == b"<html>2048 v2</html>\n"
        prev = os.path.join(downloads, ".okg-prev-index.html")
        with open(prev, "rb") as f:
            assert f.read() == SEED
        assert os.stat(prev).st_uid == 0
        # The game got SIGHUP and reloaded the new file.
        wait_for(lambda: game.served() == b"<html>2048 v2</html>\n", what="game reloaded")
        assert game.reloads() == 2

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, open(log_path).read()
        assert sidecard_processes() == {}
        assert game.proc.poll() is None, "the game outlived the sidecar"
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if RUNNER == "podman":
            run(*PODMAN, "rm", "-f", "-t", "0", name, check=False)
        if ctr:
            run("buildah", "rm", ctr, check=False)
        log.close()
        print(open(log_path).read()[-4000:])
        game.stop()
        files.close()
        shutil.rmtree(base, ignore_errors=True)
