"""Tenant passwords: argon2id hashes, their verification and the passwords operators hand out."""

from __future__ import annotations

import functools
import secrets

import asyncssh
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Letters and digits a person can read back over the phone: no 0/O/o, 1/l/I.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105
PASSWORD_LENGTH = 20  # ~116 bits

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(hash: str, password: str) -> bool:
    try:
        return _hasher.verify(hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, verified for unknown users so they cost what real ones do."""
    return _hasher.hash(secrets.token_urlsafe(32))


def public_key_line(text: str) -> str:
    """One OpenSSH public key line, checked; raises ValueError naming what is wrong."""
    line = text.strip()
    if not line or "\n" in line:
        raise ValueError("give exactly one public key (one line of an .pub file)")
    try:
        asyncssh.import_authorized_keys(line)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"not an OpenSSH public key: {exc}") from None
    return line
