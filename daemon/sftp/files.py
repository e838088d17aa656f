"""Files behind SFTP handles: uploads kept under a hidden name until published whole, and reads."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path

from asyncssh import SFTPFailure

from daemon.sftp.tenants import Tenant
from daemon.spool import partial_name

FILE_MODE = 0o640  # whatever a client asks for: readable by the daemon's group, never executable


class Reader:
    """A file opened for reading only (clients verify or resume); reads are short preads."""

    __slots__ = ("fd",)

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        self.fd = fd

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class Upload:
    """A file opened for writing. Writes land in a hidden file in the same directory, which is
    renamed over the final name only when the client closes the handle; otherwise deleted."""

    def __init__(
        self, tenant: Tenant, final: Path, *, max_bytes: int, append: bool, keep_existing: bool
    ) -> None:
        """Create the hidden file, with the current content when the client did not ask to
        truncate. Blocking: construct it in a thread, then call admit() on the loop."""
        self.tenant = tenant
        self.final = final
        self.temp = final.with_name(partial_name(final.name))
        self.failure: str | None = None
        self.received = 0  # bytes the client sent, for the metrics
        self._max_bytes = max_bytes
        self._append = append
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self.temp, flags, FILE_MODE)
        try:
            os.fchmod(self._fd, FILE_MODE)  # the umask may have taken bits off
            self.size = _copy_existing(final, self._fd, max_bytes) if keep_existing else 0
        except BaseException:
            self.discard()
            raise

    def admit(self) -> None:
        """Account for content copied from an existing file; on the loop, before any write."""
        copied, self.size = self.size, 0
        if copied:
            self._resize(copied)

    def write(self, offset: int, data: bytes) -> int:
        if self.failure:
            raise SFTPFailure(self.failure)
        if self._append:
            offset = self.size
        end = offset + len(data)
        if end > self.size:
            self._resize(end)
        try:
            done = os.pwrite(self._fd, data, offset)
            while done < len(data):  # only on a nearly full disk
                done += os.pwrite(self._fd, data[done:], offset + done)
        except OSError as exc:
            self._reject(f"could not write the file: {exc.strerror}")
        self.received += len(data)
        return len(data)

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def truncate(self, size: int) -> None:
        if self.failure:
            raise SFTPFailure(self.failure)
        if size > self.size:
            self._resize(size)
        else:
            self.tenant.shrink(self.size - size)
            self.size = size
        os.ftruncate(self._fd, size)

    def set_times(self, atime: float, mtime: float) -> None:
        os.utime(self._fd, (atime, mtime))

    def stat(self) -> os.stat_result:
        return os.fstat(self._fd)

    def sync(self) -> None:
        """Blocking: run it in a thread."""
        os.fsync(self._fd)

    def publish(self) -> None:
        """Make the upload durable and give it its final name. Blocking: run it in a thread."""
        fd, self._fd = self._fd, -1
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(self.temp, self.final)
        # Published from here on: a failing directory fsync (EIO) only leaves the new name less
        # certain to survive a crash, and reporting a failure would tell the client a lie.
        with contextlib.suppress(OSError):
            fsync_directory(self.final.parent)

    def discard(self) -> None:
        """Throw the upload away. Blocking (a big unlink takes time): run it in a thread."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        self.temp.unlink(missing_ok=True)

    def _resize(self, end: int) -> None:
        if end > self._max_bytes:
            self._reject(f"file is larger than the {_human(self._max_bytes)} limit per file")
        if not self.tenant.grow(end - self.size):
            self._reject("your folder is over its storage quota")
        self.size = end

    def _reject(self, reason: str) -> None:
        """Fail this upload for good: later writes and the close report the reason, and the
        close (or the end of the session) deletes the file, off the event loop."""
        self.failure = reason
        self.tenant.shrink(self.size)
        self.size = 0
        raise SFTPFailure(reason)


def fsync_directory(directory: Path) -> None:
    """Make a rename in this directory survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_existing(final: Path, fd: int, max_bytes: int) -> int:
    try:
        source = os.open(final, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return 0  # nothing there, or a symlink: an upload replaces it, never follows it
        raise
    with open(source, "rb") as src, open(fd, "wb", closefd=False) as dst:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode):
            return 0
        if info.st_size > max_bytes:  # refuse before copying what could never be kept
            raise SFTPFailure(f"file is larger than the {_human(max_bytes)} limit per file")
        shutil.copyfileobj(src, dst, 1 << 20)
        return dst.tell()


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} GiB"
