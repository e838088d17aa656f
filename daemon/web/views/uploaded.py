"""The five files of an import as uploaded: listed on its page and downloaded, byte for byte,
from its folder (the spool while it runs or waits, the archive after) until retention removes
them. Only the five Clever names are served, only from under the data directory's spool and
archive, and never through a symlink."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from daemon import uploadset
from daemon.config import DataPaths
from daemon.errors import NotFound
from daemon.oneroster.files import ZIP_KEY
from daemon.roster.entities import FILES
from daemon.roster.outcome import ImportReport
from daemon.store import imports, users
from daemon.store.imports import ImportRecord
from daemon.store.users import User
from daemon.web.context import WebContext, address, context

# A download is read and sent this much at a time: a 1 GiB file never sits in memory.
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class UploadedFile:
    name: str  # the Clever name, the route's (`students.csv`)
    sent_as: str  # the name as uploaded (`Students.csv`)
    size: int
    secret_columns: tuple[str, ...]  # columns named like secrets, in the file as sent


@dataclass(frozen=True)
class UploadedFiles:
    files: list[UploadedFile]
    expired: bool  # the files were kept, and retention has removed them


def kept_names(record: ImportRecord) -> list[str]:
    """The names an import's files are listed and downloaded by: Clever's five, or a OneRoster
    set's (its manifest, the files it provides, or `zip` for a set sent as one .zip)."""
    if record.source_format != uploadset.ONEROSTER:
        return list(FILES)
    return [k for k, v in record.files.items() if isinstance(v, dict) and "size" in v]


def _sent_as(name: str, sent_as: str) -> bool:
    """Whether `sent_as` is a name the set was matched by for `name` (never a path)."""
    if os.sep in sent_as:
        return False
    if name == ZIP_KEY:
        return sent_as.lower().endswith(".zip")
    return sent_as.lower() == name.lower()


def uploaded_files(paths: DataPaths, record: ImportRecord, report: ImportReport) -> UploadedFiles:
    """What the import's page lists (blocking: one look at the folder)."""
    folder = _folder(paths, record)
    if folder is None:
        return UploadedFiles([], expired=record.archived_at is not None)
    secrets: dict[str, list[str]] = {}
    for problem in report.problems:
        if problem.code == "secret_column" and problem.file and problem.column:
            secrets.setdefault(problem.file, []).append(problem.column)
    found = []
    for name in kept_names(record):
        entry = record.files.get(name)
        if isinstance(entry, dict) and "size" in entry:  # claimed: the manifest's size
            found.append(
                UploadedFile(
                    name, str(entry["name"]), int(entry["size"]), tuple(secrets.get(name, ()))
                )
            )
    return UploadedFiles(found, expired=False)


def _folder(paths: DataPaths, record: ImportRecord) -> Path | None:
    """The import's folder, if it is still there and where this process keeps imports."""
    if not record.files_dir:
        return None
    real = Path(record.files_dir).resolve()
    roots = (paths.spool.resolve(), paths.archive.resolve())
    if not real.is_dir() or not any(real.is_relative_to(root) for root in roots):
        return None
    return real


def _open(paths: DataPaths, record: ImportRecord, name: str) -> tuple[BinaryIO, int]:
    """The file `name` (one of `kept_names`) of the import, opened, and its size."""
    entry = record.files.get(name)
    folder = _folder(paths, record)
    if folder is None or not isinstance(entry, dict) or "size" not in entry:
        raise NotFound(f"the files of import #{record.id} are not kept (any more)")
    sent_as = str(entry["name"])
    if not _sent_as(name, sent_as):
        raise NotFound(f"import #{record.id} has no file {name}")
    try:
        fd = os.open(folder / sent_as, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:  # ELOOP: a symlink put there; ENOENT: archived or expired meanwhile
        raise NotFound(f"import #{record.id}'s {name} cannot be read: {exc}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotFound(f"import #{record.id}'s {name} is not a file")
    return os.fdopen(fd, "rb"), info.st_size


def open_for(ctx: WebContext, record: ImportRecord, name: str) -> tuple[BinaryIO, int]:
    """Opened from where the import's files are now; an import that ends while we look has
    moved them from the spool into the archive, so its record is read once more."""
    paths = ctx.pipeline.paths
    try:
        return _open(paths, record, name)
    except NotFound:
        with ctx.db.read() as conn:
            fresh = imports.get(conn, record.id)
        if fresh.files_dir == record.files_dir:
            raise
        return _open(paths, fresh, name)


def audit_download(
    ctx: WebContext, user: User, record: ImportRecord, name: str, size: int, where: str
) -> None:
    with ctx.db.write() as conn:
        users.audit(
            conn, user_name=user.name, action="files_downloaded", now=ctx.clock(),
            tenant_id=record.tenant_id, import_id=record.id, detail=f"{name} ({size:,} bytes)",
            address=where,
        )  # fmt: skip


async def download(request: web.Request, user: User, record: ImportRecord) -> web.StreamResponse:
    """Stream the file of the route's `name`, as it was sent, as an attachment."""
    ctx = context(request)
    name = request.match_info["name"]
    names = kept_names(record)
    if name not in names:
        raise NotFound(f"no file {name!r}: the files are {', '.join(names)}")
    handle, size = await asyncio.to_thread(open_for, ctx, record, name)
    zipped = name == ZIP_KEY
    try:
        await asyncio.to_thread(audit_download, ctx, user, record, name, size, address(request))
        response = web.StreamResponse(
            headers={
                # no charset: the bytes are as sent, whatever they are
                "Content-Type": "application/zip" if zipped else "text/csv",
                "Content-Disposition": (
                    f'attachment; filename="import-{record.id}-{"set.zip" if zipped else name}"'
                ),
            }
        )
        response.content_length = size
        await response.prepare(request)
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            await response.write(chunk)
        await response.write_eof()
    finally:
        handle.close()
    return response
