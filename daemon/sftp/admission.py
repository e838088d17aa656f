"""Who may start a login: unauthenticated connections bounded in total and per source address
(OpenSSH's MaxStartups and PerSourceMaxStartups), and a reserve of file descriptors kept for
the daemon's own work."""

from __future__ import annotations

import ipaddress
import random
import resource
from collections.abc import Callable
from dataclasses import dataclass

from daemon.config import SftpSettings

# One IPv6 host owns a whole /64 (SLAAC, privacy addresses): counted per address, a single
# machine could pose as millions of sources.
IPV6_SOURCE_PREFIX = 64


@dataclass(frozen=True)
class Refusal:
    """Why a new connection is closed before its key exchange."""

    code: str  # the metric's label
    reason: str


class Admission:
    """Counts the connections that have not logged in yet; touched only on the event loop."""

    def __init__(
        self,
        settings: SftpSettings,
        *,
        descriptor_limit: int | None = None,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._begin = settings.max_startups_begin
        self._rate = settings.max_startups_rate / 100
        self._full = settings.max_startups
        self._per_source = settings.max_startups_per_source
        self._reserve = settings.reserved_descriptors
        # Read at each connection (one cheap system call): an operator may raise the limit of
        # the running process (prlimit).
        self._descriptor_limit = descriptor_limit
        self._chance = chance
        self._by_source: dict[str, int] = {}
        self.pending = 0

    def admit(self, address: str, fd: int) -> Refusal | None:
        """Count a new connection from `source` whose socket is descriptor `fd`, or say why not.

        The kernel hands out the lowest free descriptor, so a socket numbered `fd` means at least
        `fd` descriptors are in use: a check that costs nothing per connection."""
        source = source_of(address)
        limit = self._descriptor_limit or _soft_descriptor_limit()
        if self._reserve and limit and fd >= limit - self._reserve:
            return Refusal("descriptors", "near the open-file limit")
        if self._per_source and self._by_source.get(source, 0) >= self._per_source:
            return Refusal("per_source", "too many unauthenticated connections from this address")
        if self._full and self._early_drop():
            return Refusal("startups", "too many unauthenticated connections")
        self.pending += 1
        self._by_source[source] = self._by_source.get(source, 0) + 1
        return None

    def held_by(self, source: str) -> int:
        return self._by_source.get(source, 0)

    def crowded(self) -> tuple[str, int]:
        """The source with the most connections not logged in yet, and how many it has."""
        if not self._by_source:
            return "", 0
        source = max(self._by_source, key=self._by_source.__getitem__)
        return source, self._by_source[source]

    def admit_in_place_of(self, address: str, evicted: str) -> None:
        """Count a new connection from `address` for one of `evicted`'s, which was closed."""
        self.release(evicted)
        source = source_of(address)
        self.pending += 1
        self._by_source[source] = self._by_source.get(source, 0) + 1

    def release(self, address: str) -> None:
        """An admitted connection logged in or went away."""
        source = source_of(address)
        self.pending -= 1
        left = self._by_source.get(source, 0) - 1
        if left > 0:
            self._by_source[source] = left
        else:
            self._by_source.pop(source, None)

    def _early_drop(self) -> bool:
        """OpenSSH's random early drop: from `begin` pending logins, refuse with a chance of
        `rate`, growing linearly to certainty at `full`."""
        if self.pending >= self._full:
            return True
        if self.pending < self._begin:
            return False
        span = self._full - self._begin
        odds = self._rate + (1 - self._rate) * (self.pending - self._begin) / span
        return self._chance() < odds


def source_of(address: str) -> str:
    """What PerSourceMaxStartups counts by: an IPv4 address, or an IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_SOURCE_PREFIX), strict=False))
    return str(ip)


def _soft_descriptor_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 0 if soft == resource.RLIM_INFINITY else soft
