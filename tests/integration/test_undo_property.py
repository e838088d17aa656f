"""Issue 14's property: import A, import B, undo B → the roster is A's exactly.

Hypothesis draws two or three full snapshots of one district from small pools of ids and
values (so they overlap: records stay, change, go and come back, teachers move between
sections, extra columns change). After each is imported, undoing the newest must give back
every record's values, extra columns, active state and links as they were before it (a
record it added: inactive); undoing that undo must give back the newest's roster; and
undoing back to the second snapshot's import must give back the first's roster.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from tests.support.clever import Snapshot
from tests.support.roster import NEVER_PAUSE, REAL_IMPORTS, add_tenant, pipeline_for, run_import
from tests.support.undoing import add_extra_column, assert_restored, run_undo, state

NAMES = ["Ann", "Zoë", "O'Brien", "Smith, Jr.", "de la Cruz"]
COURSES = ["Algebra I", 'Computer Science "AP"', "Música"]
TERMS = [("", ""), ("2026-08-15", "2027-06-10"), ("", "2027-06-30")]
STATE_IDS = ["", "X1", "X2"]

_tenants = itertools.count(1)


@st.composite
def uploads(draw: st.DrawFn) -> tuple[Snapshot, dict[str, str]]:
    """A valid district, and the extra `state_id` of its students."""
    snap = Snapshot()
    for school in draw(st.lists(st.sampled_from(["SCH1", "SCH2"]), min_size=1, unique=True)):
        snap.schools[school] = draw(st.sampled_from(["Lincoln", "Escuela Peña"]))
        teachers = draw(st.lists(st.sampled_from(["T1", "T2", "T3"]), min_size=1, unique=True))
        for t in teachers:
            snap.teachers[(school, t)] = (draw(st.sampled_from(NAMES)), "Lee", f"{t}@d.org")
        students = draw(st.lists(st.sampled_from(["S1", "S2", "S3", "S4"]), min_size=1,
                                 unique=True))  # fmt: skip
        for s in students:
            email = draw(st.sampled_from(["", f"{s}@s.org"]))
            grade = draw(st.sampled_from(["KG", "03", ""]))
            snap.students[(school, s)] = (draw(st.sampled_from(NAMES)), "Kim", email, s, grade)
        for c in draw(st.lists(st.sampled_from(["C1", "C2"]), min_size=1, unique=True)):
            team = draw(st.permutations(teachers))[: draw(st.integers(1, len(teachers)))]
            start, end = draw(st.sampled_from(TERMS))
            snap.sections[(school, c)] = (tuple(team), draw(st.sampled_from(COURSES)), start, end)
            pupils = draw(st.lists(st.sampled_from(students), max_size=3, unique=True))
            snap.enrollments.update((school, c, s) for s in pupils)
    if not snap.enrollments:  # every file needs a data row
        school, section = next(iter(snap.sections))
        student = next(s for (sch, s) in snap.students if sch == school)
        snap.enrollments.add((school, section, student))
    extra = {s: draw(st.sampled_from(STATE_IDS)) for (_, s) in snap.students}
    return snap, extra


def check_history(
    db: Database, settings: Settings, history: list[tuple[Snapshot, dict[str, str]]]
) -> None:
    tenant = f"district{next(_tenants)}"
    add_tenant(db, tenant, NEVER_PAUSE)
    pipeline = pipeline_for(db, settings)
    states, ids = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for n, (snap, extra) in enumerate(history):
            folder = snap.write(Path(scratch) / f"upload{n}")
            add_extra_column(folder, "students.csv", "state_id", extra)
            report = run_import(pipeline, tenant, folder)
            assert report.state is ImportState.IMPORTED, report.problems
            states.append(state(db, tenant))
            ids.append(report.import_id)

    undone = run_undo(pipeline, ids[-1])
    assert undone.state is ImportState.IMPORTED
    assert_restored(state(db, tenant), states[-2])

    redone = run_undo(pipeline, undone.import_id)
    assert redone.state is ImportState.IMPORTED
    assert state(db, tenant) == states[-1]

    back = run_undo(pipeline, ids[1], back_to=True)  # undo, redo, the last ones: all of them
    assert back.state is ImportState.IMPORTED
    assert_restored(state(db, tenant), states[0])


def test_undoing_an_import_gives_back_the_roster_before_it_exactly(
    db: Database, settings: Settings, database_url: str
) -> None:
    examples = 10 if database_url.startswith("sqlite") else 4

    @hypothesis_settings(REAL_IMPORTS, max_examples=examples)
    @given(history=st.lists(uploads(), min_size=2, max_size=3))
    def check(history: list[tuple[Snapshot, dict[str, str]]]) -> None:
        check_history(db, settings, history)

    check()
