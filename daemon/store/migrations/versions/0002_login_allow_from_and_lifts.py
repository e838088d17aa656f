"""tenants.allow_from and login_lifts: where a tenant may log in from, and operators' ban lifts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("allow_from", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    op.create_table(
        "login_lifts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_lifts")),
    )


def downgrade() -> None:
    op.drop_table("login_lifts")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("allow_from")
