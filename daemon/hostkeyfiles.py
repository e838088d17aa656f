"""The SFTP server's host key files and their fingerprints, read from the public halves: for
sftp/ (which makes the keys) and web/ (which shows them) alike, without asyncssh."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

# (file name, label printed with the fingerprint); ed25519 first because clients that support
# it prefer it, RSA for older SIS appliances that know nothing else.
HOST_KEY_FILES = (
    ("ssh_host_ed25519_key", "ED25519"),
    ("ssh_host_rsa_key", "RSA"),
)


def public_key_fingerprint(line: str) -> str:
    """`SHA256:…` of one OpenSSH public key line, as `ssh-keygen -l` prints it."""
    fields = line.split()
    if len(fields) < 2:
        raise ValueError("not an OpenSSH public key line")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except binascii.Error:
        raise ValueError("not an OpenSSH public key line") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def host_key_fingerprints(directory: Path) -> list[str]:
    """`LABEL SHA256:…` of each host key whose public half is in `directory` (written when
    the key is made); a key not made yet is left out."""
    found = []
    for name, label in HOST_KEY_FILES:
        try:
            line = (directory / f"{name}.pub").read_text(encoding="ascii")
        except (FileNotFoundError, UnicodeDecodeError):
            continue
        found.append(f"{label} {public_key_fingerprint(line)}")
    return found
