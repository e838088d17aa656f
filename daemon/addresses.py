"""Client addresses as the throttles count them (SFTP logins and web sign-ins alike)."""

from __future__ import annotations

import ipaddress

# An IPv6 client owns at least a /64: counting single addresses of it would count nobody.
IPV6_PREFIX = 64


def source_key(peer: str) -> str:
    """The unit a throttle counts: one IPv4 address, or the IPv6 /64 it belongs to."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)
