"""Pause windows through the real pipeline, the windows task and the database (both): uploads
held during a window, the newest released when it ends, its notices sent once, and the
one-time override its end may carry. Time is the test's clock: no test waits for a day."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.pipeline import Pipeline
from daemon.rollover import Rollover
from daemon.roster.outcome import ImportReport, ImportState
from daemon.roster.windows import PauseWindow
from daemon.store import imports, tenants, windows
from daemon.store.database import Database
from daemon.store.tables import pause_windows, window_notices
from tests.integration.test_import_emails import Clock, last_email
from tests.support import drop
from tests.support.clever import Snapshot, one_class_district
from tests.support.roster import add_tenant, roster, run_import

JUNE_9 = datetime(2027, 6, 9, 12, tzinfo=UTC)  # the day before the window
JUNE_20 = datetime(2027, 6, 20, 9, tzinfo=UTC)  # in it
WINDOW_END = datetime(2027, 8, 16, tzinfo=UTC)  # the first moment after it (UTC days)
AUG_16 = WINDOW_END + timedelta(minutes=30)


class World:
    """Acme with 50 students imported on 1 June, a window 10 June – 15 August, a pipeline and
    the daemon's windows task on one clock."""

    def __init__(self, db: Database, settings: Settings, tmp_path: Path) -> None:
        self.db, self.settings, self.tmp = db, settings, tmp_path
        add_tenant(db, "acme")
        self.clock = Clock(datetime(2027, 6, 1, tzinfo=UTC))
        self.pipeline = Pipeline(db, settings.paths, settings.smtp, clock=self.clock)
        # serve's task hands what it released to the workers; here turn() runs them
        self.rollover = Rollover(db, self.pipeline, settings, lambda *_: None, clock=self.clock)
        self.uploads = 0
        first = self.upload(one_class_district(50))
        assert first.state is ImportState.IMPORTED

    def window(self, expect: float | None = None, *, yearly: bool = False) -> PauseWindow:
        with self.db.write() as conn:
            return windows.add(
                conn, self.tenant_id, date(2027, 6, 10), date(2027, 8, 15),
                zone=self.settings.windows.zone(), now=self.clock(), by="registrar",
                note="summer rollover", expect_percent=expect, yearly=yearly,
            )  # fmt: skip

    @property
    def tenant_id(self) -> int:
        with self.db.read() as conn:
            return tenants.get(conn, "acme").id

    def upload(self, snap: Snapshot) -> ImportReport:
        self.uploads += 1
        return run_import(self.pipeline, "acme", snap.write(self.tmp / f"u{self.uploads}"))

    def state(self, import_id: int) -> ImportState:
        with self.db.read() as conn:
            return imports.get(conn, import_id).state

    def turn(self, now: datetime) -> list[int]:
        """The windows task looks at `now`; the imports it released are run (as serve's
        workers would)."""
        self.clock.now = now
        released = [one.import_id for one in self.rollover.tick()]
        for import_id in released:
            self.pipeline.run(import_id)
        return released

    def notices(self) -> list[str]:
        return [e["kind"] for e in drop.emails(self.db) if e["kind"].startswith("window")]


def smaller(students: int) -> Snapshot:
    """Acme without its last `students` students (deactivations beyond 10 % pause)."""
    snap = copy.deepcopy(one_class_district(50))
    for key in list(snap.students)[-students:]:
        del snap.students[key]
    return snap


@pytest.fixture
def world(db: Database, settings: Settings, tmp_path: Path) -> World:
    return World(db, settings, tmp_path)


def test_an_upload_during_the_window_is_held_and_its_email_says_until_when(
    world: World,
) -> None:
    world.window()
    world.clock.now = JUNE_20

    held = world.upload(one_class_district(52))

    assert held.state is ImportState.PAUSED
    assert [t.rule for t in held.tripped] == ["window"]
    assert len(roster(world.db, "acme")["students"]) == 50  # received, checked, not applied
    assert held.entities["students"].added == 2  # and reported as usual
    text, _ = last_email(world.db, held.import_id)
    assert (
        "arrived during the pause window 2027-06-10 to 2027-08-15 (summer rollover): nothing is"
        " applied until it ends; on 2027-08-16 the newest upload held in it is checked against"
        " the roster and imported"
    ) in text.replace("\n", " ")
    assert "Approve it to apply it now." in text.replace("\n", " ")
    assert text.splitlines()[1] == (
        "It is held until its pause window ends; approve it to apply it now, or reject it."
    )
    assert f"rosterdrop imports approve {held.import_id}" in text


