"""Password hashes: argon2id, for tenants' SFTP passwords (sftp/credentials.py) and web users'
alike: one hasher, one dummy hash, so that web/ need not depend on sftp/."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12  # a web password a person chooses (generated ones are longer)

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(hash: str, password: str) -> bool:
    try:
        return _hasher.verify(hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, verified for unknown users so they cost what real ones do."""
    return _hasher.hash(secrets.token_urlsafe(32))
