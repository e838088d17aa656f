"""The SFTP drop folder: an asyncssh server that jails each tenant and publishes whole uploads."""

from __future__ import annotations

from daemon.sftp.accounts import Account, AccountDirectory, parse_networks
from daemon.sftp.credentials import (
    generate_password,
    hash_password,
    public_key_line,
    verify_password,
)
from daemon.sftp.events import UploadEvent
from daemon.sftp.hostkeys import host_key_fingerprints, load_or_create_host_keys
from daemon.sftp.server import SftpError, SftpServer

__all__ = [
    "Account",
    "AccountDirectory",
    "SftpError",
    "SftpServer",
    "UploadEvent",
    "generate_password",
    "hash_password",
    "host_key_fingerprints",
    "load_or_create_host_keys",
    "parse_networks",
    "public_key_line",
    "verify_password",
]
