"""nodes, imports.node_id and login_failures: several daemons on one PostgreSQL

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01 15:00:00.000000

Additive only. `nodes` is the registry of running daemons and their leases; an import names
the node that runs it; `login_failures` is the failed-login stream every node counts from.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sftp_port", sa.Integer(), nullable=True),
        sa.Column("http_port", sa.Integer(), nullable=True),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_nodes_lease_until"), "nodes", ["lease_until"])
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_id", _ID, nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("node_id", _ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("count_user", sa.Boolean(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_table("login_failures")
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("node_id")
    op.drop_index(op.f("ix_nodes_lease_until"), table_name="nodes")
    op.drop_table("nodes")
