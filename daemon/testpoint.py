"""Test-only stopping points: where a test holds an import at a known statement.

With TESTPOINT_ROSTERDROP_STOP_AT=POINT:FOLDER in its environment, the first process to reach
POINT creates FOLDER/POINT.reached and waits there until FOLDER/POINT.go exists; later
ones pass. A test kills the process there, or stops the database under it, knowing where
it is. Unset, as it always is outside the tests, it costs one look-up. (Not a ROSTERDROP_*
name: those are settings, and `serve` warns of one it does not know.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STOP_AT = "TESTPOINT_ROSTERDROP_STOP_AT"
POLL_SECONDS = 0.01


def reached(point: str) -> None:
    name, _, folder = os.environ.get(STOP_AT, "").partition(":")
    if name != point:
        return
    try:
        os.close(os.open(Path(folder) / f"{point}.reached", os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return  # stopped here once already
    go = Path(folder) / f"{point}.go"
    while not go.exists():
        time.sleep(POLL_SECONDS)
