"""Password hashes: argon2id, for tenants' SFTP passwords (sftp/credentials.py) and web users'
alike: one hasher, one dummy hash, one generator of the passwords handed out, so that web/ need
not depend on sftp/."""

from __future__ import annotations

import functools
import secrets
import sys

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from daemon.errors import ConfigError

MIN_PASSWORD_LENGTH = 12  # a web password a person chooses (generated ones are longer)
# Letters and digits a person can read back over the phone: no 0/O/o, 1/l/I.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105
PASSWORD_LENGTH = 20  # ~116 bits

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def generate_password() -> str:
    """A password rosterdrop hands out (a tenant's SFTP one)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


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


def read_password_stdin() -> str:
    """A password a person chose, from standard input (`--password-stdin`)."""
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password
