"""On PostgreSQL the kept changes have no foreign key to their import (migration 0015): its
check, a trigger per row, was 40 % of a paused first import. What the key did, deleting an
import's changes with the import, rosterdrop does itself; a downgrade puts the key back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.district import generate
from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.store import imports
from daemon.store.database import Database
from daemon.store.tables import import_changes
from tests.support import postgres
from tests.support.roster import add_tenant, migrate, pipeline_for, run_import

pytestmark = pytest.mark.postgres
FOREIGN_KEY = "fk_import_changes_import_id_imports"


@pytest.fixture
def database_url(postgres_server: str) -> str:
    return postgres.create_database(postgres_server, f"changes_{os.getpid()}_{time.time_ns()}")


def _foreign_keys(db: Database) -> list[str]:
    query = sa.text(
        "SELECT conname FROM pg_constraint"
        " WHERE conrelid = CAST('import_changes' AS regclass) AND contype = 'f'"
    )
    with db.read() as conn:
        return list(conn.execute(query).scalars())


def _kept(db: Database) -> dict[int, int]:
    query = sa.select(import_changes.c.import_id, sa.func.count()).group_by("import_id")
    with db.read() as conn:
        return {import_id: n for import_id, n in conn.execute(query)}


def _paused_first_import(db: Database, settings: Settings, tmp_path: Path) -> int:
    """A district's first upload with a row error: paused, its adds kept for review."""
    folder = tmp_path / "acme"
    generate(folder, 40)
    header, first, *rows = (folder / "students.csv").read_text().splitlines()
    first = ",".join("" if i == 1 else v for i, v in enumerate(first.split(",")))
    (folder / "students.csv").write_text("\n".join([header, first, *rows]) + "\n")
    add_tenant(db, "acme")
    report = run_import(pipeline_for(db, settings), "acme", folder)
    assert report.state is ImportState.PAUSED
    return report.import_id


def test_kept_changes_have_no_foreign_key_and_a_downgrade_puts_it_back(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    import_id = _paused_first_import(db, settings, tmp_path)
    kept = _kept(db)
    assert kept[import_id] > 40
    assert _foreign_keys(db) == []
    with db.write() as conn:  # the changes of an import a person deleted by hand
        conn.execute(
            import_changes.insert().values(
                import_id=import_id + 1000, entity="students", kind="add", key1="S", key2="1",
                key3="",
            )
        )  # fmt: skip

    migrate(db, "downgrade", "0014")
    assert _foreign_keys(db) == [FOREIGN_KEY]
    assert _kept(db) == kept  # the orphan went; the paused import's changes stayed

    migrate(db, "upgrade", "0015")
    assert _foreign_keys(db) == []
    assert _kept(db) == kept


def test_an_import_deleted_takes_its_kept_changes_with_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    import_id = _paused_first_import(db, settings, tmp_path)
    with db.write() as conn:
        imports.delete(conn, import_id)
    assert _kept(db) == {}
