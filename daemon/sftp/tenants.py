"""One tenant's activity across all its sessions: how many, which uploads, how much disk."""

from __future__ import annotations

import os
from pathlib import Path


class Tenant:
    """Shared by every session of a tenant; touched only on the event loop thread."""

    def __init__(self, name: str, quota_bytes: int) -> None:
        self.name = name
        self.sessions = 0
        self.uploads = 0  # write handles open now
        self.temp_names: set[str] = set()  # hidden names of those uploads, skipped when measuring
        self._quota = quota_bytes  # <= 0: no quota
        self._committed = 0  # bytes on disk outside open uploads, as last measured
        self._inflight = 0  # bytes written so far into open uploads

    def set_committed(self, size: int) -> None:
        self._committed = size

    def grow(self, delta: int) -> bool:
        """Reserve room for an upload to grow by delta bytes; False when over quota."""
        if self._quota > 0 and self._committed + self._inflight + delta > self._quota:
            return False
        self._inflight += delta
        return True

    def shrink(self, delta: int) -> None:
        self._inflight -= delta

    def published(self, size: int) -> None:
        # Counted as committed until the next measure: overwritten files may free some of it.
        self._inflight -= size
        self._committed += size


def measure_usage(root: Path, skip: frozenset[str]) -> int:
    """Bytes under the root, the named open uploads excepted. Blocking: run it in a thread."""
    total = 0
    pending = [str(root)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.name not in skip:
                total += entry.stat(follow_symlinks=False).st_size
    return total
