"""password_links, api_tokens and the users' TOTP columns: invitations, "forgot password",
a second factor and Bearer tokens for /api/v1

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As daemon/store/tables.py: integer ids that are BIGINT on PostgreSQL, INTEGER on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _user_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "user_id",
        Id,
        sa.ForeignKey("users.id", ondelete="CASCADE", name=f"fk_{table}_user_id_users"),
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.Text()))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger()))
    op.create_table(
        "password_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        _user_id("password_links"),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_password_links"),
    )
    op.create_index("ix_password_links_user_id", "password_links", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _user_id("api_tokens"),
        sa.Column("label", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("revoked_at", When),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("password_links")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
