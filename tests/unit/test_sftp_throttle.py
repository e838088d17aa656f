"""The failed-login throttle, on a fake clock: every bound at its edge, and the figures that
docs/logins.md quotes (guesses per hour an attacker gets with the default settings)."""

from __future__ import annotations

import pytest

from daemon.addresses import source_key
from daemon.config import SftpSettings
from daemon.sftp import throttle
from daemon.sftp.throttle import LoginGuard, ThrottlePolicy

DEFAULTS = ThrottlePolicy.from_settings(SftpSettings())
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(clock: Clock, **changes: float) -> LoginGuard:
    policy = ThrottlePolicy.from_settings(SftpSettings(**changes))  # type: ignore[arg-type]
    return LoginGuard(policy, clock)


def test_a_source_is_banned_at_exactly_max_failures_within_the_window() -> None:
    clock = Clock()
    gate = guard(clock, max_auth_failures=3, auth_failure_window=60, ban_seconds=120)
    assert [gate.failed("10.0.0.1", "acme", count_user=True) for _ in range(3)] == [
        None,
        None,
        120,
    ]
    assert gate.source_banned("10.0.0.1")
    assert not gate.source_banned("10.0.0.2")
    clock.now += 119.9
    assert gate.source_banned("10.0.0.1")
    assert gate.failed("10.0.0.1", "acme", count_user=True) is None  # in flight: no new ban
    clock.now += 0.1
    assert not gate.source_banned("10.0.0.1")


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    gate = guard(clock, max_auth_failures=3, auth_failure_window=60)
    gate.failed("10.0.0.1", "acme", count_user=False)
    gate.failed("10.0.0.1", "acme", count_user=False)
    clock.now += 60
    assert gate.failed("10.0.0.1", "acme", count_user=False) is None
    assert gate.failed("10.0.0.1", "acme", count_user=False) is None
    assert gate.failed("10.0.0.1", "acme", count_user=False) is not None


def test_each_repeat_ban_grows_up_to_the_maximum_then_good_behaviour_starts_over() -> None:
    clock = Clock()
    gate = guard(clock, max_auth_failures=1, ban_seconds=600, ban_growth=2, max_ban_seconds=3000)
    bans = []
    for _ in range(5):
        seconds = gate.failed("10.0.0.1", "x", count_user=False)
        assert seconds is not None
        bans.append(seconds)
        clock.now += seconds
    assert bans == [600, 1200, 2400, 3000, 3000]
    clock.now += 3000 - 0.1  # just short of max_ban_seconds without a failure: still remembered
    assert gate.failed("10.0.0.1", "x", count_user=False) == 3000
    clock.now += 3000 + 3000
    assert gate.failed("10.0.0.1", "x", count_user=False) == 600


def test_password_failures_pace_the_username_and_never_ban_it() -> None:
    clock = Clock()
    gate = guard(clock, max_auth_failures=5, user_delay_seconds=5, user_max_wait_seconds=15)
    for n in range(5):  # a botnet: one guess per address
        assert gate.password_check_wait("acme") == 0
        assert gate.failed(f"10.0.0.{n}", "acme", count_user=True) is None
    # From the sixth on, the checks of acme run 5 s apart, whatever address they come from.
    assert [gate.password_check_wait("acme") for _ in range(5)] == [0, 5, 10, 15, None]
    assert gate.password_check_wait("beta") == 0
    assert not any(gate.source_banned(f"10.0.0.{n}") for n in range(5))
    clock.now += 300  # the window: the failures age out and the pace ends
    assert gate.password_check_wait("acme") == 0
    assert gate.password_check_wait("acme") == 0


def test_key_failures_never_pace_the_username() -> None:
    gate = guard(Clock(), max_auth_failures=2)
    for n in range(10):
        gate.failed(f"10.0.0.{n}", "acme", count_user=False)
    assert gate.password_check_wait("acme") == 0


