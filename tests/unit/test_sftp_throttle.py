"""The failed-login throttle, on a fake clock."""

from __future__ import annotations

import pytest

from daemon.sftp import throttle
from daemon.sftp.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ban_after_max_failures_within_the_window_then_expiry() -> None:
    clock = Clock()
    gate = FailureThrottle(3, window=60, ban_seconds=120, clock=clock)
    assert [gate.record_failure("a") for _ in range(3)] == [False, False, True]
    assert gate.is_banned("a")
    assert not gate.is_banned("b")
    clock.now += 119
    assert gate.is_banned("a")
    assert not gate.record_failure("a")  # failures while banned neither extend nor re-ban
    clock.now += 2
    assert not gate.is_banned("a")
    assert not gate.record_failure("a")  # the count started over with the ban


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    gate = FailureThrottle(3, window=60, ban_seconds=120, clock=clock)
    gate.record_failure("a")
    gate.record_failure("a")
    clock.now += 61
    assert not gate.record_failure("a")
    assert not gate.record_failure("a")
    assert gate.record_failure("a")


def test_zero_failures_disables_throttling() -> None:
    gate = FailureThrottle(0, window=60, ban_seconds=120, clock=Clock())
    assert not any(gate.record_failure("a") for _ in range(100))
    assert not gate.is_banned("a")


def test_memory_stays_bounded_but_bans_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_TRACKED_KEYS", 10)
    clock = Clock()
    gate = FailureThrottle(2, window=60, ban_seconds=600, clock=clock)
    gate.record_failure("attacker")
    assert gate.record_failure("attacker")
    for n in range(100):
        gate.record_failure(f"user{n}")
    assert len(gate._failures) + len(gate._banned_until) <= 10
    assert gate.is_banned("attacker")
