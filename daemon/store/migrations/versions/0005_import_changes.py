"""import_changes: the record-level changes an import would make (paused) or made (applied)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# As daemon/store/tables.py: integer ids that are BIGINT on PostgreSQL, INTEGER on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "import_changes",
        sa.Column(
            "import_id",
            Id,
            sa.ForeignKey(
                "imports.id", ondelete="CASCADE", name="fk_import_changes_import_id_imports"
            ),
            nullable=False,
        ),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key1", sa.String(255), nullable=False),
        sa.Column("key2", sa.String(255), nullable=False),
        sa.Column("key3", sa.String(255), nullable=False),
        sa.Column("label", sa.Text()),
        sa.Column("fields", sa.Text()),
        sa.Column("line", sa.Integer()),
        sa.Column("known", sa.Boolean()),
        sa.PrimaryKeyConstraint(
            "import_id", "entity", "kind", "key1", "key2", "key3", name="pk_import_changes"
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("import_changes")
