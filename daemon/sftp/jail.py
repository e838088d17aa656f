"""A tenant's view of the disk: SFTP paths mapped under its root and never resolved outside it."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from asyncssh import SFTPInvalidFilename, SFTPPermissionDenied

from daemon.spool import is_partial

UPLOAD_DIR = "upload"
# The validate-only drop folder beside /upload (daemon/check/): same rules, never imported.
CHECK_DIR = "check"
# Where a check's answer is written (by rosterdrop only): clients read and delete there.
RESULTS_DIR = "results"
DROP_DIRS = (UPLOAD_DIR, CHECK_DIR)
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
        self.drop_dirs = tuple(self.root / name for name in DROP_DIRS)
        self._real_root = os.path.realpath(self.root)
        self._real_drops = {os.path.join(self._real_root, name) for name in DROP_DIRS}
        self._real_results = os.path.join(self._real_root, CHECK_DIR, RESULTS_DIR)

    def ensure_upload_dir(self) -> None:
        """/upload, and /check with its results folder, as every tenant has them."""
        os.makedirs(self.upload_dir, mode=0o750, exist_ok=True)
        os.makedirs(self.root / CHECK_DIR / RESULTS_DIR, mode=0o750, exist_ok=True)

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
        """A path a client may create, replace, rename or remove: a file directly in /upload
        or /check."""
        target = self.locate(path)
        if str(target.host.parent) not in self._real_drops or str(target.host) in (
            self._real_results,
            *self._real_drops,
        ):
            raise SFTPPermissionDenied(
                f"files can only be written directly in {HOME} or /{CHECK_DIR}"
            )
        return target

    def removable(self, path: bytes) -> Target:
        """A path a client may remove: a writable one, or a check's result (rosterdrop writes
        them; the client fetches them and may delete them, never write them)."""
        target = self.locate(path)
        if str(target.host.parent) == self._real_results and target.name:
            return target
        return self.writable(path)

    def event_path(self, target: Target) -> Path:
        """The path events report: under the root as configured, in the folder it is in."""
        return self.root / os.path.relpath(target.host, self._real_root)

    def _inside(self, real: str) -> bool:
        return real == self._real_root or real.startswith(self._real_root + os.sep)