def test_approving_a_held_upload_applies_it_early(world: World) -> None:
    world.window()
    world.clock.now = JUNE_20
    held = world.upload(one_class_district(52))

    applied = world.pipeline.approve(held.import_id, by="registrar")

    assert applied.state is ImportState.IMPORTED
    assert len(roster(world.db, "acme")["students"]) == 52


def test_when_the_window_ends_the_newest_held_upload_is_planned_then_and_applied(
    world: World,
) -> None:
    world.window()
    world.clock.now = JUNE_20
    older = world.upload(one_class_district(51))
    newest = world.upload(one_class_district(53))
    assert world.state(older.import_id) is ImportState.SUPERSEDED  # by the newer snapshot
    assert world.turn(datetime(2027, 8, 15, 23, 59, tzinfo=UTC)) == []  # the last day: held

    assert world.turn(AUG_16) == [newest.import_id]

    assert world.state(newest.import_id) is ImportState.IMPORTED
    assert len(roster(world.db, "acme")["students"]) == 53
    assert world.turn(AUG_16 + timedelta(hours=1)) == []  # released once


def test_an_upload_waiting_when_the_window_ends_is_never_overtaken_by_the_held_one(
    world: World,
) -> None:
    """The new year's upload arrives at the window's end and waits for a worker: the windows
    task must not release the older held snapshot to be applied after it."""
    world.window()
    world.clock.now = JUNE_20
    held = world.upload(one_class_district(51))
    world.clock.now = AUG_16
    folder = one_class_district(55).write(world.tmp / "waiting")
    with world.db.read() as conn:
        acme = tenants.get(conn, "acme")
    waiting = world.pipeline.receive(acme, find_files(folder), source="sftp", move=False)

    assert world.turn(AUG_16 + timedelta(minutes=1)) == []

    assert world.pipeline.run(waiting).state is ImportState.IMPORTED
    assert world.state(held.import_id) is ImportState.SUPERSEDED
    assert len(roster(world.db, "acme")["students"]) == 55


def test_a_released_upload_still_goes_through_the_thresholds(world: World) -> None:
    world.window()
    world.clock.now = JUNE_20
    held = world.upload(smaller(10))  # 20 % of the students would go

    world.turn(AUG_16)

    report = world.pipeline.report(held.import_id)
    assert report.state is ImportState.PAUSED
    assert [t.rule for t in report.tripped] == ["deactivate"]
    assert len(roster(world.db, "acme")["students"]) == 50


def test_the_windows_end_may_carry_a_confirmed_one_time_override(world: World) -> None:
    window = world.window(expect=60)
    world.clock.now = JUNE_20
    held = world.upload(smaller(10))  # 20 %: within the expected 60 %

    world.turn(AUG_16)

    assert world.state(held.import_id) is ImportState.IMPORTED
    with world.db.read() as conn:
        assert windows.get(conn, world.tenant_id, window.id).expect_import_id == held.import_id
    world.clock.now = AUG_16 + timedelta(days=1)
    after = world.upload(smaller(20))  # 10 more of the 40 left: 25 %, and the override is spent
    assert after.state is ImportState.PAUSED


@pytest.mark.parametrize(
    ("after", "state"),
    [
        (timedelta(days=30) - timedelta(seconds=1), ImportState.IMPORTED),
        (timedelta(days=30), ImportState.PAUSED),
    ],
)
def test_the_override_serves_an_import_within_thirty_days_of_the_end(
    world: World, after: timedelta, state: ImportState
) -> None:
    world.window(expect=60)
    world.clock.now = WINDOW_END + after

    assert world.upload(smaller(10)).state is state


