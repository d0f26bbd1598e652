"""The README's commands work as written after run-local.sh: each program is either on PATH or
in the build tree run-local.sh leaves (build-run/...), nothing assumed installed."""
import os
import re
import shutil

from conftest import BUILD, TOP


def looking_block():
    text = open(os.path.join(TOP, "README.md")).read()
    m = re.search(r"## Looking at a running suite\n+```sh\n(.*?)```", text, re.S)
    assert m, "README has no 'Looking at a running suite' block"
    return [line for line in m.group(1).splitlines() if line.strip()]


def test_looking_at_a_running_suite_names_runnable_programs():
    for line in looking_block():
        program = line.split()[0]
        if program.startswith("build-run/"):
            assert os.access(os.path.join(BUILD, program[len("build-run/"):]), os.X_OK), line
        else:
            assert "/" not in program and shutil.which(program), line
