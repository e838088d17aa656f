"""Whose X-Forwarded-For is believed, and which of its hops is the client."""

from __future__ import annotations

import ipaddress

import pytest

from daemon.web.proxies import UNKNOWN, TrustedProxies

PROXIES = TrustedProxies(
    [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"),
     ipaddress.ip_network("2001:db8:1::/48")]
)  # fmt: skip


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: its header is ignored
        ("127.0.0.1", [], "127.0.0.1"),  # a proxy that says nothing is the client
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        # The client wrote the leftmost hops itself: the rightmost untrusted one counts.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # two headers
        ("127.0.0.1", ["10.9.9.9, 10.1.2.3"], "10.9.9.9"),  # all ours: the farthest
        # Garbage where only a proxy of ours writes: as far as a proxy vouches.
        ("127.0.0.1", ["198.51.100.1, <script>, 10.1.2.3"], "10.1.2.3"),
        ("127.0.0.1", ["unknown"], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8:2::7]:443"], "2001:db8:2::7"),
        ("2001:db8:1::5", ["2001:db8:2::7"], "2001:db8:2::7"),
        ("::ffff:10.0.0.5", ["198.51.100.1"], "198.51.100.1"),  # IPv4 on a dual-stack socket
        (None, ["198.51.100.1"], UNKNOWN),
    ],
)
def test_the_client_is_the_rightmost_hop_no_proxy_of_ours_wrote(
    peer: str | None, forwarded_for: list[str], client: str
) -> None:
    assert PROXIES.client(peer, forwarded_for) == client


def test_https_is_a_trusted_proxys_word_only() -> None:
    assert PROXIES.https("10.0.0.1", ["https"])
    assert PROXIES.https("10.0.0.1", ["http, https"])  # the nearest proxy's value counts
    assert not PROXIES.https("10.0.0.1", ["https, http"])
    assert not PROXIES.https("203.0.113.5", ["https"])
    assert not PROXIES.https("10.0.0.1", [])
    assert not TrustedProxies().https("127.0.0.1", ["https"])  # none configured
