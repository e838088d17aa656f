"""Password hashes: argon2id, the same parameters and checks as the SFTP passwords.

daemon/sftp/credentials.py hashes tenants' SFTP passwords with the same hasher; the web's
accounts use this module so that web/ never depends on sftp/ (a test keeps the two in step).
"""

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
