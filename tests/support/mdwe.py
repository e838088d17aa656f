"""Run a program the way `MemoryDenyWriteExecute=yes` runs it: no writable+executable memory.

    python tests/support/mdwe.py PROGRAM ARG...

Sets the kernel's PR_SET_MDWE (Linux 6.3+; inherited across fork and exec, as systemd's own
rule is) and then execs PROGRAM in this process. Without kernel support it execs PROGRAM as
is; `supported()` tells the tests which happened.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def _refuse_exec_gain() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0)) == 0


def supported() -> bool:
    """Whether this kernel enforces the rule (checked in a child: the flag cannot be undone)."""
    probe = "import sys, tests.support.mdwe as m; sys.exit(0 if m._refuse_exec_gain() else 1)"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, "-c", probe], cwd=root, check=False).returncode == 0


def command(argv: list[str]) -> list[str]:
    """`argv` wrapped in this launcher."""
    return [sys.executable, os.path.abspath(__file__), *argv]


if __name__ == "__main__":
    _refuse_exec_gain()
    os.execv(sys.argv[1], sys.argv[1:])  # noqa: S606 - this process becomes the program
