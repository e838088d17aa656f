"""imports.source_format: which input format an upload was in (clever or oneroster)

Revision ID: 0013
Revises: 0007
Create Date: 2026-12-01 15:00:00.000000

Additive only: every import recorded before it was a Clever upload.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source_format", sa.String(16), nullable=False, server_default=sa.text("'clever'")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("source_format")
