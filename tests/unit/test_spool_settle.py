"""A complete set waits for the settle window after its last write, on the watcher's own clock."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import Settings
from daemon.spool import ReadySet, Spool
from tests.support.drop import District

CLOSED = 1_700_000_000.0  # when the SIS closed its last file
SETTLE = 30.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upload(make_settings: Callable[..., Settings]) -> tuple[Settings, Path]:
    # The periodic rescan is an hour away: the next look is the settle window's own.
    settings = make_settings(
        ROSTERDROP_SETTLE_SECONDS=str(SETTLE), ROSTERDROP_SPOOL_RESCAN_SECONDS="3600"
    )
    folder = District("acme").write(settings.paths.upload_dir("acme"))
    for path in folder.iterdir():
        os.utime(path, (CLOSED, CLOSED))
    return settings, folder


def test_a_closed_set_is_ready_only_once_the_settle_time_has_passed(
    upload: tuple[Settings, Path],
) -> None:
    settings, folder = upload
    clock = Clock(CLOSED + SETTLE - 12.5)
    spool = Spool(settings.spool, settings.paths, clock=clock)

    ready, _, next_check = spool.scan()
    assert ready == []
    assert next_check == pytest.approx(12.5), "the next look is when the set settles"

    clock.now = CLOSED + SETTLE
    ready, _, _ = spool.scan()
    assert ready == [ReadySet("acme", folder)]


def test_an_sftp_event_restarts_the_settle_window(upload: tuple[Settings, Path]) -> None:
    """A close or rename the server reports counts like a write, even where it leaves the
    files' times as they were (a rename keeps the mtime)."""
    settings, folder = upload
    clock = Clock(CLOSED + 2 * SETTLE)
    spool = Spool(settings.spool, settings.paths, clock=clock)
    spool.activity("acme")

    clock.now += SETTLE - 1
    ready, _, next_check = spool.scan()
    assert ready == []
    assert next_check == pytest.approx(1.0)

    clock.now += 1
    assert spool.scan()[0] == [ReadySet("acme", folder)]
