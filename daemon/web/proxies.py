"""Which reverse proxies are believed: the client's address and scheme behind them.

Only a request whose sender (the TCP peer) is a configured proxy has its X-Forwarded-For and
X-Forwarded-Proto read; anyone else could write them. Behind a chain of proxies the client is
the rightmost address of X-Forwarded-For that is not itself a trusted proxy: every address to
its left was written by the client, and could be anything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = "X-Forwarded-For"
FORWARDED_PROTO = "X-Forwarded-Proto"
UNKNOWN = "unknown"  # no peer address (a Unix socket), nor a believable hop


def _parsed(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443", as some proxies write it
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:51234"
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return found


class TrustedProxies:
    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    def trusts(self, address: str | None) -> bool:
        found = _parsed(address) if address else None
        return found is not None and any(found in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy."""
        if not peer:
            return UNKNOWN
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        nearest = peer
        for hop in reversed([h for h in hops if h]):
            found = _parsed(hop)
            if found is None:
                # Garbage to the right of every untrusted hop: no proxy of ours wrote it, so
                # the last address a trusted proxy vouched for is as far as we can see.
                return nearest
            if not self.trusts(str(found)):
                return str(found)
            nearest = str(found)
        return nearest  # every hop is a proxy of ours: the farthest one is the client

    def https(self, peer: str | None, forwarded_proto: Sequence[str]) -> bool:
        """Whether a trusted proxy says the client came over https (its nearest hop's word)."""
        if not forwarded_proto or not self.trusts(peer):
            return False
        values = [v.strip().lower() for header in forwarded_proto for v in header.split(",")]
        return bool(values) and values[-1] == "https"
