"""A network namespace of the test's own: the calling thread (and every process and thread it
starts afterwards) moves into a fresh namespace with only `lo`, up, carrying extra addresses
such as 169.254.169.254 for a stand-in metadata server. Leaving restores the thread's previous
namespace; sockets made inside keep working until closed. Needs CAP_SYS_ADMIN (root)."""
import contextlib
import ctypes
import os
import subprocess

import pytest

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(r, what):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def available():
    return os.geteuid() == 0 and os.path.exists("/proc/thread-self/ns/net")


@contextlib.contextmanager
def network_namespace(addresses=()):
    """Enter a new network namespace; addresses ("169.254.169.254/32", ...) go on lo."""
    if not available():
        pytest.skip("network namespaces need root")
    old = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            for a in addresses:
                family = "-6" if ":" in a else "-4"
                subprocess.run(["ip", family, "addr", "add", a, "dev", "lo"], check=True)
            yield
        finally:
            _check(_libc.setns(old, CLONE_NEWNET), "setns back")
    finally:
        os.close(old)


def private_hosts_wrapper(hosts_file, real_binary):
    """A libexec_dir() wrapper snippet: the daemon runs in its own mount namespace where
    hosts_file is bind-mounted over /etc/hosts (the real one is never touched). The execs keep
    the PID, so okg-sidecard still supervises the daemon itself."""
    return (f"exec unshare -m --propagation private /bin/bash -c "
            f"'mount --bind {hosts_file} /etc/hosts && exec \"$0\" \"$@\"' "
            f"{real_binary} \"$@\"")
