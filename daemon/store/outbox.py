"""The email outbox: durable rows that a sender claims, delivers and marks, in plain SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.errors import Conflict, NotFound
from daemon.store.tables import outbox, tenants

NO_RECIPIENTS = "no recipients"


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Email(Protocol):
    """What the outbox stores of a rendered email (notify's OutgoingEmail, without importing it)."""

    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def recipients(self) -> tuple[str, ...]: ...
    @property
    def message(self) -> bytes: ...


@dataclass(frozen=True)
class OutboxMessage:
    """One outbox row; `message` is the complete RFC 5322 message as it goes on the wire."""

    id: int
    tenant_id: int | None
    import_id: int | None
    kind: str
    subject: str
    recipients: tuple[str, ...]
    message: bytes = field(repr=False)
    state: OutboxState
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    tenant: str | None = None  # the tenant's name, for the log lines about the message

    @property
    def about(self) -> dict[str, object]:
        """The tenant and import, for the log lines about the message (as every line about
        an import or a tenant names them)."""
        about = {"tenant": self.tenant, "import_id": self.import_id}
        return {key: value for key, value in about.items() if value is not None}


def enqueue(
    conn: Connection,
    email: Email,
    *,
    tenant_id: int | None,
    import_id: int | None,
    now: datetime,
) -> int:
    """Add an email in the caller's transaction; one without recipients is kept as failed."""
    now = _to_utc(now)
    state, error = OutboxState.PENDING, None
    if not email.recipients:
        # Never dropped silently: an operator sees it in `outbox list` and can fix and retry.
        state, error = OutboxState.FAILED, NO_RECIPIENTS
    result = conn.execute(
        outbox.insert().values(
            tenant_id=tenant_id,
            import_id=import_id,
            kind=email.kind,
            subject=email.subject,
            recipients=list(email.recipients),
            message=email.message,
            state=state,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
            last_error=error,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _select() -> sa.Select[Any]:
    return sa.select(outbox, tenants.c.name.label("tenant")).outerjoin(
        tenants, tenants.c.id == outbox.c.tenant_id
    )


def due(conn: Connection, now: datetime, limit: int) -> list[OutboxMessage]:
    """Pending messages whose next attempt has come, oldest first."""
    rows = conn.execute(
        _select()
        .where(outbox.c.state == OutboxState.PENDING, outbox.c.next_attempt_at <= _to_utc(now))
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    return [_message(row) for row in rows.mappings()]


def next_due_at(conn: Connection) -> datetime | None:
    """When the earliest pending message becomes due (may be in the past), or None."""
    value = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
            outbox.c.state == OutboxState.PENDING
        )
    ).scalar()
    return None if value is None else _from_db(value)


def claim(conn: Connection, message_id: int, now: datetime, lease_until: datetime) -> bool:
    """Take a due message for one delivery attempt; False when another sender has it.

    The claim counts the attempt and moves `next_attempt_at` to the end of a lease, so no other
    sender sees the message as due while this one works on it, and a sender that dies
    mid-attempt only delays the message until the lease runs out.
    """
    result = conn.execute(
        outbox.update()
        .where(
            outbox.c.id == message_id,
            outbox.c.state == OutboxState.PENDING,
            outbox.c.next_attempt_at <= _to_utc(now),
        )
        .values(attempts=outbox.c.attempts + 1, next_attempt_at=_to_utc(lease_until))
    )
    return result.rowcount == 1


def mark_sent(conn: Connection, message_id: int, now: datetime, note: str | None = None) -> None:
    """The server accepted the message; `note` records recipients it refused, if any."""
    _update(conn, message_id, state=OutboxState.SENT, sent_at=_to_utc(now), last_error=note)


def mark_retry(conn: Connection, message_id: int, next_attempt_at: datetime, error: str) -> None:
    _update(
        conn,
        message_id,
        state=OutboxState.PENDING,
        next_attempt_at=_to_utc(next_attempt_at),
        last_error=error,
    )


def mark_failed(conn: Connection, message_id: int, error: str) -> None:
    _update(conn, message_id, state=OutboxState.FAILED, last_error=error)


def get(conn: Connection, message_id: int) -> OutboxMessage:
    row = conn.execute(_select().where(outbox.c.id == message_id)).mappings().first()
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    return _message(row)


def list_messages(
    conn: Connection, state: str | None = None, limit: int = 100
) -> list[OutboxMessage]:
    """The newest messages first, optionally only those in one state."""
    query = _select().order_by(outbox.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(outbox.c.state == OutboxState(state))
    return [_message(row) for row in conn.execute(query).mappings()]


def page(
    conn: Connection, states: Sequence[OutboxState], *, limit: int, before: int | None = None
) -> list[OutboxMessage]:
    """Messages in these states, newest first, one page (keyset: ids below `before`)."""
    query = _select().where(outbox.c.state.in_(list(states))).order_by(outbox.c.id.desc())
    if before is not None:
        query = query.where(outbox.c.id < before)
    return [_message(row) for row in conn.execute(query.limit(limit)).mappings()]


def retry(
    conn: Connection,
    message_id: int,
    now: datetime,
    readdressed: tuple[Sequence[str], bytes] | None = None,
) -> None:
    """An operator asks for another attempt now, optionally to new recipients (the envelope
    and the message with its To header); a message already sent stays sent."""
    message = get(conn, message_id)
    if message.state is OutboxState.SENT:
        raise Conflict(f"outbox message {message_id} was already sent at {message.sent_at}")
    values: dict[str, Any] = {}
    if readdressed is not None:
        values = {"recipients": list(readdressed[0]), "message": readdressed[1]}
    _update(conn, message_id, state=OutboxState.PENDING, next_attempt_at=_to_utc(now), **values)


def depth(conn: Connection, now: datetime) -> tuple[int, float]:
    """How many messages wait, and the age in seconds of the oldest (0 when none wait)."""
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.state == OutboxState.PENDING
        )
    ).one()
    if oldest is None:
        return int(count), 0.0
    return int(count), max(0.0, (_to_utc(now) - _from_db(oldest)).total_seconds())


def _update(conn: Connection, message_id: int, **values: Any) -> None:
    result = conn.execute(outbox.update().where(outbox.c.id == message_id).values(**values))
    if result.rowcount != 1:
        raise NotFound(f"no outbox message {message_id}")


def _message(row: sa.RowMapping) -> OutboxMessage:
    recipients: Sequence[str] = row["recipients"]
    return OutboxMessage(
        id=int(row["id"]),
        tenant_id=row["tenant_id"],
        import_id=row["import_id"],
        kind=row["kind"],
        subject=row["subject"],
        recipients=tuple(recipients),
        message=bytes(row["message"]),
        state=OutboxState(row["state"]),
        created_at=_from_db(row["created_at"]),
        attempts=int(row["attempts"]),
        next_attempt_at=_from_db(row["next_attempt_at"]),
        last_error=row["last_error"],
        sent_at=_from_db(row["sent_at"]) if row["sent_at"] is not None else None,
        tenant=row.get("tenant"),
    )


def _to_utc(value: datetime) -> datetime:
    # SQLite keeps no offset, so every stored time is UTC or comparisons go wrong.
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: outbox times must be timezone-aware")
    return value.astimezone(UTC)


def _from_db(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
