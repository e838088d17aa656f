"""Tenant passwords: argon2id hashes, their verification and the passwords operators hand out."""

from __future__ import annotations

import asyncssh

# One argon2id hasher and one generator for every password rosterdrop keeps: tenants' SFTP
# ones and web users'.
from daemon.passwords import dummy_hash, generate_password, hash_password, verify_password
from daemon.publickeys import MAX_KEY_CHARS

__all__ = ["dummy_hash", "generate_password", "hash_password", "public_key_line", "verify_password"]


def public_key_line(text: str) -> str:
    """One OpenSSH public key line, checked; raises ValueError naming what is wrong. The CLI's
    `tenant add-key` and the web's Setup page (handed it by the service) both check with it."""
    line = text.strip()
    if not line or "\n" in line:
        raise ValueError("give exactly one public key (one line of an .pub file)")
    if len(line) > MAX_KEY_CHARS:
        raise ValueError(f"a public key line is at most {MAX_KEY_CHARS} characters")
    try:
        asyncssh.import_authorized_keys(line)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"not an OpenSSH public key: {exc}") from None
    return line
