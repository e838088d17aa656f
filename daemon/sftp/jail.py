"""A tenant's view of the disk: SFTP paths mapped under its root and never resolved outside it."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from asyncssh import SFTPInvalidFilename, SFTPPermissionDenied

from daemon.spool import is_partial

UPLOAD_DIR = "upload"
# Relative paths start in /upload, as with OpenSSH's `internal-sftp -d /upload`: a client's
# plain `put students.csv` lands where the watcher looks.
HOME = "/" + UPLOAD_DIR


@dataclass(frozen=True)
class Target:
    """One path a client named: its normalised SFTP form and the entry on disk."""

    vpath: str  # what the client sees, e.g. /upload/students.csv
    host: Path  # parent resolved and checked inside the root; the last name itself not followed

    @property
    def name(self) -> str:
        return self.host.name


class Jail:
    """Maps SFTP paths under one root; refuses anything whose real location is outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.upload_dir = self.root / UPLOAD_DIR  # as configured: what events report
        self._real_root = os.path.realpath(self.root)
        self._real_upload = os.path.join(self._real_root, UPLOAD_DIR)

    def ensure_upload_dir(self) -> None:
        os.makedirs(self.upload_dir, mode=0o750, exist_ok=True)

    @staticmethod
    def normalize(path: bytes) -> str:
        text = os.fsdecode(path)
        if "\x00" in text:
            raise SFTPInvalidFilename("file names cannot contain NUL")
        if not text.startswith("/"):
            text = f"{HOME}/{text}"
        # normpath clamps ".." at "/", as a chroot does, and keeps a leading "//": drop it.
        return "/" + posixpath.normpath(text).lstrip("/")

    def locate(self, path: bytes) -> Target:
        vpath = self.normalize(path)
        if vpath == "/":
            return Target(vpath, Path(self._real_root))
        if any(is_partial(part) for part in vpath.split("/")):
            # Hidden names belong to uploads in progress; no client may touch them.
            raise SFTPPermissionDenied("reserved file name")
        parent, name = posixpath.split(vpath)
        real_parent = os.path.realpath(os.path.join(self._real_root, parent.lstrip("/")))
        if not self._inside(real_parent):
            raise SFTPPermissionDenied("outside your folder")
        return Target(vpath, Path(real_parent, name))

    def follow(self, target: Target) -> Path:
        """The host path to read through: a symlink is followed only when it stays inside."""
        if not target.host.is_symlink():
            return target.host
        real = os.path.realpath(target.host)
        if not self._inside(real):
            raise SFTPPermissionDenied("outside your folder")
        return Path(real)

    def writable(self, path: bytes) -> Target:
        """A path a client may create, replace, rename or remove: a file directly in /upload."""
        target = self.locate(path)
        if str(target.host.parent) != self._real_upload or target.vpath == HOME:
            raise SFTPPermissionDenied(f"files can only be written directly in {HOME}")
        return target

    def event_path(self, target: Target) -> Path:
        return self.upload_dir / target.name

    def _inside(self, real: str) -> bool:
        return real == self._real_root or real.startswith(self._real_root + os.sep)
