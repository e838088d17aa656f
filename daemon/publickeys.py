"""A tenant's OpenSSH public keys as the Setup page and `tenant add-key` keep them: read
(type, fingerprint, comment) without asyncssh, added once, removed by fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import shlex
from dataclasses import dataclass

from daemon.errors import ConfigError

# An RSA key of 16,384 bits is about 2,800 characters, options and comment included:
# anything longer is not a key a district pastes.
MAX_KEY_CHARS = 8192
# The SFTP server reads every key of a tenant at each of its logins.
MAX_KEYS_PER_TENANT = 50


@dataclass(frozen=True)
class PublicKey:
    line: str
    kind: str  # ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, …
    fingerprint: str  # SHA256:… as `ssh-keygen -l` prints it
    comment: str


def read_key(line: str) -> PublicKey:
    """One authorized_keys line, whatever options come before the key (`from="…" ssh-…`)."""
    try:
        fields = shlex.split(line, posix=False)
    except ValueError:
        fields = line.split()
    for at, kind in enumerate(fields[:-1]):
        blob = _blob(fields[at + 1])
        if blob is not None and _leading_string(blob) == kind.encode():
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
            comment = " ".join(fields[at + 2 :])
            return PublicKey(line, kind, f"SHA256:{digest}", comment)
    raise ConfigError("not an OpenSSH public key line")


def read_keys(authorized_keys: str) -> list[PublicKey]:
    return [read_key(line) for line in _lines(authorized_keys)]


def with_key(authorized_keys: str, line: str) -> str:
    """The keys with `line` (already checked by the SFTP package) added once."""
    if len(line) > MAX_KEY_CHARS:
        raise ConfigError(f"a public key line is at most {MAX_KEY_CHARS} characters")
    keys = _lines(authorized_keys)
    if line not in keys:
        if len(keys) >= MAX_KEYS_PER_TENANT:
            raise ConfigError(
                f"a tenant has at most {MAX_KEYS_PER_TENANT} public keys: remove one first"
            )
        keys.append(line)
    return "\n".join(keys) + "\n"


def without_key(authorized_keys: str, fingerprint: str) -> str:
    kept = [k for k in read_keys(authorized_keys) if k.fingerprint != fingerprint]
    return "".join(f"{k.line}\n" for k in kept)


def _lines(authorized_keys: str) -> list[str]:
    return [k.strip() for k in authorized_keys.splitlines() if k.strip()]


def _blob(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _leading_string(blob: bytes) -> bytes:
    """The key type every OpenSSH key blob begins with (a uint32 length, then the name)."""
    size = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + size] if 0 < size <= len(blob) - 4 else b""
