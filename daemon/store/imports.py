"""The import history: one row per upload, its state, counts, thresholds and problems."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from daemon.errors import NotFound
from daemon.roster.outcome import ENDED, RESUMABLE, ImportState
from daemon.roster.problems import Problem, Severity
from daemon.store.tables import import_changes, import_problems, imports, tenants

APPLIED = (ImportState.IMPORTED, ImportState.IMPORTED_WITH_ERRORS)


@dataclass(frozen=True)
class ImportRecord:
    id: int
    tenant_id: int
    tenant: str
    state: ImportState
    source: str
    received_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_dir: str | None = None
    archived_at: datetime | None = None
    files: dict[str, Any] = field(default_factory=dict)
    snapshot_hash: str | None = None
    counts: dict[str, Any] | None = None
    file_rows: dict[str, Any] | None = None
    tripped: list[dict[str, Any]] | None = None
    problem_totals: dict[str, int] | None = None
    fatal_reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    superseded_by: int | None = None
    attempts: int = 0
    work_seconds: float | None = None  # None: recorded before it was kept
    node_id: int | None = None  # the node that runs it (None: a command's)
    undoes: int | None = None  # an undo import: the oldest import it undoes
    source_format: str = "clever"  # the upload's input format: clever or oneroster


_COLUMNS = [c for c in imports.c if c.name != "tenant_id"]


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS, imports.c.tenant_id, tenants.c.name.label("tenant")).join(
        tenants, tenants.c.id == imports.c.tenant_id
    )


def _record(row: RowMapping) -> ImportRecord:
    data = dict(row)
    data["state"] = ImportState(data["state"])
    return ImportRecord(**data)


def create(
    conn: Connection,
    tenant_id: int,
    *,
    source: str,
    files: dict[str, Any],
    now: datetime,
    node_id: int | None = None,
    source_format: str = "clever",
) -> int:
    result = conn.execute(
        imports.insert().values(
            tenant_id=tenant_id,
            node_id=node_id,
            state=ImportState.RECEIVED,
            source=source,
            source_format=source_format,
            received_at=now,
            updated_at=now,
            files=files,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def get(conn: Connection, import_id: int) -> ImportRecord:
    row = conn.execute(_select().where(imports.c.id == import_id)).mappings().first()
    if row is None:
        raise NotFound(f"no import #{import_id} (see `rosterdrop imports list`)")
    return _record(row)


def list_recent(
    conn: Connection,
    *,
    tenant_id: int | None = None,
    states: Iterable[ImportState] | None = None,
    limit: int | None = 50,
    before: int | None = None,
    other_than: Iterable[ImportState] = (),
    at_least: int | None = None,
) -> list[ImportRecord]:
    """Newest first; `before`: only imports older than that id (keyset paging); `at_least`:
    only that import and newer ones; `limit` None: all of them."""
    query = _select().order_by(imports.c.id.desc()).limit(limit)
    if at_least is not None:
        query = query.where(imports.c.id >= at_least)
    if tenant_id is not None:
        query = query.where(imports.c.tenant_id == tenant_id)
    if states is not None:
        query = query.where(imports.c.state.in_([str(s) for s in states]))
    excluded = [str(s) for s in other_than]
    if excluded:
        query = query.where(imports.c.state.not_in(excluded))
    if before is not None:
        query = query.where(imports.c.id < before)
    return [_record(row) for row in conn.execute(query).mappings()]


def resumable(conn: Connection) -> list[ImportRecord]:
    """Imports a restart must carry on with, oldest first."""
    query = _select().where(imports.c.state.in_([str(s) for s in RESUMABLE]))
    return [_record(row) for row in conn.execute(query.order_by(imports.c.id)).mappings()]


def unarchived(conn: Connection) -> list[ImportRecord]:
    """Ended imports whose files still sit in the spool."""
    query = _select().where(
        imports.c.state.in_([str(s) for s in ENDED]),
        imports.c.archived_at.is_(None),
        imports.c.files_dir.is_not(None),
    )
    return [_record(row) for row in conn.execute(query.order_by(imports.c.id)).mappings()]


def expired(conn: Connection, before: datetime) -> list[ImportRecord]:
    """Archived imports whose files are past the retention period."""
    query = _select().where(imports.c.archived_at < before, imports.c.files_dir.is_not(None))
    return [_record(row) for row in conn.execute(query.order_by(imports.c.id)).mappings()]


def last_applied(conn: Connection, tenant_id: int) -> ImportRecord | None:
    row = (
        conn.execute(
            _select()
            .where(imports.c.tenant_id == tenant_id, imports.c.state.in_([str(s) for s in APPLIED]))
            .order_by(imports.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return _record(row) if row else None


def count_in_state(conn: Connection, state: ImportState, *, tenant_id: int | None = None) -> int:
    """How many imports are in `state` (of one tenant): one COUNT over the state index."""
    query = sa.select(sa.func.count()).select_from(imports).where(imports.c.state == str(state))
    if tenant_id is not None:
        query = query.where(imports.c.tenant_id == tenant_id)
    return int(conn.execute(query).scalar_one())


def count_by_state(conn: Connection) -> dict[ImportState, int]:
    query = sa.select(imports.c.state, sa.func.count()).group_by(imports.c.state)
    return {ImportState(state): count for state, count in conn.execute(query)}


def update(conn: Connection, import_id: int, now: datetime, **values: Any) -> None:
    if "state" in values:
        values["state"] = str(values["state"])
    conn.execute(imports.update().where(imports.c.id == import_id).values(updated_at=now, **values))


def delete(conn: Connection, import_id: int) -> None:
    """An import and what is kept of it (on PostgreSQL no foreign key deletes its changes:
    migration 0015)."""
    conn.execute(import_problems.delete().where(import_problems.c.import_id == import_id))
    conn.execute(import_changes.delete().where(import_changes.c.import_id == import_id))
    conn.execute(imports.delete().where(imports.c.id == import_id))


def save_problems(conn: Connection, import_id: int, problems: Sequence[Problem]) -> None:
    conn.execute(import_problems.delete().where(import_problems.c.import_id == import_id))
    if problems:
        conn.execute(
            import_problems.insert(),
            [
                {"import_id": import_id, "seq": seq, **p.as_dict()}
                for seq, p in enumerate(problems, start=1)
            ],
        )


def problems(conn: Connection, import_id: int) -> list[Problem]:
    rows = conn.execute(
        sa.select(import_problems)
        .where(import_problems.c.import_id == import_id)
        .order_by(import_problems.c.seq)
    ).mappings()
    return [
        Problem(
            severity=Severity(row["severity"]),
            code=row["code"],
            message=row["message"],
            file=row["file"],
            line=row["line"],
            column=row["column"],
            value=row["value"],
        )
        for row in rows
    ]
