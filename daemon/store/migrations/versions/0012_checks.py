"""checks and check_options: validate-only sets dropped in /check, never applied

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 15:00:00.000000

Additive only: two new tables; no roster or import table changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# As daemon/store/tables.py: integer ids that are BIGINT on PostgreSQL, INTEGER on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checks",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id",
            Id,
            sa.ForeignKey("tenants.id", name="fk_checks_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("files_dir", sa.Text()),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON()),
        sa.Column("results_name", sa.String(64)),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("node_id", Id),
        sa.PrimaryKeyConstraint("id", name="pk_checks"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_checks_tenant_id_id", "checks", ["tenant_id", "id"])
    op.create_table(
        "check_options",
        sa.Column(
            "tenant_id",
            Id,
            sa.ForeignKey("tenants.id", name="fk_check_options_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("email_results", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_check_options"),
    )


def downgrade() -> None:
    op.drop_table("check_options")
    op.drop_index("ix_checks_tenant_id_id", table_name="checks")
    op.drop_table("checks")
