"""The kubeconfig's certificate-authority is read by okg-storaged for each request, against the
real kube-apiserver (tests/kube/): one swapped for a FIFO after start (which OpenSSL's blocking
open would wait on for ever) fails the requests with a clear error while the daemon answers,
and one rotated on disk is used by the next request."""
import os
import shutil

from conftest import free_port, make_config, wait_for
from fake_kube import make_cert
from kube import kube, write_kubeconfig  # noqa: F401
from test_storage_kube import NO_PLUGINS, Pod, call, prop, start_suite


def replace_fifo(path, make):
    """Puts make(tmp) in place of the FIFO at path, first giving a reader blocked on the FIFO
    (a daemon that opened it blocking) its end of file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        fd = None           # no reader: nothing is blocked on it
    replace(path, make)
    if fd is not None:
        os.close(fd)


def replace(path, make):
    """Puts what make(tmp) creates at path by a rename, as a rotation does."""
    tmp = path + ".new"
    make(tmp)
    os.rename(tmp, path)


def test_certificate_authority_swapped_after_start(kube, suite_factory, tmp_path):
    """Start with another CA (every request fails verification), then a FIFO in its place:
    requests fail naming the file and why, the daemon keeps answering; then the API server's
    CA by a rename: the writes land."""
    pod = Pod(kube, tmp_path)
    ca = str(tmp_path / "ca.crt")
    _, other = make_cert(str(tmp_path))
    shutil.copy(other, ca)
    pod.env["KUBECONFIG"] = write_kubeconfig(str(tmp_path / "kubeconfig-ca"), kube.server, ca,
                                             token_file=pod.token_file, namespace=pod.ns)
    s = start_suite(suite_factory, pod)
    call(s, "SetGameServer", "sa{ss}a{ss}", "Allocated", 1, "okg.test/ca", "rotated", 0)
    wait_for(lambda: "certificate" in prop(s, "LastError"), what="verification against the other CA fails")
    assert prop(s, "Pending") >= 1

    replace(ca, os.mkfifo)
    try:
        wait_for(lambda: f"cannot read the certificate authority {ca}: not a regular file"
                 in prop(s, "LastError"), timeout=120, what="the FIFO refused")
        # Still answering, still holding the write.
        assert prop(s, "Pending") >= 1 and prop(s, "Backend") == "kubernetes"
        s.wait_log(f"cannot read the certificate authority {ca}: not a regular file")
    finally:
        replace_fifo(ca, lambda tmp: shutil.copy(kube.ca, tmp))

    wait_for(lambda: prop(s, "Pending") == 0, timeout=150, what="the write with the rotated CA")
    gs = pod.get("gs")
    assert gs["spec"]["opsState"] == "Allocated"
    assert gs["metadata"]["labels"]["okg.test/ca"] == "rotated"


def test_in_cluster_ca_crt_that_is_a_fifo(kube, suite_factory, tmp_path):
    """In a pod, ca.crt (not checked at start, unlike a kubeconfig's certificate-authority) is
    a FIFO: the requests fail naming it while the daemon answers; once the CA is put in its
    place, as the kubelet updates the projected volume, the write lands."""
    in_cluster_ca_crt_refused(kube, suite_factory, tmp_path, os.mkfifo, "not a regular file")


def test_in_cluster_ca_crt_without_a_certificate(kube, suite_factory, tmp_path):
    """ca.crt empty (a projected volume caught while written): before, every request failed
    with curl's `error importing CA certificate blob`, naming no file. Now it names ca.crt and
    why, and the CA put in its place is used."""
    in_cluster_ca_crt_refused(kube, suite_factory, tmp_path, lambda p: open(p, "w").close(),
                              "no PEM certificate in it")


def in_cluster_ca_crt_refused(kube, suite_factory, tmp_path, make, why):
    pod = Pod(kube, tmp_path)
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    kube.admin.write_token_file(str(sa_dir / "token"), pod.ns)
    (sa_dir / "namespace").write_text(pod.ns)
    ca = str(sa_dir / "ca.crt")
    make(ca)
    host, port = kube.server.removeprefix("https://").rsplit(":", 1)
    s = suite_factory(make_config(free_port(), []).replace("plugins:\n", NO_PLUGINS))
    try:
        s.start({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
                 "OKG_SERVICEACCOUNT_DIR": str(sa_dir), "POD_NAME": pod.name})
        s.wait_ready()
        call(s, "SetGameServer", "sa{ss}a{ss}", "Maintaining", 0, 0)
        wait_for(lambda: f"cannot read the certificate authority {ca}: {why}"
                 in prop(s, "LastError"), timeout=120, what="the CA refused")
        assert prop(s, "Pending") >= 1 and prop(s, "Backend") == "kubernetes"
    finally:
        replace_fifo(ca, lambda tmp: shutil.copy(kube.ca, tmp))
    wait_for(lambda: prop(s, "Pending") == 0, timeout=150, what="the write with the CA in place")
    assert pod.get("gs")["spec"]["opsState"] == "Maintaining"
