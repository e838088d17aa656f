"""pause_windows and window_notices: the school year's rollover windows and their notices

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# As daemon/store/tables.py: integer ids that are BIGINT on PostgreSQL, INTEGER on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _tenant_id(table: str, *, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "tenant_id",
        Id,
        sa.ForeignKey("tenants.id", ondelete="CASCADE", name=f"fk_{table}_tenant_id_tenants"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "pause_windows",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _tenant_id("pause_windows"),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("starts_at", When, nullable=False),
        sa.Column("ends_at", When, nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("yearly", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("expect_percent", sa.Float()),
        sa.Column("expect_by", sa.String(128)),
        sa.Column("expect_import_id", Id),
        sa.Column("created_at", When, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pause_windows"),
    )
    op.create_index(
        "ix_pause_windows_tenant_id_starts_on", "pause_windows", ["tenant_id", "starts_on"]
    )
    op.create_table(
        "window_notices",
        _tenant_id("window_notices", primary_key=True),
        sa.Column(
            "window_id",
            Id,
            sa.ForeignKey(
                "pause_windows.id",
                ondelete="CASCADE",
                name="fk_window_notices_window_id_pause_windows",
            ),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("outbox_id", Id),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "window_id", "kind", name="pk_window_notices"),
    )


def downgrade() -> None:
    op.drop_table("window_notices")
    op.drop_index("ix_pause_windows_tenant_id_starts_on", table_name="pause_windows")
    op.drop_table("pause_windows")
