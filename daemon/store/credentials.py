"""What proves who a web user is besides the password: one-time password links, API tokens
and the TOTP second factor. Only hashes of links and tokens are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.errors import NotFound
from daemon.store.tables import api_tokens, password_links, users

TOKEN_LABEL_MAX_CHARS = 100  # the column's width


class LinkPurpose(StrEnum):
    INVITATION = "invitation"
    RESET = "reset"


@dataclass(frozen=True)
class PasswordLink:
    user_id: int
    purpose: LinkPurpose
    expires_at: datetime


@dataclass(frozen=True)
class ApiToken:
    id: int
    user_id: int
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


# -- one-time password links ---------------------------------------------------------------


def new_link(
    conn: Connection,
    user_id: int,
    *,
    token_hash: str,
    purpose: LinkPurpose,
    now: datetime,
    expires_at: datetime,
) -> None:
    """A new link; every older link of the user dies with it (only the newest email works)."""
    end_links(conn, user_id)
    conn.execute(
        password_links.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            purpose=purpose.value,
            created_at=now,
            expires_at=expires_at,
        )
    )


def live_link(conn: Connection, token_hash: str, now: datetime) -> PasswordLink | None:
    """The link, if it is unused, unexpired and its user is enabled."""
    row = conn.execute(
        sa.select(password_links.c.user_id, password_links.c.purpose, password_links.c.expires_at)
        .join(users, users.c.id == password_links.c.user_id)
        .where(password_links.c.token_hash == token_hash, sa.not_(users.c.disabled))
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return PasswordLink(row.user_id, LinkPurpose(row.purpose), row.expires_at)


def use_link(conn: Connection, token_hash: str) -> bool:
    """Spend a link: True for the one caller that deleted it (a link works once)."""
    deleted = conn.execute(password_links.delete().where(password_links.c.token_hash == token_hash))
    return bool(deleted.rowcount)


def end_links(conn: Connection, user_id: int) -> None:
    conn.execute(password_links.delete().where(password_links.c.user_id == user_id))


# -- API tokens ----------------------------------------------------------------------------


def add_token(
    conn: Connection,
    user_id: int,
    *,
    token_hash: str,
    label: str,
    now: datetime,
    expires_at: datetime,
) -> int:
    result = conn.execute(
        api_tokens.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            label=label,
            created_at=now,
            expires_at=expires_at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _token(row: sa.Row[tuple[object, ...]]) -> ApiToken:
    mapping = row._mapping
    return ApiToken(
        id=mapping["id"],
        user_id=mapping["user_id"],
        label=mapping["label"],
        created_at=mapping["created_at"],
        expires_at=mapping["expires_at"],
        revoked_at=mapping["revoked_at"],
    )


def tokens_of(conn: Connection, user_id: int) -> list[ApiToken]:
    rows = conn.execute(
        sa.select(*(c for c in api_tokens.c if c.name != "token_hash"))
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.id)
    )
    return [_token(row) for row in rows]


def revoke_token(conn: Connection, user_id: int, token_id: int, now: datetime) -> ApiToken:
    """Revoke one of the user's tokens (another user's id is not found)."""
    found = next((t for t in tokens_of(conn, user_id) if t.id == token_id), None)
    if found is None:
        raise NotFound(f"no token #{token_id} of this user (see `user token NAME --list`)")
    if found.revoked_at is None:
        conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now))
    return found


def token_user_id(conn: Connection, token_hash: str, now: datetime) -> int | None:
    """The user a live token (not revoked, not expired) stands for; the caller checks the user."""
    row = conn.execute(
        sa.select(api_tokens.c.user_id, api_tokens.c.expires_at).where(
            api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None)
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return int(row.user_id)


# -- TOTP ----------------------------------------------------------------------------------


def set_totp(conn: Connection, user_id: int, secret: str | None) -> None:
    """Enrol (a new secret) or, with None, remove the second factor."""
    conn.execute(
        users.update().where(users.c.id == user_id).values(totp_secret=secret, totp_last_step=None)
    )


def spend_totp_step(conn: Connection, user_id: int, step: int) -> bool:
    """Record that a code of time step `step` was accepted: True for the first caller only,
    so a code (or an older one) never works twice, even from two requests at once."""
    result = conn.execute(
        users.update()
        .where(
            users.c.id == user_id,
            sa.or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(result.rowcount)
