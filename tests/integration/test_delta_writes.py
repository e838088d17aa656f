"""An import writes only the roster rows its plan changes: every other row keeps its stamps
(and, on PostgreSQL, the very row version the import that last changed it wrote)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.district import generate
from daemon.config import Settings
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import ImportReport, ImportState
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.tables import roster_tables
from tests.support.roster import add_tenant, pipeline_for, run_import, tables


def _written_by(db: Database, tenant: str, import_id: int) -> dict[str, int]:
    """Per entity, the roster rows an import created or changed (its stamp on them)."""
    with db.read() as conn:
        tenant_id = tenants.get(conn, tenant).id
        out = {}
        for entity in ENTITIES:
            table = roster_tables[entity.name]
            query = sa.select(sa.func.count()).where(
                table.c.tenant_id == tenant_id, table.c.changed_import_id == import_id
            )
            out[entity.name] = conn.execute(query).scalar_one()
        return out


def _row_versions(db: Database) -> dict[str, list[Any]]:
    """PostgreSQL's row versions (xmin): an UPDATE writes a new one even when nothing
    changes. SQLite has no such thing: an empty dict."""
    if db.engine.dialect.name != "postgresql":
        return {}
    with db.read() as conn:
        return {
            name: sorted(
                conn.execute(
                    sa.select(sa.column("xmin").cast(sa.Text)).select_from(table)
                ).scalars()
            )
            for name, table in roster_tables.items()
        }


def _imported(db: Database, settings: Settings, folder: Path, students: int) -> ImportReport:
    """A district of `students` imported into a new tenant `acme`."""
    add_tenant(db, "acme")
    generate(folder, students)
    return run_import(pipeline_for(db, settings), "acme", folder)


def test_a_one_percent_change_writes_exactly_the_rows_its_plan_counts(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    first = _imported(db, settings, tmp_path / "day1", 600)
    generate(tmp_path / "day2", 600, change=0.01)
    assert _written_by(db, "acme", first.import_id)["enrollments"] == 4200

    second = run_import(pipeline_for(db, settings), "acme", tmp_path / "day2")

    assert second.state is ImportState.IMPORTED
    plan = second.entities
    expected = {
        name: c.added + c.updated + c.reactivated + c.deactivated for name, c in plan.items()
    }
    assert _written_by(db, "acme", second.import_id) == expected
    assert expected["students"] > 0
    assert expected["enrollments"] > 0
    assert sum(expected.values()) < sum(c.active_before for c in plan.values()) // 20


def test_the_same_roster_sent_again_in_other_bytes_writes_no_roster_row(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _imported(db, settings, tmp_path / "day1", 300)
    before, versions = tables(db, "acme"), _row_versions(db)
    # The same records with LF line ends and every field quoted: other files (no
    # identical-upload shortcut), the same snapshot.
    again = tmp_path / "day2"
    again.mkdir()
    for path in (tmp_path / "day1").glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as source:
            rows = list(csv.reader(source))
        with (again / path.name).open("w", newline="", encoding="utf-8") as out:
            csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)

    report = run_import(pipeline_for(db, settings), "acme", again)

    assert report.state is ImportState.IMPORTED
    assert "identical_upload" not in [p.code for p in report.problems]
    assert all(c.changed == 0 for c in report.entities.values())
    assert _written_by(db, "acme", report.import_id) == {e.name: 0 for e in ENTITIES}
    assert tables(db, "acme") == before
    assert _row_versions(db) == versions
