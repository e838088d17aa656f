"""Web accounts, their sessions and the audit log of what they decided."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from daemon.errors import ConfigError, Conflict, NotFound
from daemon.store.audit_actions import AUDIT_ACTIONS
from daemon.store.credentials import end_links
from daemon.store.tables import api_tokens, audit_log, tenants, users, web_sessions

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
SHOWN_AUDIT = 100  # entries an import's page lists (an import is decided once or twice)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    operator: bool
    tenant_id: int | None
    tenant: str | None  # the tenant's name, for a district administrator
    email: str | None
    disabled: bool
    created_at: datetime
    password_changed_at: datetime | None = None
    password_hash: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)

    @property
    def totp(self) -> bool:
        """Whether the user signs in with an authentication code after the password."""
        return self.totp_secret is not None

    @property
    def role(self) -> str:
        return "operator" if self.operator else "district"


@dataclass(frozen=True)
class Session:
    token_hash: str
    user: User
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    user_name: str
    tenant_id: int | None
    import_id: int | None
    action: str
    detail: str
    address: str | None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"user name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-',"
            " starting with a letter or digit"
        )
    return name


def _select() -> sa.Select[Any]:
    return sa.select(*users.c, tenants.c.name.label("tenant")).outerjoin(
        tenants, tenants.c.id == users.c.tenant_id
    )


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        operator=row["operator"],
        tenant_id=row["tenant_id"],
        tenant=row["tenant"],
        email=row["email"],
        disabled=row["disabled"],
        created_at=row["created_at"],
        password_changed_at=row["password_changed_at"],
        password_hash=row["password_hash"],
        totp_secret=row["totp_secret"],
    )


def add(
    conn: Connection,
    name: str,
    *,
    tenant_id: int | None,
    email: str | None,
    password_hash: str | None,
    now: datetime,
) -> User:
    """A district administrator (`tenant_id`) or, without a tenant, an operator."""
    check_name(name)
    if find(conn, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    conn.execute(
        users.insert().values(
            name=name,
            tenant_id=tenant_id,
            operator=tenant_id is None,
            email=email,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            password_changed_at=now if password_hash else None,
        )
    )
    return get(conn, name)


def find(conn: Connection, name: str) -> User | None:
    row = conn.execute(_select().where(users.c.name == name)).mappings().first()
    return _user(row) if row else None


def get(conn: Connection, name: str) -> User:
    user = find(conn, name)
    if user is None:
        raise NotFound(f"no user {name!r} (see `rosterdrop user list`)")
    return user


def by_id(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(_select().where(users.c.id == user_id)).mappings().first()
    return _user(row) if row else None


def with_email(conn: Connection, email: str, limit: int) -> list[User]:
    """The users whose address is `email` (case-insensitively; stored lower-cased)."""
    rows = conn.execute(
        _select().where(users.c.email == email.strip().lower()).order_by(users.c.id).limit(limit)
    ).mappings()
    return [_user(row) for row in rows]


def all_users(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(_select().order_by(users.c.name)).mappings()]


def set_password(
    conn: Connection, name: str, password_hash: str, now: datetime, *, end_tokens: bool = True
) -> None:
    """A new password ends every session the old one opened, and every link still unused; and,
    unless `end_tokens` is false (an invitation's first password), every API token: a password
    reset after a compromise must end every credential the intruder could hold."""
    user = get(conn, name)
    conn.execute(
        users.update()
        .where(users.c.id == user.id)
        .values(password_hash=password_hash, password_changed_at=now)
    )
    end_sessions(conn, user.id)
    end_links(conn, user.id)
    if end_tokens:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.user_id == user.id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def set_disabled(conn: Connection, name: str, disabled: bool) -> None:
    """A disabled user's sessions and password links end; its API tokens are refused while
    it stays disabled (daemon/web/bearer.py checks)."""
    user = get(conn, name)
    conn.execute(users.update().where(users.c.id == user.id).values(disabled=disabled))
    if disabled:
        end_sessions(conn, user.id)
        end_links(conn, user.id)


def remove(conn: Connection, name: str) -> User:
    """Delete the account: its sessions, password links and API tokens go with it (the
    foreign keys cascade); the audit log keeps its name, which it stores as text."""
    user = get(conn, name)
    end_sessions(conn, user.id)
    end_links(conn, user.id)
    conn.execute(api_tokens.delete().where(api_tokens.c.user_id == user.id))
    conn.execute(users.delete().where(users.c.id == user.id))
    return user


# -- sessions ------------------------------------------------------------------------------


def start_session(
    conn: Connection,
    user_id: int,
    *,
    token_hash: str,
    csrf_token: str,
    address: str | None,
    now: datetime,
) -> None:
    conn.execute(
        web_sessions.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
            address=address,
        )
    )


def find_session(conn: Connection, token_hash: str) -> Session | None:
    row = (
        conn.execute(sa.select(web_sessions).where(web_sessions.c.token_hash == token_hash))
        .mappings()
        .first()
    )
    if row is None:
        return None
    user = conn.execute(_select().where(users.c.id == row["user_id"])).mappings().first()
    if user is None:  # pragma: no cover - the foreign key forbids it
        return None
    return Session(
        token_hash=row["token_hash"],
        user=_user(user),
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


def touch_session(conn: Connection, token_hash: str, now: datetime) -> None:
    conn.execute(
        web_sessions.update()
        .where(web_sessions.c.token_hash == token_hash)
        .values(last_seen_at=now)
    )


def end_session(conn: Connection, token_hash: str) -> None:
    conn.execute(web_sessions.delete().where(web_sessions.c.token_hash == token_hash))


def end_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user_id))


def expire_sessions(conn: Connection, *, idle_before: datetime, started_before: datetime) -> int:
    result = conn.execute(
        web_sessions.delete().where(
            sa.or_(
                web_sessions.c.last_seen_at < idle_before,
                web_sessions.c.created_at < started_before,
            )
        )
    )
    return int(result.rowcount or 0)


# -- the audit log -------------------------------------------------------------------------


def audit(
    conn: Connection,
    *,
    user_name: str,
    action: str,
    now: datetime,
    tenant_id: int | None = None,
    import_id: int | None = None,
    detail: str = "",
    address: str | None = None,
) -> None:
    if action not in AUDIT_ACTIONS:  # the audit page and docs/web.md list them all from there
        raise ValueError(f"audit action {action!r} is not in AUDIT_ACTIONS")
    conn.execute(
        audit_log.insert().values(
            at=now,
            user_name=user_name,
            tenant_id=tenant_id,
            import_id=import_id,
            action=action,
            detail=detail,
            address=address,
        )
    )


def audit_of_import(conn: Connection, import_id: int) -> list[AuditEntry]:
    rows = conn.execute(
        sa.select(audit_log)
        .where(audit_log.c.import_id == import_id)
        .order_by(audit_log.c.id)
        .limit(SHOWN_AUDIT)
    ).mappings()
    return [AuditEntry(**dict(row)) for row in rows]


def audit_entries(
    conn: Connection,
    *,
    limit: int,
    tenant_id: int | None = None,
    user_name: str | None = None,
    action: str | None = None,
    before: int | None = None,
) -> list[AuditEntry]:
    """The audit log newest first, filtered, one page (keyset: entries older than `before`)."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(audit_log.c.tenant_id == tenant_id)
    if user_name:
        query = query.where(audit_log.c.user_name == user_name)
    if action:
        query = query.where(audit_log.c.action == action)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return [AuditEntry(**dict(row)) for row in conn.execute(query).mappings()]


def latest_signins(conn: Connection, user_ids: list[int]) -> dict[int, datetime]:
    """When each user last signed in, as far as a session still alive says so (a session's
    row goes at sign-out and at its timeouts)."""
    if not user_ids:
        return {}
    rows = conn.execute(
        sa.select(web_sessions.c.user_id, sa.func.max(web_sessions.c.created_at))
        .where(web_sessions.c.user_id.in_(user_ids))
        .group_by(web_sessions.c.user_id)
    ).all()
    return {int(user_id): at for user_id, at in rows}


def users_page(conn: Connection, *, limit: int, after: str | None = None) -> list[User]:
    """Users by name, one page (keyset: names after `after`)."""
    query = _select().order_by(users.c.name).limit(limit)
    if after:
        query = query.where(users.c.name > after)
    return [_user(row) for row in conn.execute(query).mappings()]
