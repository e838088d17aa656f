"""The upload folders: noticing complete, settled five-file sets and claiming them for import.

Three things wake the watcher — the SFTP server's events, watchdog's file-system events and a
periodic rescan — because no single source is to be trusted (inotify drops events when its
queue overflows). It knows nothing of SSH: "busy" comes in as a function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from daemon import uploadset
from daemon.config import DataPaths, SpoolSettings
from daemon.roster.tenant import AUTO

log = structlog.get_logger(__name__)

# A file being uploaded lives under this hidden name until the client closes it; it is never
# one of the five names, so the watcher ignores it, and a restart removes abandoned ones.
PARTIAL_PREFIX = ".rosterdrop-partial-"
STALE_REPORTS = "stale-reports.json"


def partial_name(final_name: str) -> str:
    return f"{PARTIAL_PREFIX}{secrets.token_hex(6)}-{final_name}"


def is_partial(name: str) -> bool:
    return name.startswith(PARTIAL_PREFIX)


def remove_abandoned_partials(paths: DataPaths) -> int:
    """At startup, before SFTP listens: a partial upload nobody is writing is garbage."""
    removed = 0
    for upload in paths.tenants.glob("*/upload"):
        for path in upload.iterdir():
            if is_partial(path.name):
                path.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("abandoned partial uploads removed", count=removed)
    return removed


@dataclass
class _Folder:
    """What the watcher knows about one tenant's upload folder."""

    last_activity: float = 0.0  # clock time of the last SFTP event


@dataclass(frozen=True)
class ReadySet:
    tenant: str
    folder: Path


@dataclass(frozen=True)
class IncompleteSet:
    tenant: str
    present: list[str]
    missing: list[str]
    since: datetime
    fingerprint: str  # the files' names and times: the same stuck set is reported once


@dataclass
class Spool:
    """Decides when a tenant's upload folder holds a set to import, or one that is stuck."""

    settings: SpoolSettings
    paths: DataPaths
    busy: Callable[[str], int] = lambda tenant: 0
    # The tenant's input format (clever, oneroster or auto): which files make its set.
    input_format: Callable[[str], str] = lambda tenant: AUTO
    clock: Callable[[], float] = time.time
    _folders: dict[str, _Folder] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _observer: Any = None
    _handler: Any = None
    _watched: set[Path] = field(default_factory=set)

    # -- wake-ups ---------------------------------------------------------------------------

    def activity(self, tenant: str) -> None:
        """Something happened in the tenant's folder (called on the event loop)."""
        self._folder(tenant).last_activity = self.clock()
        self._wake.set()

    def wake(self) -> None:
        """Look again now (a worker came free: a set left waiting may be claimed)."""
        self._wake.set()

    def start_watching(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the tenants folder for new tenants, and each upload folder the scans find.

        Not one recursive watch: watchdog's races with `mkdir -p` of a new tenant's folders
        (it warns from its thread, which dies where warnings are errors)."""
        self.paths.tenants.mkdir(parents=True, exist_ok=True)
        self._handler = _Wake(loop, self._wake)
        observer = Observer()
        observer.schedule(self._handler, str(self.paths.tenants), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop_watching(self) -> None:
        # watchdog logs an error when stopped while its reader thread is mid-read: harmless.
        logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
            self._watched.clear()

    async def wait(self, seconds: float) -> None:
        """Sleep until woken or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # -- decisions --------------------------------------------------------------------------

    def scan(self) -> tuple[list[ReadySet], list[IncompleteSet], float]:
        """The sets ready to claim, the stuck partial sets to report, and how long until a
        waiting set may settle (for the next wake-up)."""
        ready: list[ReadySet] = []
        stuck: list[IncompleteSet] = []
        next_check = self.settings.rescan_seconds
        for upload in sorted(self.paths.tenants.glob("*/upload")):
            tenant = upload.parent.name
            quiet_for = self._quiet_for(tenant, upload)
            if quiet_for is None:
                continue
            self._watch(upload)
            try:
                found = uploadset.find(upload, self.input_format(tenant))
            except FileNotFoundError:  # a file went while we looked; its removal wakes us again
                continue
            if not found.files:
                continue
            if self.busy(tenant):
                continue  # the end of the upload (published or aborted) wakes us
            if quiet_for < self.settings.settle_seconds:
                next_check = min(next_check, max(0.05, self.settings.settle_seconds - quiet_for))
                continue
            if not found.missing:
                ready.append(ReadySet(tenant, upload))
            elif quiet_for >= self.settings.stale_hours * 3600:
                with contextlib.suppress(FileNotFoundError):
                    incomplete = self._stuck(tenant, found.files, found.missing, quiet_for)
                    if incomplete is not None:
                        stuck.append(incomplete)
        return ready, stuck, next_check

    def _watch(self, upload: Path) -> None:
        if self._observer is None or upload in self._watched:
            return
        try:
            self._observer.schedule(self._handler, str(upload), recursive=False)
        except OSError as exc:  # gone since, or out of inotify watches: the rescan covers it
            log.warning("cannot watch an upload folder", folder=str(upload), error=str(exc))
        self._watched.add(upload)

    def _quiet_for(self, tenant: str, upload: Path) -> float | None:
        """Seconds since anything was written for the tenant (None: the folder is gone)."""
        try:
            newest = max((p.stat().st_mtime for p in upload.iterdir()), default=0.0)
        except FileNotFoundError:
            return None
        last = max(newest, self._folder(tenant).last_activity)
        return max(0.0, self.clock() - last)

    def _stuck(
        self, tenant: str, files: dict[str, Path], missing: list[str], quiet_for: float
    ) -> IncompleteSet | None:
        fingerprint = json.dumps(sorted((p.name, p.stat().st_mtime) for p in files.values()))
        if self._reported().get(tenant) == fingerprint:
            return None
        since = datetime.fromtimestamp(self.clock() - quiet_for, UTC)
        present = sorted(p.name for p in files.values())
        return IncompleteSet(tenant, present, missing, since, fingerprint)

    def is_reported(self, incomplete: IncompleteSet) -> bool:
        """Whether this stuck set was reported already (by this node or, sharing the data
        directory, another)."""
        return self._reported().get(incomplete.tenant) == incomplete.fingerprint

    def reported(self, incomplete: IncompleteSet) -> None:
        """Remember a stuck set as reported, once its email is safely in the outbox: a
        failure before then reports it again on the next scan."""
        reported = self._reported()
        reported[incomplete.tenant] = incomplete.fingerprint
        self._save_reported(reported)

    def _reported(self) -> dict[str, str]:
        """Which stuck sets were already reported: kept on disk, so a restart doesn't re-send."""
        path = self.paths.root / STALE_REPORTS
        try:
            data: dict[str, str] = json.loads(path.read_text())
            return data
        except (FileNotFoundError, ValueError):
            return {}

    def _save_reported(self, reported: dict[str, str]) -> None:
        path = self.paths.root / STALE_REPORTS
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")  # no other writer's name
        tmp.write_text(json.dumps(reported))
        os.replace(tmp, path)

    def _folder(self, tenant: str) -> _Folder:
        return self._folders.setdefault(tenant, _Folder())


class _Wake(FileSystemEventHandler):
    """watchdog calls this from its own thread: hop onto the loop to set the event."""

    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self.loop = loop
        self.event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Writes into a partial upload come thousands a second and change nothing yet.
        path = str(getattr(event, "dest_path", "") or event.src_path)
        if is_partial(os.path.basename(path)) or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.event.set)
