"""`rosterdrop tenant pause add|list|remove` and `tenant set --[no-]per-school` as an
operator runs them: checked, audited, listed as text and JSON; a new tenant's yearly window
from [windows] new_tenant; the bound on windows per tenant at its edge. Today is the test's
(TESTPOINT_ROSTERDROP_CLOCK), so the dates never go stale."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from daemon.config import Settings
from daemon.roster.windows import MAX_WINDOWS
from daemon.store import tenants, windows
from daemon.store.database import Database
from daemon.store.tables import audit_log
from daemon.windowclock import CLOCK_FILE
from tests.support.roster import add_tenant, rosterdrop, rosterdrop_env

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TODAY = datetime(2027, 5, 3, 15, tzinfo=UTC)


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    clock = tmp_path / "clock"
    clock.write_text(TODAY.isoformat())
    return {**rosterdrop_env(settings), CLOCK_FILE: str(clock)}


def audited(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.detail).order_by(audit_log.c.id)
        )
        return [(action, detail) for action, detail in rows]


def test_an_operator_adds_lists_and_removes_a_districts_windows(
    env: dict[str, str], db: Database
) -> None:
    add_tenant(db, "acme")

    added = rosterdrop(
        env, "tenant", "pause", "add", "acme", "--from", "2027-06-10", "--to", "2027-08-15",
        "--note", "summer rollover", "--expect-changes", "60", "--confirm",
    )  # fmt: skip

    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[1] == (
        "  uploads from 2027-06-10 through 2027-08-15 are checked but not applied;"
        " on 2027-08-16 the newest one is imported"
    )
    listed = rosterdrop(env, "tenant", "pause", "list", "acme")
    assert listed.stdout.splitlines() == [
        "#1 2027-06-10 to 2027-08-15 (summer rollover), expect up to 60% changes"
        f" (confirmed by {_user()} (cli)): to come"
    ]
    [shown] = json.loads(rosterdrop(env, "tenant", "pause", "list", "acme", "--json").stdout)
    assert (shown["from"], shown["to"], shown["expect_percent"]) == ("2027-06-10", "2027-08-15", 60)
    removed = rosterdrop(env, "tenant", "pause", "remove", "acme", "1")
    assert removed.returncode == 0, removed.stderr
    assert (
        rosterdrop(env, "tenant", "pause", "list", "acme").stdout == "acme has no pause windows\n"
    )
    assert [action for action, _ in audited(db)] == ["pause_window_added", "pause_window_removed"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--from", "2027-06-10", "--to", "2027-06-01"), "ends (2027-06-01) before it starts"),
        (("--from", "2027-04-01", "--to", "2027-05-02"), "the window ended already (2027-05-02;"),
        (("--from", "10/06/2027", "--to", "2027-08-15"), "--from: '10/06/2027' is not a date"),
        (("--from", "2027-06-10", "--to", "2028-06-10"), "at most 366 days, not 367"),
        (("--from", "2027-06-10", "--to", "2028-06-09"), None),  # 366 days: at the bound
        (("--from", "2027-06-10", "--to", "2027-08-15", "--expect-changes", "60"), "--confirm"),
    ],
)
def test_a_bad_window_is_refused_with_a_message_and_changes_nothing(
    env: dict[str, str], db: Database, args: tuple[str, ...], said: str | None
) -> None:
    add_tenant(db, "acme")

    result = rosterdrop(env, "tenant", "pause", "add", "acme", *args)

    if said is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2
    assert said in result.stderr
    assert audited(db) == []


def test_removing_another_tenants_window_is_not_found(env: dict[str, str], db: Database) -> None:
    add_tenant(db, "acme")
    add_tenant(db, "other")
    rosterdrop(env, "tenant", "pause", "add", "acme", "--from", "2027-06-10", "--to", "2027-08-15")

    result = rosterdrop(env, "tenant", "pause", "remove", "other", "1")

    assert result.returncode != 0
    assert "no pause window #1 for this tenant" in result.stderr


def test_a_tenant_has_at_most_fifty_windows(env: dict[str, str], db: Database) -> None:
    acme = add_tenant(db, "acme")
    with db.write() as conn:
        for n in range(MAX_WINDOWS - 1):
            day = date(2027, 6, 1 + n % 28).replace(year=2027 + n // 28)
            windows.add(conn, acme.id, day, day, zone=ZoneInfo("UTC"), now=TODAY, by="t")

    last = rosterdrop(
        env, "tenant", "pause", "add", "acme", "--from", "2030-01-01", "--to", "2030-01-02"
    )
    over = rosterdrop(
        env, "tenant", "pause", "add", "acme", "--from", "2031-01-01", "--to", "2031-01-02"
    )

    assert last.returncode == 0, last.stderr
    assert over.returncode == 2
    assert f"a tenant has at most {MAX_WINDOWS} pause windows" in over.stderr


def test_a_new_tenant_gets_the_configured_yearly_window(env: dict[str, str], db: Database) -> None:
    env = {**env, "ROSTERDROP_WINDOWS_NEW_TENANT": "06-15..08-10"}

    added = rosterdrop(env, "tenant", "add", "fresh", "--email", "a@fresh.org", "--no-password")

    assert added.returncode == 0, added.stderr
    listed = rosterdrop(env, "tenant", "pause", "list", "fresh").stdout
    assert listed == "#1 2027-06-15 to 2027-08-10 (school year rollover), yearly: to come\n"


def test_per_school_thresholds_are_on_by_default_and_set_per_tenant(
    env: dict[str, str], db: Database
) -> None:
    add_tenant(db, "acme")

    off = rosterdrop(env, "tenant", "set", "acme", "--no-per-school")

    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["settings"]["per_school"] is False
    with db.read() as conn:
        assert tenants.get(conn, "acme").settings.per_school is False
    assert audited(db) == [("thresholds", "per_school=False")]


def _user() -> str:
    import getpass

    return getpass.getuser()
