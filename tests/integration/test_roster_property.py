"""Issue 2's property: an imported snapshot is the roster; counts are the true diff.

Hypothesis draws a short history of full snapshots for one district from small pools of ids
and values (so consecutive snapshots overlap: records stay, change, go and come back). Each
is imported; `roster show` must equal it, the counts must equal the diff computed here from
the snapshots alone, an identical upload must change nothing, and the same snapshot with its
rows in another order must count as all unchanged.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from daemon.config import Settings
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from tests.support.clever import Snapshot
from tests.support.roster import (
    NEVER_PAUSE,
    REAL_IMPORTS,
    add_tenant,
    counts,
    pipeline_for,
    roster,
    run_import,
    tables,
)

FIRST = ["Ann", "Zoë", "José", "Mary Ann", "Li"]
LAST = ["Lee", "O'Brien", "Smith, Jr.", "Müller", "de la Cruz", "Kim"]
COURSES = ["Algebra I", 'Computer Science "AP"', "Art, Music & Drama", "Música"]
# canonical value -> how some SIS writes it; the roster keeps the canonical one
GRADES = {"KG": "K", "01": "1", "02": "02", "PK": "PreK", "12": "12"}
TERMS = [("", ""), ("2026-08-15", "2027-06-10"), ("2026-09-01", "")]
US_DATES = {"2026-08-15": "08/15/2026", "2027-06-10": "20270610"}

_tenants = itertools.count(1)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """A valid district: 1-2 schools, each with teachers and sections; students enrolled."""
    snap = Snapshot()
    schools = draw(st.lists(st.sampled_from(["SCH1", "SCH2", "SCH3"]), min_size=1, max_size=2,
                            unique=True))  # fmt: skip
    for school in schools:
        snap.schools[school] = draw(st.sampled_from(["Lincoln", "Escuela Peña", "Adams, North"]))
        teachers = draw(st.lists(st.sampled_from(["T1", "T2", "T3", "T4"]), min_size=1,
                                 max_size=3, unique=True))  # fmt: skip
        for t in teachers:
            first, last = draw(st.sampled_from(FIRST)), draw(st.sampled_from(LAST))
            snap.teachers[(school, t)] = (first, last, f"{t.lower()}@district.org")
        students = draw(st.lists(st.sampled_from(["S1", "S2", "S3", "S4", "S5"]), min_size=1,
                                 max_size=4, unique=True))  # fmt: skip
        for s in students:
            grade = draw(st.sampled_from(sorted(GRADES)))
            email = draw(st.sampled_from(["", f"{s.lower()}@students.org"]))
            snap.students[(school, s)] = (draw(st.sampled_from(FIRST)), "Lee", email, s, grade)
        for c in draw(st.lists(st.sampled_from(["C1", "C2", "C3"]), min_size=1, max_size=2,
                               unique=True)):  # fmt: skip
            team = draw(st.permutations(teachers))[: draw(st.integers(1, len(teachers)))]
            start, end = draw(st.sampled_from(TERMS))
            snap.sections[(school, c)] = (tuple(team), draw(st.sampled_from(COURSES)), start, end)
            pupils = draw(st.lists(st.sampled_from(students), max_size=3, unique=True))
            snap.enrollments.update((school, c, s) for s in pupils)
    if not snap.enrollments:  # every file needs a data row
        school, section = next(iter(snap.sections))
        student = next(s for (sch, s) in snap.students if sch == school)
        snap.enrollments.add((school, section, student))
    # Some exports spell grades, emails and dates their own way.
    if draw(st.booleans()):
        snap.raw.update(GRADES)
        snap.raw.update(US_DATES)
        snap.raw.update({e: e.upper() for *_, e in snap.teachers.values()})
    return snap


class Model:
    """The roster as this test expects it: every record ever seen, and whether it is active."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple[str, ...], tuple[tuple[Any, ...], bool]]] = {
            e.name: {} for e in ENTITIES
        }

    def apply(self, snap: Snapshot) -> dict[str, dict[str, int]]:
        """The counts importing `snap` must report, and the model moved to it."""
        expected = {}
        for name, records in snap.records().items():
            rows = self.rows[name]
            active = {k for k, (_, on) in rows.items() if on}
            c = dict.fromkeys(("added", "updated", "reactivated", "unchanged"), 0)
            for key, fields in records.items():
                if key not in rows:
                    c["added"] += 1
                elif key not in active:
                    c["reactivated"] += 1
                elif rows[key][0] != fields:
                    c["updated"] += 1
                else:
                    c["unchanged"] += 1
                rows[key] = (fields, True)
            gone = active - records.keys()
            for key in gone:
                rows[key] = (rows[key][0], False)
            expected[name] = {
                "active_before": len(active),
                **c,
                "deactivated": len(gone),
                "held": 0,
            }
        return expected


def identical(expected: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The counts of the same snapshot imported again: everything unchanged."""
    out = {}
    for name, c in expected.items():
        after = c["active_before"] + c["added"] + c["reactivated"] - c["deactivated"]
        out[name] = {**dict.fromkeys(c, 0), "active_before": after, "unchanged": after}
    return out


def check_history(
    db: Database, settings: Settings, history: list[Snapshot], order: list[int]
) -> None:
    tenant = f"district{next(_tenants)}"
    add_tenant(db, tenant, NEVER_PAUSE)
    pipeline = pipeline_for(db, settings)
    model = Model()
    with tempfile.TemporaryDirectory() as scratch:
        for n, snap in enumerate(history):
            folder = snap.write(Path(scratch) / f"upload{n}")
            expected = model.apply(snap)

            report = run_import(pipeline, tenant, folder)
            assert report.state is ImportState.IMPORTED, report.problems
            assert counts(report) == expected
            assert roster(db, tenant) == snap.roster_json()

        before = tables(db, tenant)
        again = run_import(pipeline, tenant, folder)
        assert again.state is ImportState.IMPORTED
        assert [p.code for p in again.problems].count("identical_upload") == 1
        assert counts(again) == identical(expected)
        assert tables(db, tenant) == before  # not even a timestamp moved

        # The same snapshot in other bytes (rows reordered, LF endings) goes the whole way.
        shuffled = history[-1].write(Path(scratch) / "shuffled", order=order, newline="\n")
        report = run_import(pipeline, tenant, shuffled)
        assert "identical_upload" not in [p.code for p in report.problems]
        assert counts(report) == identical(expected)
        assert tables(db, tenant) == before


def test_imported_snapshots_are_the_roster_and_counts_are_the_true_diff(
    db: Database, settings: Settings, database_url: str
) -> None:
    examples = 8 if database_url.startswith("sqlite") else 3

    @hypothesis_settings(REAL_IMPORTS, max_examples=examples)
    @given(
        history=st.lists(snapshots(), min_size=2, max_size=3),
        order=st.lists(st.integers(0, 50), max_size=20),
    )
    def check(history: list[Snapshot], order: list[int]) -> None:
        check_history(db, settings, history, order)

    check()
