"""The time pause windows are judged by: the caller's clock, or, in tests, the moment a file
names. With TESTPOINT_ROSTERDROP_CLOCK=FILE in the environment, every process (the daemon,
its import workers, the CLI) reads FILE's ISO 8601 moment each time it asks; a test moves
the school year forward by writing it, and never sleeps for days. Unset, as it always is
outside the tests, it costs one look-up. (Not a ROSTERDROP_* name: those are settings.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

CLOCK_FILE = "TESTPOINT_ROSTERDROP_CLOCK"


def utc_now() -> datetime:
    return datetime.now(UTC)


def window_now(clock: Callable[[], datetime] = utc_now) -> datetime:
    path = os.environ.get(CLOCK_FILE)
    if path:
        text = Path(path).read_text(encoding="utf-8").strip()
        if text:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return clock()
