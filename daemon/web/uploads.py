"""Files uploaded in the browser on their way to Process Import: the multipart body streamed
to disk within bounds, then the tenant's one pending upload (checked, waiting, expiring).

Layout, per tenant, under `<data_dir>/web-uploads/<tenant>/`: `files/` (the five files, as a
drop folder holds them: an interrupted claim puts them back there, intake.py), `check.json`
(the dry run) and `upload.json` (who, when, until when; written last: it makes the upload
pending). An upload being received lives in `.incoming-<token>/` until it is whole and checked;
`.check.lock` is locked while a check or a processing of the tenant runs, in any process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import structlog
from aiohttp import BodyPartReader, MultipartReader

from daemon import folders, uploadset
from daemon.config import DataPaths, WebSettings
from daemon.dryrun import DryRun, DryRunner
from daemon.errors import UploadRefused
from daemon.roster.entities import FILES

log = structlog.get_logger(__name__)

UPLOAD_FILES = len(FILES)  # the five; a sixth file part is refused
CHUNK_BYTES = 256 * 1024  # what one read of the body holds in memory, at most
MAX_FIELD_BYTES = 1024  # a form field that is not a file (the CSRF token)
# What a multipart body holds besides the files' bytes (boundaries, part headers, the token):
# a Content-Length past the bound by more than this is refused before a byte is read.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Checks (receiving the files, then the dry run) running at once in this process, all tenants.
MAX_CONCURRENT_CHECKS = 4
SWEEP_SECONDS = 60.0  # how often expired pending uploads are looked for
META = "upload.json"
CHECK = "check.json"
LOCK_FILE = ".check.lock"  # flocked while a check or processing of the tenant runs
FILES_DIR = "files"
_INCOMING = ".incoming-"


def utc_now() -> datetime:
    return datetime.now(UTC)


def size_text(count: int) -> str:
    """Bytes as people read them: "2 GiB", "1.5 MiB", "1,000 bytes"."""
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << power:
            return f"{count / (1 << power):.3g} {unit}"
    return f"{count:,} bytes"


@dataclass(frozen=True)
class Pending:
    """A tenant's checked upload, waiting for Process Import or Discard."""

    tenant: str
    token: str  # which upload a Process or Discard form is about
    uploaded_by: str
    uploaded_at: datetime
    expires_at: datetime | None  # None: upload_pending_minutes is 0, it never expires
    names: dict[str, str]  # the five names → the names the district's files had
    sizes: dict[str, int]
    dry_run: DryRun
    files: Path

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


@dataclass
class CheckSlots:
    """One check or processing per tenant at a time across every process that shares the
    data directory (`rosterdrop serve` and `rosterdrop web`, docs/web.md "Where it runs"): a
    non-blocking `flock` on `web-uploads/<tenant>/.check.lock`, held while it runs and freed by
    the kernel if the process dies. At most `limit` at a time in this process, all tenants."""

    root: Path  # <data_dir>/web-uploads
    limit: int = MAX_CONCURRENT_CHECKS
    _held: dict[str, int] = field(default_factory=dict)  # tenant → the descriptor locking it

    def take(self, tenant: str, user: str, now: datetime) -> None:
        if tenant in self._held:
            raise self._busy_error(tenant)
        if len(self._held) >= self.limit:
            raise UploadRefused(
                f"The Import Manager is checking {len(self._held)} uploads already (at most"
                f" {self.limit} at a time): try again in a minute.",
                status=503,
            )
        fd = _try_lock(self._lock_file(tenant))
        if fd is None:
            raise self._busy_error(tenant)
        # Who holds it, for the 409 another process gives; read only while the lock is held.
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"user": user, "since": now.isoformat()}).encode(), 0)
        self._held[tenant] = fd

    def give_back(self, tenant: str) -> None:
        fd = self._held.pop(tenant, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor frees the lock

    def busy(self) -> frozenset[str]:
        """The tenants this process checks or processes now."""
        return frozenset(self._held)

    @contextlib.contextmanager
    def idle(self, tenant: str) -> Iterator[bool]:
        """Whether no process checks or processes the tenant; while True, none can start."""
        fd = _try_lock(self._lock_file(tenant))
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)

    def _lock_file(self, tenant: str) -> Path:
        home = self.root / tenant
        home.mkdir(parents=True, exist_ok=True)
        return home / LOCK_FILE

    def _busy_error(self, tenant: str) -> UploadRefused:
        who, since = "someone", ""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            holder = json.loads((self.root / tenant / LOCK_FILE).read_text(encoding="utf-8"))
            who = str(holder["user"])
            since = f" (since {datetime.fromisoformat(holder['since']):%H:%M:%S} UTC)"
        return UploadRefused(
            f"{who} is already uploading or processing {tenant}'s files{since}: wait until"
            " that ends, then look at its result.",
            status=409,
        )


