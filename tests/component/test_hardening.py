"""The installed binaries are built hardened, as Debian builds its packages: PIE, stack
protector, _FORTIFY_SOURCE, full RELRO (read-only relocations and immediate binding). Checked
with Debian's hardening-check (devscripts) on the binaries of the build under test."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD

BINARIES = [os.path.join(BUILD, d, d) for d in
            ("okg-sidecard", "okg-storaged", "okg-hotupdated", "okg-probed", "okgctl")]
REQUIRED = ("Position Independent Executable", "Stack protected", "Fortify Source functions",
            "Read-only relocations", "Immediate binding")


def hardening(binary):
    """{check: answer} as hardening-check prints them."""
    tool = shutil.which("hardening-check")
    if not tool:
        pytest.fail("hardening-check is missing (Debian package devscripts; scripts/setup.sh)")
    r = subprocess.run([tool, binary], capture_output=True, text=True, timeout=60)
    return dict(re.findall(r"^ ([^:\n]+): (.*)$", r.stdout, re.M))


@pytest.mark.parametrize("binary", BINARIES, ids=os.path.basename)
def test_binary_is_hardened(binary):
    got = hardening(binary)
    for check in REQUIRED:
        assert got.get(check, "").startswith("yes"), f"{os.path.basename(binary)}: {check}: " \
            f"{got.get(check)!r} (all: {got})"
