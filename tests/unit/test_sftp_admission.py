"""Admission of connections before their login: MaxStartups, per source, descriptor reserve."""

from __future__ import annotations

import dataclasses

import pytest

from daemon.config import SftpSettings
from daemon.sftp.admission import Admission, source_of

LIMITS = SftpSettings(
    max_startups_begin=4,
    max_startups_rate=50,
    max_startups=8,
    max_startups_per_source=3,
    reserved_descriptors=10,
)


def admission(chance: float = 0.99, **changes: int) -> Admission:
    settings = dataclasses.replace(LIMITS, **changes)
    return Admission(settings, descriptor_limit=1000, chance=lambda: chance)


def test_one_address_gets_its_share_and_no_more_until_one_logs_in() -> None:
    gate = admission()
    assert [gate.admit("10.0.0.1", 20) for _ in range(3)] == [None, None, None]
    refusal = gate.admit("10.0.0.1", 20)
    assert refusal is not None
    assert refusal.code == "per_source"
    assert gate.admit("10.0.0.2", 20) is None  # another address is not held back
    gate.release("10.0.0.1")
    assert gate.admit("10.0.0.1", 20) is None


def test_below_begin_all_are_admitted_and_at_full_none() -> None:
    gate = admission(chance=0.0)  # the drop would always win: below begin it is not drawn
    for n in range(4):
        assert gate.admit(f"10.0.1.{n}", 20) is None
    refusal = gate.admit("10.0.1.9", 20)
    assert refusal is not None
    assert refusal.code == "startups"
    gate = admission(chance=0.999)  # the drop never wins by chance: at full it is certain
    for n in range(8):
        assert gate.admit(f"10.0.2.{n}", 20) is None
    refusal = gate.admit("10.0.2.9", 20)
    assert refusal is not None
    assert refusal.code == "startups"


@pytest.mark.parametrize(
    ("pending", "chance", "refused"),
    [(4, 0.49, True), (4, 0.51, False), (6, 0.74, True), (6, 0.76, False), (7, 0.87, True)],
)
def test_between_begin_and_full_the_odds_grow_from_rate_to_certainty(
    pending: int, chance: float, refused: bool
) -> None:
    gate = admission(chance=chance)
    gate.pending = pending  # 50 % at begin (4), 100 % at full (8): 75 % at 6, 87.5 % at 7
    assert (gate.admit("10.0.3.1", 20) is not None) is refused


def test_a_connection_is_refused_within_the_descriptor_reserve() -> None:
    gate = admission()
    assert gate.admit("10.0.4.1", 989) is None  # limit 1000, reserve 10: 990 is the first out
    refusal = gate.admit("10.0.4.2", 990)
    assert refusal is not None
    assert refusal.code == "descriptors"
    assert gate.pending == 1


def test_zero_turns_each_bound_off() -> None:
    gate = admission(max_startups=0, max_startups_per_source=0, reserved_descriptors=0)
    assert all(gate.admit("10.0.5.1", 999) is None for _ in range(50))


def test_an_ipv6_host_counts_as_one_source_for_its_whole_64() -> None:
    assert source_of("2001:db8:1:2::1") == source_of("2001:db8:1:2:ffff::9")
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:192.0.2.7") == "192.0.2.7"
    gate = admission()
    for n in range(3):
        assert gate.admit(f"2001:db8::{n + 1}", 20) is None
    assert gate.admit("2001:db8::99", 20) is not None


def test_the_crowded_source_gives_its_place_to_a_newcomer() -> None:
    gate = admission(max_startups_per_source=0)
    for _n in range(3):
        assert gate.admit("10.0.6.1", 20) is None
    assert gate.admit("10.0.6.2", 20) is None
    assert gate.crowded() == ("10.0.6.1", 3)
    gate.admit_in_place_of("10.0.6.3", "10.0.6.1")
    assert (gate.pending, gate.held_by("10.0.6.1"), gate.held_by("10.0.6.3")) == (4, 2, 1)