def test_lifting_a_user_lifts_its_pace_and_the_sources_that_failed_as_it() -> None:
    gate = guard(Clock(), max_auth_failures=2)
    for source, user in [("10.0.0.1", "acme"), ("10.0.0.2", "beta")]:
        gate.failed(source, user, count_user=True)
        gate.failed(source, user, count_user=True)
    gate.password_check_wait("acme")
    assert gate.lift("user:ACME") == ["10.0.0.1"]
    assert not gate.source_banned("10.0.0.1")
    assert gate.source_banned("10.0.0.2")
    assert gate.password_check_wait("acme") == 0
    assert gate.lift("address:10.0.0.2") == ["10.0.0.2"]
    assert not gate.source_banned("10.0.0.2")
    assert gate.lift("address:10.0.0.3") == []


def test_an_ipv6_client_is_banned_by_its_slash_64() -> None:
    gate = guard(Clock(), max_auth_failures=2)
    gate.failed("2001:db8:1:2::1", "x", count_user=False)
    gate.failed("2001:db8:1:2::ffff", "x", count_user=False)
    assert gate.source_banned("2001:db8:1:2:abcd::9")
    assert not gate.source_banned("2001:db8:1:3::1")
    assert source_key("::ffff:10.0.0.1") == "10.0.0.1"


def test_no_failures_allowed_turns_throttling_off() -> None:
    gate = guard(Clock(), max_auth_failures=0)
    assert not any(gate.failed("10.0.0.1", "a", count_user=True) for _ in range(100))
    assert not gate.source_banned("10.0.0.1")
    assert gate.password_check_wait("a") == 0


def test_memory_is_bounded_and_running_bans_survive_the_pruning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(throttle, "MAX_TRACKED_KEYS", 10)
    gate = guard(Clock(), max_auth_failures=2, ban_seconds=600)
    gate.failed("10.9.9.9", "x", count_user=False)
    assert gate.failed("10.9.9.9", "x", count_user=False)
    for n in range(100):
        gate.failed(f"10.0.{n}.1", f"user{n}", count_user=True)
    assert len(gate._sources) + len(gate._users) <= 10 + 1
    assert gate.source_banned("10.9.9.9")


def _guesses_in(hours: float, gate: LoginGuard, clock: Clock, sources: int) -> int:
    """An attacker guessing acme's password as fast as the throttle lets it, spread over
    `sources` addresses, for `hours`: how many passwords get checked."""
    end, checked, source = clock.now + hours * HOUR, 0, 0
    while clock.now < end:
        peer = f"10.{source // 250}.{source % 250}.1"
        source = (source + 1) % sources
        if gate.source_banned(peer):
            if all(gate.source_banned(f"10.{s // 250}.{s % 250}.1") for s in range(sources)):
                clock.now += 1.0  # every address banned: wait
            continue
        wait = gate.password_check_wait("acme")
        if wait is None:
            clock.now += DEFAULTS.user_delay / 10  # refused unchecked: try again soon
            gate.failed(peer, "acme", count_user=False)
            continue
        clock.now += wait
        checked += 1
        gate.failed(peer, "acme", count_user=True)
    return checked


def test_the_figures_one_address_gets_few_guesses_an_hour_a_botnet_one_per_user_delay() -> None:
    clock = Clock()
    one = _guesses_in(1, LoginGuard(DEFAULTS, clock), clock, sources=1)
    # 5 at once, 5 after the 600 s ban, 5 after the 1200 s one (t = 1800 s); the next ban
    # (2400 s) runs past the hour.
    assert one == 15
    clock = Clock()
    day = _guesses_in(24, LoginGuard(DEFAULTS, clock), clock, sources=1)
    assert day == 40  # 5 before each ban of 600, 1200, … 38400 s (ends at 21 h 10 min)

    clock = Clock()
    botnet = _guesses_in(1, LoginGuard(DEFAULTS, clock), clock, sources=10_000)
    # The free ones, then one per user_delay from every address together: 726 with defaults.
    assert HOUR / DEFAULTS.user_delay <= botnet <= HOUR / DEFAULTS.user_delay + 6
