"""Pause windows through the real `rosterdrop serve` and `rosterdrop tenant pause` (both
databases): an upload over SFTP during a window is held; the window ends while the daemon is
down, and the next start imports the newest held upload and sends the ended notice, once,
also across a further restart. The window clock is a file the test writes
(daemon/windowclock.py, read by the daemon, its import workers and the CLI): no test waits
for a day."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.windowclock import CLOCK_FILE
from tests.support.drop import District
from tests.support.process import wait_until
from tests.support.site import Site, upload

SECONDS = 60.0


def states(site: Site) -> list[str]:
    return [row["state"] for row in site.imports("acme")]


def notices(site: Site) -> list[str]:
    return [e["kind"] for e in site.emails() if e["kind"].startswith("window")]


def until(site: Site, expected: list[str]) -> None:
    wait_until(lambda: states(site) == expected, SECONDS, f"the imports to be {expected}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, make_site: Callable[..., Site], tmp_path: Path) -> Site:
    clock = tmp_path / "clock"
    clock.write_text("2027-06-09T12:00:00+00:00")  # the day before the window
    env = {CLOCK_FILE: str(clock), "ROSTERDROP_WINDOWS_CHECK_SECONDS": "1"}
    if request.param == "postgresql":
        env["ROSTERDROP_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    made = make_site(**env)
    made.add_tenant("acme", "admin@acme.example.org")
    return made


def test_serve_holds_uploads_in_a_window_and_imports_the_newest_after_it_once(
    site: Site, tmp_path: Path
) -> None:
    clock = tmp_path / "clock"
    added = site.cli(
        "tenant", "pause", "add", "acme", "--from", "2027-06-10", "--to", "2027-08-15",
        "--note", "summer rollover",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    with site.daemon("first") as daemon:
        daemon.ready()
        upload(daemon.sftp_port, "acme", District("acme", students=12).files())
        until(site, ["imported"])
        wait_until(lambda: notices(site) == ["window_starts"], SECONDS, "the day-before notice")
        clock.write_text("2027-06-20T09:00:00+00:00")
        upload(daemon.sftp_port, "acme", District("acme", students=14).files())
        until(site, ["imported", "paused"])
        upload(daemon.sftp_port, "acme", District("acme", students=16).files())
        until(site, ["imported", "superseded", "paused"])
        assert len(site.roster("acme")["students"]) == 12  # held: checked, not applied
        assert daemon.stop() == 0

    clock.write_text("2027-08-16T08:00:00+00:00")  # the window ended while the daemon was down
    with site.daemon("second") as daemon:
        daemon.ready()
        until(site, ["imported", "superseded", "imported"])
        assert len(site.roster("acme")["students"]) == 16
        wait_until(lambda: len(notices(site)) == 2, SECONDS, "the ended notice")
        assert daemon.stop() == 0

    with site.daemon("third") as daemon:
        daemon.ready()
        daemon.wait_for("pause windows looked at after the start", released=0)
        assert daemon.stop() == 0
    assert notices(site) == ["window_starts", "window_ended"]
    assert states(site) == ["imported", "superseded", "imported"]
    listed = site.cli("tenant", "pause", "list", "acme")
    assert listed.stdout.strip() == "#1 2027-06-10 to 2027-08-15 (summer rollover): ended"
