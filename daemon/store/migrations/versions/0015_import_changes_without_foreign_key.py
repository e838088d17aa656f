"""PostgreSQL: import_changes without its foreign key to imports

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 00:45:00.000000

PostgreSQL checks a foreign key with a trigger per inserted row: of the 875,000 changes a
100,000-student district's paused first import keeps (its adds, for the change browser), the
checks took 9.9 s of 23.5 s (14 us a row). Only rosterdrop writes the table, always for an
import it has just recorded in the same transaction, and where it deletes an import it
deletes the import's changes too (`daemon/store/imports.py: delete`). SQLite checks a
foreign key by a look-up inside the insert (the same import's changes: 1.8 s in all), and
keeps it: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_import_changes_import_id_imports"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE import_changes DROP CONSTRAINT IF EXISTS {FOREIGN_KEY}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Rows of an import deleted since would fail the constraint: without it they were
    # unreachable, and with it they would have gone with their import.
    op.execute(
        "DELETE FROM import_changes c"
        " WHERE NOT EXISTS (SELECT FROM imports i WHERE i.id = c.import_id)"
    )
    op.execute(
        f"ALTER TABLE import_changes ADD CONSTRAINT {FOREIGN_KEY} FOREIGN KEY (import_id)"
        " REFERENCES imports (id) ON DELETE CASCADE"
    )
