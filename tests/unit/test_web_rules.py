"""The Import Manager's rules that need no server: settings, the throttle's edge, session
timeouts, cookie signing, what a confirmation says, and web/ never depending on sftp/."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.config import DEFAULT_WEB_PORT, WebSettings, load_settings
from daemon.errors import ConfigError
from daemon.notify import messages
from daemon.roster.outcome import ImportReport, ImportState
from daemon.roster.plan import EntityChanges
from daemon.store.users import Session, User
from daemon.web import throttle as throttle_module
from daemon.web.auth import (
    SECRET_FILE,
    Signer,
    load_or_create_secret,
    new_token,
    session_expired,
)
from daemon.web.throttle import MAX_TRACKED_KEYS, SigninPolicy, SigninThrottle
from daemon.web.views.data import what_approving_does
from tests.unit.test_import_graph import import_graph

START = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


def test_the_web_listener_defaults_and_its_variables(tmp_path: Path) -> None:
    default = load_settings(None, {"ROSTERDROP_DATA_DIR": str(tmp_path)}).web
    assert (default.host, default.port, default.public_url) == ("127.0.0.1", DEFAULT_WEB_PORT, "")
    assert (default.session_idle_minutes, default.session_max_hours) == (30.0, 12.0)
    assert not default.secure_cookies
    settings = load_settings(
        None,
        {
            "ROSTERDROP_DATA_DIR": str(tmp_path),
            "ROSTERDROP_WEB_HOST": "0.0.0.0",
            "ROSTERDROP_WEB_PORT": "0",
            "ROSTERDROP_WEB_PUBLIC_URL": "https://roster.example.org/",
        },
    )
    assert (settings.web.host, settings.web.port) == ("0.0.0.0", 0)
    assert settings.web.secure_cookies
    assert settings.smtp.web_url == "https://roster.example.org"  # what the emails link to
    with pytest.raises(ConfigError, match=r"web\.public_url"):
        load_settings(None, {"ROSTERDROP_DATA_DIR": str(tmp_path),
                             "ROSTERDROP_WEB_PUBLIC_URL": "roster.example.org"})  # fmt: skip
    config = tmp_path / "c.toml"
    config.write_text('[smtp]\nweb_url = "https://elsewhere"\n')
    with pytest.raises(ConfigError, match=r"unknown setting smtp\.web_url"):
        load_settings(config, {})


def test_the_throttle_locks_at_the_limit_and_forgets_failures_past_the_window() -> None:
    now = [0.0]
    throttle = SigninThrottle(SigninPolicy(3, window=60, lock_seconds=300), clock=lambda: now[0])
    throttle.failed("10.0.0.1", "admin")
    throttle.failed("10.0.0.1", "admin")
    assert throttle.wait("10.0.0.1", "admin") == 0
    now[0] = 60.0  # the first failures fell out of the window
    throttle.failed("10.0.0.1", "admin")
    assert throttle.wait("10.0.0.1", "admin") == 0
    throttle.failed("10.0.0.2", "admin")
    throttle.failed("10.0.0.3", "admin")  # a third failure for the username, from anywhere
    assert throttle.wait("10.0.0.9", "ADMIN") == 300
    assert throttle.wait("10.0.0.9", "someone") == 0
    now[0] += 300
    assert throttle.wait("10.0.0.9", "admin") == 0


def test_the_throttle_tracks_a_bounded_number_of_keys() -> None:
    throttle = SigninThrottle(SigninPolicy(5, window=60, lock_seconds=300), clock=lambda: 0.0)
    for n in range(MAX_TRACKED_KEYS):
        throttle.failed(f"a{n}", f"u{n}")
    assert len(throttle._failures) == MAX_TRACKED_KEYS


def test_inventing_usernames_never_lifts_a_lock() -> None:
    """Making room among the failure counts forgets counts, never locks: 10,000 made-up
    usernames pushed through after a lock leave the guessed account locked."""
    throttle = SigninThrottle(SigninPolicy(5, window=60, lock_seconds=300), clock=lambda: 0.0)
    for n in range(5):
        throttle.failed(f"10.0.{n}.1", "registrar")
    assert throttle.wait("192.0.2.7", "registrar") == 300
    for n in range(MAX_TRACKED_KEYS + 10):
        throttle.failed(f"2001:db8:{n:x}::1", f"made-up-{n}")
    assert len(throttle._failures) == MAX_TRACKED_KEYS
    assert throttle.wait("192.0.2.7", "registrar") == 300


def test_the_locks_are_bounded_the_oldest_going_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_module, "MAX_LOCKS", 3)
    now = [0.0]
    throttle = SigninThrottle(SigninPolicy(1, window=60, lock_seconds=300), clock=lambda: now[0])
    for n in range(4):
        now[0] = float(n)
        throttle.failed("10.0.0.1", f"user{n}")
    assert len(throttle._locked_until) == 3  # the address's and the two newest users'
    assert throttle.wait("10.0.0.9", "user0") == 0
    assert throttle.wait("10.0.0.9", "user1") == 0
    assert throttle.wait("10.0.0.9", "user3") == 300


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    throttle = SigninThrottle(SigninPolicy(3, window=60, lock_seconds=300), clock=lambda: 0.0)
    for n in range(3):
        throttle.failed(f"2001:db8:1:2::{n + 1:x}", f"user{n}")
    assert throttle.wait("2001:db8:1:2:ffff::9", "someone") == 300
    assert throttle.wait("2001:db8:1:3::1", "someone") == 0


def test_no_throttle_when_the_limit_is_zero() -> None:
    throttle = SigninThrottle(SigninPolicy(0, window=60, lock_seconds=300))
    for _ in range(100):
        throttle.failed("10.0.0.1", "admin")
    assert throttle.wait("10.0.0.1", "admin") == 0


def _session(created: datetime, seen: datetime) -> Session:
    user = User(1, "admin", False, 1, "acme", None, False, START)
    return Session("hash", user, "csrf", created, seen)


def test_session_timeouts_at_their_edges() -> None:
    settings = WebSettings(session_idle_minutes=30, session_max_hours=12)
    idle, absolute = timedelta(minutes=30), timedelta(hours=12)
    tick = timedelta(microseconds=1)
    seen = _session(START, START)
    assert not session_expired(seen, START + idle - tick, settings)
    assert session_expired(seen, START + idle, settings)
    active = _session(START, START + absolute - timedelta(minutes=1))
    assert not session_expired(active, START + absolute - tick, settings)
    assert session_expired(active, START + absolute, settings)


def test_a_cookie_signed_with_another_key_or_changed_is_refused() -> None:
    signer, other = Signer(b"k" * 32), Signer(b"j" * 32)
    token = new_token()
    assert signer.unsign(signer.sign(token)) == token
    assert signer.unsign(other.sign(token)) is None
    assert signer.unsign(signer.sign(token) + "0") is None
    assert signer.unsign(token) is None


def test_web_never_depends_on_sftp() -> None:
    graph = import_graph()
    # The package; daemon.webservice, like daemon.service, composes it with the SFTP parts.
    web = [name for name in graph if name == "daemon.web" or name.startswith("daemon.web.")]
    assert web
    for name in web:
        assert not [m for m in graph[name] if m.startswith("daemon.sftp")], name


def test_the_confirmation_says_what_approving_changes() -> None:
    report = ImportReport(
        import_id=7, tenant="acme", state=ImportState.PAUSED, source="sftp",
        received_at=START, started_at=START, finished_at=None, files=(),
        entities={
            "students": EntityChanges(active_before=5000, deactivated=600, added=1),
            "enrollments": EntityChanges(active_before=9000, deactivated=4200),
            "teachers": EntityChanges(active_before=10, unchanged=10),
        },
        tripped=(), problems=(), problem_totals={}, fatal_reason=None, report_csv=None,
    )  # fmt: skip
    assert what_approving_does(report) == [
        "deactivate 600 students, 4,200 enrollments",
        "add 1 student",
    ]


def test_the_review_link_is_under_the_public_url() -> None:
    assert messages.review_url("", 4) is None
    assert messages.review_url("https://r.example/", 4) == "https://r.example/imports/4"


def test_the_session_key_is_kept_and_a_broken_one_replaced(tmp_path: Path) -> None:
    key = load_or_create_secret(tmp_path)
    assert len(key) == 32
    assert load_or_create_secret(tmp_path) == key
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / SECRET_FILE).write_text("")  # cut short by a crash or a full disk
    replaced = load_or_create_secret(tmp_path)
    assert len(replaced) == 32
    assert load_or_create_secret(tmp_path) == replaced
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]


def test_a_full_disk_gives_a_key_for_this_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "open", full)
    first, second = load_or_create_secret(tmp_path), load_or_create_secret(tmp_path)
    assert len(first) == 32
    assert first != second  # nothing kept: each run its own
    assert not (tmp_path / SECRET_FILE).exists()
