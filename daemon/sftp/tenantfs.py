"""One SFTP session of a tenant: every request mapped into its jail, uploads published whole."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from asyncssh import (
    SFTPAttrs,
    SFTPFailure,
    SFTPName,
    SFTPPermissionDenied,
    SFTPServer,
    SFTPVFSAttrs,
    SSHServerChannel,
)
from asyncssh.constants import FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_TRUNC, FXF_WRITE

from daemon.config import SftpSettings
from daemon.metrics import SFTP_BYTES, SFTP_UPLOADS
from daemon.sftp.events import EventSink, UploadEvent, UploadKind
from daemon.sftp.files import Reader, Upload, fsync_directory
from daemon.sftp.jail import HOME, Jail, Target
from daemon.sftp.tenants import Tenant, Usage, measure_usage
from daemon.spool import is_partial

# Enough for any real client (they keep a handful open), few enough that no tenant can run the
# daemon out of file descriptors.
MAX_OPEN_FILES_PER_SESSION = 64
# OpenSSH's sftp-server answers at most this much per read (SFTP_MAX_READ_LENGTH): a read asked
# for 4 GiB would otherwise be one allocation and one blocking pread on the event loop.
MAX_READ_BYTES = 255 << 10
# What statvfs shows a tenant: its quota in blocks of this size.
STATVFS_BLOCK_BYTES = 4096
NAME_MAX = 255


@dataclass(frozen=True)
class SessionContext:
    """What a session needs to know about its tenant and connection."""

    jail: Jail
    tenant: Tenant
    settings: SftpSettings
    holdings: Sequence[Path]  # the tenant's import folders (spool, archive): in its quota too
    emit: EventSink
    upload_ended: Callable[[], None]
    stopping: Callable[[], bool]
    log: structlog.stdlib.BoundLogger


class TenantSftp(SFTPServer):
    def __init__(self, chan: SSHServerChannel[bytes], context: SessionContext) -> None:
        super().__init__(chan)  # no chroot: paths are mapped by our Jail, which checks symlinks
        self._ctx = context
        self._jail = context.jail
        self._uploads: set[Upload] = set()
        self._open_files = 0
        self._ending = False

    @property
    def uploads_open(self) -> int:
        return len(self._uploads)

    def session_ending(self) -> None:
        """The session is going away: handles still open now were never closed by the client."""
        self._ending = True

    # -- names and attributes -------------------------------------------------------------

    def format_user(self, uid: int | None) -> str:
        return self._ctx.tenant.name

    def format_group(self, gid: int | None) -> str:
        return self._ctx.tenant.name

    def realpath(self, path: bytes) -> bytes:
        return os.fsencode(self._jail.normalize(path))

    def stat(self, path: bytes) -> os.stat_result:
        return os.stat(self._jail.follow(self._jail.locate(path)))

    def lstat(self, path: bytes) -> os.stat_result:
        return os.lstat(self._jail.locate(path).host)

    def fstat(self, file_obj: object) -> os.stat_result:
        return _file(file_obj).stat()

    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        target = self._jail.locate(path)
        info = os.lstat(target.host)
        if stat.S_ISDIR(info.st_mode):
            return  # clients preserving times on /upload: nothing to do, nothing to refuse
        target = self._jail.writable(path)
        if not stat.S_ISREG(info.st_mode):
            raise SFTPPermissionDenied("only files can be changed")
        if attrs.size is not None and attrs.size != info.st_size:
            raise SFTPPermissionDenied("a file can be resized only through an open handle")
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(target.host, (attrs.atime, attrs.mtime), follow_symlinks=False)
        # Permissions and owners are accepted and ignored: files stay FILE_MODE.

    lsetstat = setstat  # setstat never follows a link either

    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        if not isinstance(file_obj, Upload):
            raise SFTPPermissionDenied("file is open for reading only")
        if attrs.size is not None:
            file_obj.truncate(attrs.size)
        if attrs.atime is not None and attrs.mtime is not None:
            file_obj.set_times(attrs.atime, attrs.mtime)

    async def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        target = self._jail.locate(path)
        directory = self._jail.follow(target)
        for name, info in await asyncio.to_thread(_list_directory, directory, target.vpath == "/"):
            yield SFTPName(os.fsencode(name), attrs=SFTPAttrs.from_local(info))

    async def statvfs(self, path: bytes) -> os.statvfs_result | SFTPVFSAttrs:
        folder = self._jail.follow(self._jail.locate(path))
        if self._ctx.tenant.quota <= 0:
            return await asyncio.to_thread(os.statvfs, folder)
        await self._measure()
        return self._quota_view()

    async def fstatvfs(self, file_obj: object) -> os.statvfs_result | SFTPVFSAttrs:
        return await self.statvfs(os.fsencode(HOME))

    def _quota_view(self) -> SFTPVFSAttrs:
        """The tenant's quota as a file system of its own: the host's disk is none of its
        business, and a client that checks free space first sees the limit that applies."""
        tenant, block = self._ctx.tenant, STATVFS_BLOCK_BYTES
        free = max(0, tenant.quota - tenant.used) // block
        files = self._ctx.settings.max_files_per_tenant
        ffree = max(0, files - tenant.usage.files) if files else 0
        return SFTPVFSAttrs(
            block, block, tenant.quota // block, free, free, files, ffree, ffree, 0, 0, NAME_MAX
        )

    # -- files ----------------------------------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> Reader | Upload:
        if self._open_files >= MAX_OPEN_FILES_PER_SESSION:
            raise SFTPFailure("too many open files in this session")
        tenant, cap = self._ctx.tenant, self._ctx.settings.max_open_files_per_tenant
        if cap and tenant.open_files >= cap:
            raise SFTPFailure(f"too many open files for this account (at most {cap})")
        # Counted before the first await: sessions opening at once must not all pass the cap.
        self._open_files += 1
        tenant.open_files += 1
        try:
            if pflags & FXF_WRITE:
                return await self._open_upload(path, pflags)
            return Reader(self._jail.follow(self._jail.locate(path)))
        except BaseException:
            self._open_files -= 1
            tenant.open_files -= 1
            raise

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        return _file(file_obj).read(offset, min(size, MAX_READ_BYTES))

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, Upload):
            raise SFTPPermissionDenied("file is open for reading only")
        return file_obj.write(offset, data)

    async def fsync(self, file_obj: object) -> None:
        if isinstance(file_obj, Upload):
            await asyncio.to_thread(file_obj.sync)

    async def close(self, file_obj: object) -> None:
        self._open_files -= 1
        self._ctx.tenant.open_files -= 1
        if isinstance(file_obj, Reader):
            file_obj.close()
        elif not isinstance(file_obj, Upload):
            raise SFTPFailure("not a file handle")
        elif self._ending:
            await self._discard(file_obj, "aborted")  # never raise here: asyncssh is cleaning up
        elif file_obj.failure:
            await self._discard(file_obj, "rejected")
            raise SFTPFailure(file_obj.failure)
        else:
            await self._publish(file_obj)

    # -- names ----------------------------------------------------------------------------

    async def remove(self, path: bytes) -> None:
        target = self._jail.removable(path)
        if stat.S_ISDIR(os.lstat(target.host).st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder")
        await asyncio.to_thread(os.unlink, target.host)
        self._emit("removed", target)

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        # Replaces an existing destination atomically, as posix-rename does: WinSCP uploads to
        # name.filepart and renames it over the old file; no client relies on a refusal.
        source = self._jail.writable(oldpath)
        dest = self._jail.writable(newpath)
        if stat.S_ISDIR(os.lstat(source.host).st_mode):
            raise SFTPPermissionDenied("folders cannot be renamed")
        if dest.host.is_dir() and not dest.host.is_symlink():
            raise IsADirectoryError(errno.EISDIR, "destination is a folder")
        if source.host != dest.host:
            await asyncio.to_thread(_replace, source.host, dest.host)
            self._emit("renamed", dest)

    posix_rename = rename

    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        # One flat drop folder: nothing to create. An existing folder answers "exists", which
        # clients that create each path component (curl --ftp-create-dirs) accept.
        if self._jail.locate(path).host.is_dir():
            raise FileExistsError(errno.EEXIST, "folder exists")
        raise SFTPPermissionDenied(f"folders cannot be created; upload files into {HOME}")

    def rmdir(self, path: bytes) -> None:
        raise SFTPPermissionDenied("folders cannot be removed")

    def readlink(self, path: bytes) -> bytes:
        raise SFTPPermissionDenied("links are not supported")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise SFTPPermissionDenied("links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise SFTPPermissionDenied("links are not allowed")

    async def exit(self) -> None:
        self._ending = True
        for upload in list(self._uploads):  # asyncssh closes them first; this is a backstop
            await self._discard(upload, "aborted")

    # -- uploads --------------------------------------------------------------------------

    async def _open_upload(self, path: bytes, pflags: int) -> Upload:
        target = self._jail.writable(path)
        try:
            existing: os.stat_result | None = os.lstat(target.host)
        except FileNotFoundError:
            existing = None
        if existing is None and not pflags & FXF_CREAT:
            raise FileNotFoundError(errno.ENOENT, "no such file")
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder")
        if existing is not None and pflags & FXF_CREAT and pflags & FXF_EXCL:
            raise FileExistsError(errno.EEXIST, "file exists")
        if self._ctx.stopping():
            raise SFTPFailure("the server is shutting down; upload again in a minute")
        tenant = self._ctx.tenant
        self._admit_upload(await self._measure(), new_file=existing is None)
        upload = await asyncio.to_thread(
            Upload,
            tenant,
            target.host,
            max_bytes=self._ctx.settings.max_file_bytes,
            append=bool(pflags & FXF_APPEND),
            keep_existing=existing is not None and not pflags & FXF_TRUNC,
        )
        self._uploads.add(upload)
        tenant.upload_started(upload.final.parent.name)
        tenant.temp_names.add(upload.temp.name)
        self._emit_upload("started", upload)
        try:
            upload.admit()
        except SFTPFailure:
            await self._discard(upload, "rejected")
            raise
        return upload

    async def _measure(self) -> Usage:
        tenant = self._ctx.tenant
        skip = frozenset(tenant.temp_names)
        jail = self._jail
        usage = await asyncio.to_thread(
            measure_usage, jail.root, jail.drop_dirs, self._ctx.holdings, skip
        )
        tenant.measured(usage)
        return usage

    def _admit_upload(self, usage: Usage, *, new_file: bool) -> None:
        """Refuse an upload the tenant's limits leave no room for, before any byte is kept."""
        settings, tenant = self._ctx.settings, self._ctx.tenant
        if tenant.quota > 0 and tenant.used >= tenant.quota:
            raise SFTPFailure("your folder is over its storage quota (archived uploads count)")
        files = settings.max_files_per_tenant
        if new_file and files and usage.files >= files:
            raise SFTPFailure(f"too many files in your folder (at most {files}); remove some")
        sets = settings.max_sets_per_hour
        if sets and usage.recent_sets >= sets:
            raise SFTPFailure(
                f"too many sets handed in within the last hour ({usage.recent_sets}, at most"
                f" {sets}); upload again later"
            )

    async def _publish(self, upload: Upload) -> None:
        try:
            await asyncio.to_thread(upload.publish)
        except OSError as exc:
            await self._discard(upload, "rejected")
            raise SFTPFailure(f"could not save the file: {exc.strerror}") from None
        self._forget(upload)
        upload.tenant.published(upload.size)
        SFTP_UPLOADS.labels(result="published").inc()
        SFTP_BYTES.inc(upload.received)
        self._ctx.log.info("sftp.upload.published", file=upload.final.name, bytes=upload.size)
        self._emit_upload("published", upload)

    async def _discard(self, upload: Upload, result: str) -> None:
        try:
            await asyncio.to_thread(upload.discard)
        except OSError as exc:
            self._ctx.log.error("sftp.upload.discard_failed", file=str(upload.temp), error=str(exc))
        self._forget(upload)
        upload.tenant.shrink(upload.size)
        SFTP_UPLOADS.labels(result=result).inc()
        SFTP_BYTES.inc(upload.received)
        self._ctx.log.warning(
            f"sftp.upload.{result}", file=upload.final.name, reason=upload.failure or "not closed"
        )
        self._emit_upload("aborted", upload)

    def _forget(self, upload: Upload) -> None:
        self._uploads.discard(upload)
        upload.tenant.upload_ended(upload.final.parent.name)
        upload.tenant.temp_names.discard(upload.temp.name)
        self._ctx.upload_ended()

    def _emit(self, kind: UploadKind, target: Target) -> None:
        self._ctx.emit(UploadEvent(self._ctx.tenant.name, kind, self._jail.event_path(target)))

    def _emit_upload(self, kind: UploadKind, upload: Upload) -> None:
        path = self._jail.event_path(Target("", upload.final))
        self._ctx.emit(UploadEvent(self._ctx.tenant.name, kind, path))


def _file(file_obj: object) -> Reader | Upload:
    if not isinstance(file_obj, Reader | Upload):
        raise SFTPFailure("not a file handle")
    return file_obj


def _list_directory(directory: Path, top: bool) -> list[tuple[str, os.stat_result]]:
    here = os.stat(directory)
    # Above the root there is nothing to show: ".." of "/" is "/" itself.
    entries = [(".", here), ("..", here if top else os.stat(directory.parent))]
    with os.scandir(directory) as scan:
        for entry in scan:
            if not is_partial(entry.name):
                entries.append((entry.name, entry.stat(follow_symlinks=False)))
    return entries


def _replace(source: Path, dest: Path) -> None:
    os.replace(source, dest)
    fsync_directory(dest.parent)
