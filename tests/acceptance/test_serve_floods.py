"""Floods of silent connections against the real `rosterdrop serve`, under a low open-file
limit: the daemon refuses what is past its bounds, stays up, and a district still uploads
and is imported. Loopback only, bounded in count; every figure comes from the daemon itself.

Before these bounds, ~1,100 silent connections took every descriptor under the old unit's
1,024, the spool scan failed with EMFILE, and the daemon exited.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.drop import District
from tests.support.process import Daemon, metric, wait_until
from tests.support.site import Site, upload

FLOOD = 1_100  # what the adversarial pass sent
PER_SOURCE = 50  # the default max_startups_per_source
RSS_LIMIT_MIB = 300


def _raise_own_limit(needed: int) -> None:
    """This test process holds the flood's client ends: make room for them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed + 256), hard))


def _limit_daemon(daemon: Daemon, descriptors: int) -> None:
    resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE, (descriptors, descriptors))


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def silent_connections(port: int, sources: list[str], count: int) -> Iterator[list[socket.socket]]:
    """`count` TCP connections that never say a word, spread over `sources` in turn."""
    held: list[socket.socket] = []
    try:
        for n in range(count):
            with contextlib.suppress(OSError):  # refused, reset or timed out: all fine here
                held.append(
                    socket.create_connection(
                        ("127.0.0.1", port),
                        timeout=2,
                        source_address=(sources[n % len(sources)], 0),
                    )
                )
        yield held
    finally:
        for sock in held:
            sock.close()


def _still_open(held: list[socket.socket]) -> int:
    """How many of the flood's connections the daemon still keeps (it closed the others)."""
    count = 0
    for sock in held:
        sock.setblocking(False)
        try:
            while data := sock.recv(4096):  # the banner of an admitted connection
                del data
        except BlockingIOError:
            count += 1
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
                raise
    return count


def _imported(site: Site, tenant: str, count: int) -> Callable[[], bool]:
    return lambda: len([r for r in site.imports(tenant) if r["state"] == "imported"]) >= count


def test_a_flood_from_one_address_leaves_the_daemon_serving_a_district(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    site.add_tenant("acme", "admin@acme.example.org")
    _raise_own_limit(FLOOD)
    with site.daemon() as daemon:
        daemon.ready()
        _limit_daemon(daemon, 1024)  # what the unit had before it set LimitNOFILE
        with silent_connections(daemon.sftp_port, ["127.0.0.2"], FLOOD) as held:
            upload(daemon.sftp_port, "acme", District("acme", students=30).files())
            wait_until(_imported(site, "acme", 1), 60, "the district's import")
            rss = _rss_mib(daemon.pid)
            kept = _still_open(held)
            samples = daemon.metrics()
        print(f"one-address flood: {len(held)} connected, {kept} kept, RSS {rss:.1f} MiB")
        assert kept <= PER_SOURCE
        assert metric(samples, "rosterdrop_sftp_connections_refused_total", reason="per_source")
        assert rss < RSS_LIMIT_MIB
        assert daemon.process is not None
        assert daemon.process.poll() is None
        assert daemon.stop() == 0


def test_a_flood_from_many_addresses_meets_the_descriptor_reserve_and_the_daemon_goes_on(
    make_site: Callable[..., Site],
) -> None:
    """Sixty addresses, each under its own bound, together past what 256 descriptors hold:
    the reserve refuses them, and the watcher, mailer and imports keep their descriptors."""
    site = make_site()
    site.add_tenant("acme", "admin@acme.example.org")
    sources = [f"127.0.1.{n}" for n in range(1, 61)]
    _raise_own_limit(600)
    with site.daemon() as daemon:
        daemon.ready()
        _limit_daemon(daemon, 256)
        with silent_connections(daemon.sftp_port, sources, 600) as held:
            rss = _rss_mib(daemon.pid)
            descriptors = _descriptors(daemon.pid)
            samples = daemon.metrics()
            assert daemon.process is not None
            assert daemon.process.poll() is None
        print(
            f"many-address flood: {len(held)} connected, {descriptors} descriptors open,"
            f" RSS {rss:.1f} MiB"
        )
        # Held at the reserve (128 of 256): a refused socket is closed as soon as accepted. The
        # few on top are what the daemon's own work holds at the moment of the count.
        assert descriptors <= 256 - 128 + 8
        assert not daemon.find("a background task is out of resources; retrying")
        assert metric(samples, "rosterdrop_sftp_connections_refused_total", reason="descriptors")
        # The flood gone, the district is served as if nothing happened.
        upload(daemon.sftp_port, "acme", District("acme", students=30).files())
        wait_until(_imported(site, "acme", 1), 60, "the district's import")
        assert rss < RSS_LIMIT_MIB
        assert daemon.stop() == 0


def test_a_flood_from_many_addresses_that_fills_max_startups_still_lets_a_district_in(
    make_site: Callable[..., Site],
) -> None:
    """Sixty addresses, ten silent connections each: 600 against max_startups 300. The
    connections that go are the flood's oldest, not the district's."""
    site = make_site()
    site.add_tenant("acme", "admin@acme.example.org")
    sources = [f"127.0.2.{n}" for n in range(1, 61)]
    _raise_own_limit(600)
    with site.daemon() as daemon:
        daemon.ready()
        _limit_daemon(daemon, 1024)
        with silent_connections(daemon.sftp_port, sources, 600) as held:
            upload(daemon.sftp_port, "acme", District("acme", students=30).files())
            wait_until(_imported(site, "acme", 1), 60, "the district's import")
            rss = _rss_mib(daemon.pid)
            descriptors = _descriptors(daemon.pid)
            samples = daemon.metrics()
            kept = _still_open(held)
        print(
            f"flood filling max_startups: {len(held)} connected, {kept} kept, {descriptors}"
            f" descriptors open, RSS {rss:.1f} MiB"
        )
        assert kept <= 300
        assert metric(samples, "rosterdrop_sftp_connections_refused_total", reason="startups")
        assert rss < RSS_LIMIT_MIB
        assert daemon.stop() == 0
