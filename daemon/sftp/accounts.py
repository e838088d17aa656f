"""A tenant's login account as the SFTP server sees it, and the directory it is looked up in."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Account:
    name: str  # tenant name == SFTP username
    root: Path  # the tenant's jail root on disk; holds upload/
    password_hash: str | None = field(repr=False)  # argon2id, or None: no password login
    authorized_keys: str = field(repr=False)  # OpenSSH authorized_keys text, may be ""
    disabled: bool
    allow_from: tuple[Network, ...] = ()  # when set, the only networks it may log in from

    def allows(self, peer: str) -> bool:
        if not self.allow_from:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow_from)


def parse_networks(text: str) -> tuple[Network, ...]:
    """`CIDR[,CIDR…]` (a bare address is a /32 or /128); raises ValueError naming the bad one."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR network: {item!r}") from None
    return tuple(networks)


class AccountDirectory(Protocol):
    def lookup(self, username: str) -> Account | None:
        """The account for this username, or None. Synchronous and possibly slow (a database):
        the server always calls it off the event loop."""
        ...

    def lifts_after(self, cursor: int | None) -> tuple[int, list[str]]:
        """Ban lifts an operator asked for (`user:NAME`, `address:ADDR`) since `cursor`, and
        the new cursor; None: none yet read (return the current cursor only). Called off the
        event loop, and only while someone is banned or paced."""
        ...