def _try_lock(path: Path) -> int | None:
    """A descriptor holding the exclusive lock of `path`, or None when another holds it (in
    any process, or this one through another descriptor: flock locks open files)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class UploadDesk:
    """What the upload pages work with: the pending uploads, the dry runs, the import worker."""

    paths: DataPaths
    settings: WebSettings
    dry_runs: DryRunner
    submit: Callable[[str, int], None]  # hands a received import to the daemon's worker
    clock: Callable[[], datetime] = utc_now
    slots: CheckSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = CheckSlots(self.paths.web_uploads)

    def folder(self, tenant: str) -> Path:
        return self.paths.web_uploads / tenant

    # -- receiving ---------------------------------------------------------------------------

    def incoming(self, tenant: str) -> Path:
        """A fresh folder for an upload being received (blocking)."""
        root = self.folder(tenant) / f"{_INCOMING}{secrets.token_hex(8)}"
        (root / FILES_DIR).mkdir(parents=True)
        return root

    async def receive(self, reader: MultipartReader, incoming: Path) -> dict[str, tuple[str, int]]:
        """Stream the remaining parts (the files) into `incoming`; the five names → (the
        name given, its size). Raises UploadRefused naming what is wrong."""
        received: dict[str, tuple[str, int]] = {}
        total = [0]
        parts = 0
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > UPLOAD_FILES or not isinstance(part, BodyPartReader):
                raise UploadRefused(f"Choose the five files, no more (at most {UPLOAD_FILES}).")
            if not part.filename:
                if await part.read_chunk(MAX_FIELD_BYTES):  # a field that is no file: not ours
                    raise UploadRefused(f"Unexpected form field {part.name!r}.")
                continue  # the file input, sent with nothing chosen
            name = _matched_name(part.filename)
            if name in received:
                raise UploadRefused(
                    f"{name} was chosen twice ({received[name][0]} and {part.filename}):"
                    " choose each of the five files once."
                )
            size = await self._write(part, incoming / FILES_DIR / name, name, total)
            received[name] = (part.filename, size)
        if not received:
            raise UploadRefused("No file was chosen: choose the five files, then Check files.")
        missing = [name for name in FILES if name not in received]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise UploadRefused(
                f"{_and(missing)} {verb} missing: choose all five files at once"
                f" ({_and(list(FILES))})."
            )
        return received

    async def _write(self, part: BodyPartReader, path: Path, name: str, total: list[int]) -> int:
        """One file, a chunk at a time (never whole in memory), within the bounds."""
        per_file, overall = self.settings.upload_max_file_bytes, self.settings.upload_max_bytes
        size = 0
        out: IO[bytes] = await asyncio.to_thread(path.open, "wb")
        try:
            while chunk := await part.read_chunk(CHUNK_BYTES):
                size += len(chunk)
                total[0] += len(chunk)
                if per_file and size > per_file:
                    raise UploadRefused(
                        f"{name} is larger than {size_text(per_file)}, the largest file the"
                        " Import Manager takes: upload it by SFTP instead.",
                        status=413,
                    )
                if overall and total[0] > overall:
                    raise UploadRefused(
                        f"The files are larger than {size_text(overall)} together (at"
                        f" {name}), more than the Import Manager takes at once: upload them"
                        " by SFTP instead.",
                        status=413,
                    )
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(_sync, out)
        finally:
            await asyncio.to_thread(out.close)
        return size

    async def check(self, tenant: str, incoming: Path) -> DryRun:
        # Choose Files takes Clever's five files, whatever the tenant's SIS sends to /upload.
        return await self.dry_runs.check(
            tenant, incoming / FILES_DIR, incoming / CHECK, input_format=uploadset.CLEVER
        )

    def install(
        self, tenant: str, incoming: Path, user: str, received: dict[str, tuple[str, int]]
    ) -> Pending:
        """Make a received, checked upload the tenant's pending one, in place of any older
        one (blocking). `upload.json` goes last: until it is there, nothing is pending."""
        now = self.clock()
        lifetime = self._lifetime()
        meta = {
            "token": secrets.token_urlsafe(16),
            "uploaded_by": user,
            "uploaded_at": now.isoformat(),
            "expires_at": (now + lifetime).isoformat() if lifetime else None,
            "names": {name: given for name, (given, _) in received.items()},
            "sizes": {name: size for name, (_, size) in received.items()},
        }
        self.remove(tenant)
        home = self.folder(tenant)
        os.replace(incoming / FILES_DIR, home / FILES_DIR)
        os.replace(incoming / CHECK, home / CHECK)
        folders.write_atomically(home / META, json.dumps(meta).encode())
        shutil.rmtree(incoming, ignore_errors=True)
        found = self.pending(tenant)
        if found is None:  # pragma: no cover - removed under us by a sweep of another node
            raise UploadRefused("The files went missing as they were saved: try again.", status=503)
        return found

    def _lifetime(self) -> timedelta | None:
        """How long a checked upload waits (None: until processed, discarded or replaced)."""
        minutes = self.settings.upload_pending_minutes
        return timedelta(minutes=minutes) if minutes else None

    # -- the pending upload --------------------------------------------------------------------

    def pending(self, tenant: str) -> Pending | None:
        """The tenant's pending upload (blocking); an expired or broken one is removed, unless
        a check or a processing of the tenant runs (a claim in progress moves the files away,
        and puts them back if it fails): then the sweep removes it later."""
        return self._read_pending(tenant, self._remove_if_idle)

    def _remove_if_idle(self, tenant: str) -> None:
        with self.slots.idle(tenant) as idle:
            if idle:
                self.remove(tenant)

    def _read_pending(self, tenant: str, tidy: Callable[[str], None]) -> Pending | None:
        home = self.folder(tenant)
        try:
            meta = json.loads((home / META).read_text(encoding="utf-8"))
            dry_run = DryRun.from_dict(json.loads((home / CHECK).read_text(encoding="utf-8")))
            found = Pending(
                tenant=tenant,
                token=str(meta["token"]),
                uploaded_by=str(meta["uploaded_by"]),
                uploaded_at=datetime.fromisoformat(meta["uploaded_at"]),
                expires_at=_moment(meta["expires_at"]),
                names=dict(meta["names"]),
                sizes=dict(meta["sizes"]),
                dry_run=dry_run,
                files=home / FILES_DIR,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("web: a pending upload could not be read", tenant=tenant, error=str(exc))
            tidy(tenant)
            return None
        if found.expires_at is not None and found.expires_at <= self.clock():
            log.info("web: pending upload expired", tenant=tenant, uploaded_by=found.uploaded_by)
            tidy(tenant)
            return None
        present = [(found.files / name).is_file() for name in found.names]
        if not all(present):
            if not any(present):
                tidy(tenant)  # processed, and the claim took the files: nothing waits
            # Some gone, some not: a claim cut short, whose recovery puts them back. Keep them.
            return None
        return found

    def remove(self, tenant: str) -> None:
        """Nothing pending for the tenant any more (blocking): the marker first."""
        home = self.folder(tenant)
        home.mkdir(parents=True, exist_ok=True)
        (home / META).unlink(missing_ok=True)
        (home / CHECK).unlink(missing_ok=True)
        shutil.rmtree(home / FILES_DIR, ignore_errors=True)

    def sweep(self) -> int:
        """Remove expired pending uploads, and the leftovers of uploads whose receiving was
        cut short (a restart), of every tenant no process checks now (holding its lock while
        at it, so none starts meanwhile). Returns how many tenants' uploads went."""
        removed = 0
        try:
            homes = [p for p in self.paths.web_uploads.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return 0
        for home in homes:
            with self.slots.idle(home.name) as idle:
                if not idle:
                    continue
                for leftover in home.glob(f"{_INCOMING}*"):
                    shutil.rmtree(leftover, ignore_errors=True)
                had = (home / META).exists()
                if had and self._read_pending(home.name, self.remove) is None:
                    removed += 1
        return removed


def _matched_name(given: str) -> str:
    """The one of the five names a file's name is, case-insensitively (as in the drop folder);
    the browser sends the name alone, anything else is refused."""
    name = given.lower()
    if name not in FILES or not given.isascii():
        raise UploadRefused(
            f"{given!r} is not one of the five files: their names are {_and(list(FILES))}"
            " (in any case)."
        )
    return name


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _sync(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())
