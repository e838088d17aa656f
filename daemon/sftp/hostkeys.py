"""The server's host keys: generated once into the data directory, reused on every restart."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

import asyncssh
import structlog

from daemon import hostkeyfiles

log = structlog.get_logger(__name__)

# (file name, algorithm, key size), in the order of hostkeyfiles.HOST_KEY_FILES.
HOST_KEY_SPECS = (
    ("ssh_host_ed25519_key", "ssh-ed25519", None),
    ("ssh_host_rsa_key", "ssh-rsa", 3072),
)


def load_or_create_host_keys(directory: Path) -> list[asyncssh.SSHKey]:
    _private_dir(directory)
    return [_load_or_create(directory / name, alg, size) for name, alg, size in HOST_KEY_SPECS]


def host_key_fingerprints(directory: Path) -> list[str]:
    """The keys' fingerprints, the keys made first if need be (their public halves too)."""
    load_or_create_host_keys(directory)
    return hostkeyfiles.host_key_fingerprints(directory)


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(directory.stat().st_mode) != 0o700:
        directory.chmod(0o700)


def _load_or_create(path: Path, algorithm: str, key_size: int | None) -> asyncssh.SSHKey:
    if not path.exists():
        _create(path, algorithm, key_size)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("sftp.hostkey.permissions_fixed", path=str(path), mode=oct(mode))
        path.chmod(0o600)
    key: asyncssh.SSHKey = asyncssh.read_private_key(path)
    public = path.with_name(path.name + ".pub")
    if not public.exists():  # for operators comparing fingerprints with ssh-keygen -l
        public.write_bytes(key.export_public_key())
    return key


def _create(path: Path, algorithm: str, key_size: int | None) -> None:
    options = {"key_size": key_size} if key_size else {}
    key = asyncssh.generate_private_key(algorithm, comment="rosterdrop host key", **options)
    # Write under a temporary name and link it into place, so a concurrent start never sees
    # half a key and the first writer wins.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key.export_private_key())
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
            log.info("sftp.hostkey.created", path=str(path), fingerprint=key.get_fingerprint())
    finally:
        temp.unlink(missing_ok=True)
