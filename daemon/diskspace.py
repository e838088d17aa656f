"""Out of disk space (or over a disk quota): a condition of the machine, not of an import, so an
import that meets it waits for space instead of spending its attempts."""

from __future__ import annotations

import errno

from daemon.errors import StoreError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# The exit code of an import process that stopped for want of space (sysexits' EX_TEMPFAIL).
EXIT_NO_SPACE = 75


def out_of_space(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, says the disk (or quota) is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE_ERRNOS:
            return True
        if isinstance(current, StoreError) and current.no_space:
            return True
        current = current.__cause__ or current.__context__
    return False
