"""The database tables. Roster tables are read by downstream applications: see docs/schema.md."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect

from daemon.roster.entities import ENTITIES, Entity

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Integer ids that are BIGINT on PostgreSQL but stay INTEGER on SQLite (its rowid alias).
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both databases (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("rosterdrop stores only timezone-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


tenants = Table(
    "tenants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("password_hash", Text),
    Column("authorized_keys", Text, nullable=False, server_default=""),
    Column("emails", JSON, nullable=False),
    Column("settings", JSON, nullable=False),
    # CIDR networks the tenant may log in from; empty: anywhere (migration 0002).
    Column("allow_from", JSON, nullable=False, server_default=text("'[]'")),
)

# Ban lifts an operator asked for (`tenant unban`), read by every running daemon (migration 0002).
login_lifts = Table(
    "login_lifts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject", String(128), nullable=False),  # user:NAME or address:ADDR
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("state", String(32), nullable=False),
    Column("source", String(16), nullable=False),
    # The upload's input format, clever or oneroster (migration 0013).
    Column("source_format", String(16), nullable=False, server_default=text("'clever'")),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("files_dir", Text),  # where the upload's files are now: spool, then archive
    Column("archived_at", UtcDateTime()),
    Column("files", JSON, nullable=False),  # name -> {"size", "sha256"}, plus other files seen
    Column("snapshot_hash", String(64)),
    Column("counts", JSON),  # entity -> EntityChanges.as_dict()
    Column("file_rows", JSON),  # file -> {"rows", "errors", "warnings"}
    Column("tripped", JSON),  # [TrippedThreshold.as_dict()]
    Column("problem_totals", JSON),  # severity -> count
    Column("fatal_reason", Text),
    Column("decided_by", String(128)),
    Column("decided_at", UtcDateTime()),
    Column("superseded_by", Id),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Seconds of work so far: validating before a pause, plus the run after an approval.
    Column("work_seconds", Float),
    # The node (nodes.id) that claimed or took over the import and runs it; null: a command's
    # (migration 0009). No foreign key: a dead node's row goes while its history stays.
    Column("node_id", Id),
    # An undo import (source `undo`): the oldest import it undoes (migration 0011).
    Column("undoes", Id),
    Index(None, "tenant_id", "id"),
    Index(None, "state"),
    # An undone claim deletes its row: its id must not come back (folders are named by it).
    sqlite_autoincrement=True,
)

import_problems = Table(
    "import_problems",
    metadata,
    Column("import_id", Id, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("severity", String(8), nullable=False),
    Column("code", String(64), nullable=False),
    Column("file", String(64)),
    Column("line", Integer),
    Column("column", String(128)),
    Column("value", Text),
    Column("message", Text, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, ForeignKey("tenants.id")),
    Column("import_id", Id),
    Column("kind", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("message", LargeBinary, nullable=False),  # the complete RFC 5322 message
    Column("state", String(16), nullable=False),  # pending, sent, failed
    Column("created_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text),
    Column("sent_at", UtcDateTime()),
    Index(None, "state", "next_attempt_at"),
)

# Web Import Manager accounts (migration 0004): a district administrator has its tenant; an
# operator has none and sees every tenant.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("tenant_id", Id, ForeignKey("tenants.id")),
    Column("operator", Boolean, nullable=False, server_default=text("false")),
    Column("email", Text),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_changed_at", UtcDateTime()),
    # The TOTP second factor (migration 0006): the base32 secret, and the last time step a
    # code was accepted for, so that a code works once.
    Column("totp_secret", Text),
    Column("totp_last_step", BigInteger),
)

# One-time links that set a password (migration 0006): an invitation or "forgot password".
# Only the token's hash is kept; a link is deleted when used, superseded or its user disabled.
password_links = Table(
    "password_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index(None, "user_id"),
)

# Bearer tokens for /api/v1 (migration 0006): the hash of each, kept after revocation so that
# `user token NAME --list` still shows it.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(100), nullable=False, server_default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    Index(None, "user_id"),
)

# Signed-in browsers (migration 0004): the cookie carries a random token, this table its hash,
# so a session ends for good when its row goes (sign-out, password change, disabled user).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("address", String(64)),
    Index(None, "user_id"),
)

# Every decision a person made in the Import Manager (migration 0004).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("tenant_id", Id),
    Column("import_id", Id),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("address", String(64)),
    Index(None, "import_id"),
    Index(None, "tenant_id", "id"),
)

# What an import would change (paused) or changed (applied), record by record, for the change
# browser (migration 0005; daemon/store/kept_changes.py). Not for downstream readers. A key
# shorter than three parts leaves the rest ''. Records an applied import added to an entity
# the tenant had none of are not copied here: the roster has them (`created_import_id`).
import_changes = Table(
    "import_changes",
    metadata,
    # On SQLite only: PostgreSQL's check, a trigger per row, took 9.9 s of a paused first
    # import's 23.5 s (migration 0015); imports.delete deletes an import's changes itself.
    Column("import_id", Id, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True),
    Column("entity", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),  # add, update, reactivate, deactivate, held
    Column("key1", String(255), primary_key=True),
    Column("key2", String(255), primary_key=True),
    Column("key3", String(255), primary_key=True),
    Column("label", Text),  # the record's name, as searched and shown
    Column("fields", Text),  # JSON {field: [before, after]} of the changed fields, or null
    Column("line", Integer),  # held: the file's line
    Column("known", Boolean),  # held: whether the roster has the record (kept as it is)
    sqlite_with_rowid=False,
)

# The running daemons sharing the database (migration 0009): each renews its lease every
# [cluster] heartbeat_seconds; one whose lease ran out is dead, and its imports are taken over.
nodes = Table(
    "nodes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),  # [cluster] node_name, or host:pid
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=False),
    Column("stopped_at", UtcDateTime()),  # a clean stop: its lease ended then
    Column("sftp_port", Integer),
    Column("http_port", Integer),
    Column("workers", Integer, nullable=False),
    Index(None, "lease_until"),
    sqlite_autoincrement=True,  # a node id is never reused: imports name it
)

# Failed SFTP logins, as every node sees them (migration 0009): each node publishes its own
# and replays the others', so a guesser spreading over nodes meets one count and one ban.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node_id", Id, nullable=False),
    Column("source", String(64), nullable=False),  # addresses.source_key of the peer
    Column("username", String(128), nullable=False),
    Column("count_user", Boolean, nullable=False),  # a password guess (paces the username)
    Column("failed_at", UtcDateTime(), nullable=False),
    Index(None, "failed_at"),
)

# A tenant's pause windows (migration 0010; daemon/store/windows.py): uploads are held, not
# applied, from starts_at until ends_at (the days starts_on … ends_on in [windows] timezone).
pause_windows = Table(
    "pause_windows",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),  # the last day held
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),  # the midnight after ends_on
    Column("note", Text, nullable=False, server_default=""),
    Column("yearly", Boolean, nullable=False, server_default=text("false")),
    # The one-time threshold override its end carries, who confirmed it, the import it served.
    Column("expect_percent", Float),
    Column("expect_by", String(128)),
    Column("expect_import_id", Id),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Index(None, "tenant_id", "starts_on"),
)

# The notices sent about a window: its key makes each go out once, whichever node (or
# restart) gets there first (migration 0010).
window_notices = Table(
    "window_notices",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("window_id", Id, ForeignKey("pause_windows.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # starts, ended
    Column("outbox_id", Id),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Checks: sets dropped in a tenant's /check, validated and planned, never applied
# (daemon/check/; migration 0012). Not imports: no import query ever sees them.
checks = Table(
    "checks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("state", String(16), nullable=False),  # received, checked, failed
    Column("received_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("files_dir", Text),  # the checked files: spool, then archive; null once expired
    Column("archived_at", UtcDateTime()),
    Column("files", JSON, nullable=False),  # name -> {"name", "size"}, plus "others"
    Column("result", JSON),  # the dry run: files, entities, tripped, problems, totals
    Column("results_name", String(64)),  # /check/results/<results_name>-report.txt, …
    Column("error", Text),  # why a check could not run to its end (state failed)
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # The cluster node that claimed it and runs it (as imports.node_id); null: one node.
    Column("node_id", Id),
    Index(None, "tenant_id", "id"),
    sqlite_autoincrement=True,  # folders are named by the id: an undone claim's never returns
)

# Per tenant: whether a check's result is also emailed (default: only /check/results).
check_options = Table(
    "check_options",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.id"), primary_key=True),
    Column("email_results", Boolean, nullable=False, server_default=text("false")),
)

_TYPES = {"term_start": Date, "term_end": Date, "position": Integer, "extra": Text}


def _roster_table(entity: Entity) -> Table:
    """One table per entity, keyed by tenant and the entity's natural key.

    Records are never deleted: a record missing from an upload gets active = false, and
    `changed_import_id` says which import last added, changed or deactivated it.
    """
    # No foreign key to tenants: PostgreSQL checks those with a trigger per row, which would
    # triple the cost of a district's first import. Only rosterdrop writes these tables.
    key: list[Column[Any]] = [
        Column("tenant_id", Id, primary_key=True),
        *(Column(name, String(255), primary_key=True) for name in entity.key),
    ]
    fields: list[Column[Any]] = [Column(name, _TYPES.get(name, Text)) for name in entity.fields]
    return Table(
        entity.name,
        metadata,
        *key,
        *fields,
        Column("active", Boolean, nullable=False),
        Column("created_import_id", Id, nullable=False),
        Column("changed_import_id", Id, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("changed_at", UtcDateTime(), nullable=False),
        sqlite_with_rowid=False,  # one b-tree keyed by the natural key, not two
    )


roster_tables: dict[str, Table] = {entity.name: _roster_table(entity) for entity in ENTITIES}
