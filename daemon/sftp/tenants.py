"""One tenant's activity across all its sessions: how many, which uploads, how much disk."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.folders import MANIFEST

BLOCK_BYTES = 512  # st_blocks counts in these units whatever the file system's block size
SET_WINDOW_SECONDS = 3600.0  # max_sets_per_hour counts the sets claimed within this window


@dataclass(frozen=True)
class Usage:
    """What a tenant holds on disk, as last measured."""

    allocated: int = 0  # bytes allocated (st_blocks), open uploads excepted
    files: int = (
        0  # entries in its drop folders (/upload, /check), empty files and open uploads included
    )
    recent_sets: int = 0  # sets claimed for import within SET_WINDOW_SECONDS


class Tenant:
    """Shared by every session of a tenant; touched only on the event loop thread."""

    def __init__(self, name: str, quota_bytes: int) -> None:
        self.name = name
        self.quota = quota_bytes  # <= 0: no quota
        self.sessions = 0
        self.uploads = 0  # write handles open now
        self.uploads_in: Counter[str] = Counter()  # of those, by drop folder (upload, check)
        self.open_files = 0  # handles of any kind open now, across all sessions
        self.temp_names: set[str] = set()  # hidden names of those uploads, skipped when measuring
        self.usage = Usage()
        self._committed = 0  # bytes on disk outside open uploads, as last measured
        self._inflight = 0  # bytes written so far into open uploads

    def upload_started(self, folder: str) -> None:
        self.uploads += 1
        self.uploads_in[folder] += 1

    def upload_ended(self, folder: str) -> None:
        self.uploads -= 1
        self.uploads_in[folder] -= 1

    def measured(self, usage: Usage) -> None:
        self.usage = usage
        self._committed = usage.allocated

    @property
    def used(self) -> int:
        return self._committed + self._inflight

    def grow(self, delta: int) -> bool:
        """Reserve room for an upload to grow by delta bytes; False when over quota."""
        if self.quota > 0 and self._committed + self._inflight + delta > self.quota:
            return False
        self._inflight += delta
        return True

    def shrink(self, delta: int) -> None:
        self._inflight -= delta

    def published(self, size: int) -> None:
        # Counted as committed until the next measure: overwritten files may free some of it.
        self._inflight -= size
        self._committed += size


def measure_usage(
    root: Path, drop_dirs: Sequence[Path], holdings: Sequence[Path], skip: frozenset[str]
) -> Usage:
    """What the tenant holds under its root and in its import folders (`holdings`: its spool
    and archive), the named open uploads excepted. Blocking: run it in a thread.

    Allocated blocks, not sizes: a sparse file costs what it really takes, and a file of one
    byte costs its block."""
    allocated = 0
    for top in (root, *holdings):
        allocated += _allocated(top, skip)
    since = time.time() - SET_WINDOW_SECONDS
    recent = sum(_claimed_since(top, since) for top in holdings)
    files = 0
    for folder in drop_dirs:
        try:
            # Folders (/check's results) are rosterdrop's own: files are what a client put.
            files += sum(1 for entry in os.scandir(folder) if not entry.is_dir())
        except FileNotFoundError:
            continue
    return Usage(allocated, files, recent)


def _allocated(top: Path, skip: frozenset[str]) -> int:
    total = 0
    pending = [str(top)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name not in skip:
                    total += entry.stat(follow_symlinks=False).st_blocks * BLOCK_BYTES
            except FileNotFoundError:  # claimed or expired while we looked
                continue
    return total


def _claimed_since(top: Path, since: float) -> int:
    """Import folders under `top` whose manifest (written once, at the claim) is recent."""
    count = 0
    try:
        folders = list(os.scandir(top))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return 0
    for folder in folders:
        try:
            if os.stat(os.path.join(folder.path, MANIFEST)).st_mtime >= since:
                count += 1
        except (FileNotFoundError, NotADirectoryError):
            continue
    return count
