"""imports.work_seconds: the time an import worked, without the time it waited for a person

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: imports recorded before it have no figure, and their emails fall back to
    # their start and finish times.
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("work_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("work_seconds")