def test_notices_go_out_the_day_before_and_at_the_end_once_each_across_nodes(
    world: World, db: Database, settings: Settings
) -> None:
    world.window()
    other_node = Rollover(db, world.pipeline, settings, lambda *_: None, clock=world.clock)
    world.turn(JUNE_9 - timedelta(hours=13))  # two days before: nothing yet
    assert world.notices() == []

    world.turn(JUNE_9)
    other_node.tick()
    world.turn(JUNE_20)
    assert world.notices() == ["window_starts"]

    world.turn(AUG_16)
    other_node.tick()
    world.turn(AUG_16 + timedelta(days=2))
    assert world.notices() == ["window_starts", "window_ended"]
    with db.read() as conn:
        kinds = conn.execute(sa.select(window_notices.c.kind).order_by(window_notices.c.kind))
        assert kinds.scalars().all() == ["ended", "starts"]


def test_the_ended_notice_names_the_released_upload(world: World) -> None:
    world.window()
    world.clock.now = JUNE_20
    world.upload(one_class_district(51))
    newest = world.upload(one_class_district(52))

    world.turn(AUG_16)

    [ended] = [e for e in drop.emails(world.db) if e["kind"] == "window_ended"]
    text = _text(world.db, ended["id"])
    assert "The pause window of acme (2027-06-10 to 2027-08-15 (summer rollover)) has ended" in text
    assert f"import #{newest.import_id}, is now checked against the roster" in " ".join(
        text.split()
    )


def test_the_ended_notice_names_an_upload_another_node_released(world: World) -> None:
    """A node released the held upload and stopped before its notice: whoever sends the
    notice reads the release from the database, not from its own memory."""
    world.window()
    world.clock.now = JUNE_20
    world.upload(one_class_district(51))
    newest = world.upload(one_class_district(52))
    world.clock.now = AUG_16
    with world.db.write() as conn:
        assert windows.release(conn, newest.import_id, AUG_16, None)

    assert world.turn(AUG_16 + timedelta(minutes=1)) == []

    [ended] = [e for e in drop.emails(world.db) if e["kind"] == "window_ended"]
    text = " ".join(_text(world.db, ended["id"]).split())
    assert f"import #{newest.import_id}, is now checked against the roster" in text
    assert "No upload arrived" not in text


def test_the_ended_notice_of_a_window_whose_upload_was_approved_early_says_so(
    world: World,
) -> None:
    world.window()
    world.clock.now = JUNE_20
    held = world.upload(one_class_district(52))
    world.pipeline.approve(held.import_id, by="registrar")

    assert world.turn(AUG_16) == []

    [ended] = [e for e in drop.emails(world.db) if e["kind"] == "window_ended"]
    text = " ".join(_text(world.db, ended["id"]).split())
    assert "the 1 upload sent during the window was decided before its end" in text
    assert "No upload arrived" not in text


def test_a_yearly_window_adds_next_years_when_it_ends(world: World) -> None:
    world.window(yearly=True)

    world.turn(AUG_16)
    world.turn(AUG_16 + timedelta(hours=1))

    with world.db.read() as conn:
        found = conn.execute(
            sa.select(pause_windows.c.starts_on, pause_windows.c.ends_on).order_by(
                pause_windows.c.id
            )
        ).all()
    assert [tuple(row) for row in found] == [
        (date(2027, 6, 10), date(2027, 8, 15)),
        (date(2028, 6, 10), date(2028, 8, 15)),
    ]


def test_removing_a_window_releases_what_it_held(world: World) -> None:
    window = world.window()
    world.clock.now = JUNE_20
    held = world.upload(one_class_district(52))
    with world.db.write() as conn:
        windows.remove(conn, world.tenant_id, window.id)

    assert world.turn(JUNE_20 + timedelta(minutes=5)) == [held.import_id]
    assert world.state(held.import_id) is ImportState.IMPORTED


def _text(db: Database, message_id: int) -> str:
    import email
    from email import policy

    from daemon.store.tables import outbox

    with db.read() as conn:
        raw = conn.execute(sa.select(outbox.c.message).where(outbox.c.id == message_id))
        message = email.message_from_bytes(raw.scalar_one(), policy=policy.default)
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    return str(body.get_content()).replace("\r\n", "\n")
