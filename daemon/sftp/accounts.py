"""A tenant's login account as the SFTP server sees it, and the directory it is looked up in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Account:
    name: str  # tenant name == SFTP username
    root: Path  # the tenant's jail root on disk; holds upload/
    password_hash: str | None = field(repr=False)  # argon2id, or None: no password login
    authorized_keys: str = field(repr=False)  # OpenSSH authorized_keys text, may be ""
    disabled: bool


class AccountDirectory(Protocol):
    def lookup(self, username: str) -> Account | None:
        """The account for this username, or None. Synchronous and possibly slow (a database):
        the server always calls it off the event loop."""
        ...
