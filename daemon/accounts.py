"""What proves who a web user is besides a password, for the CLI and the web alike: one-time
links that set a password (invitation, "forgot password"), API tokens, TOTP codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy.engine import Connection

from daemon.config import SmtpSettings, WebSettings
from daemon.errors import ConfigError
from daemon.notify import accounts as account_emails
from daemon.store import credentials, outbox, users
from daemon.store.credentials import LinkPurpose
from daemon.store.users import User

LINK_TOKEN_BYTES = 32
API_TOKEN_BYTES = 32
API_TOKEN_PREFIX = "rd_"  # noqa: S105 - says what a leaked string is (secret scanners match it)
TOTP_ISSUER = "rosterdrop"
# Codes of the step before and after now are taken too: a phone's clock may be 30 s off.
TOTP_VALID_STEPS = 1
TOTP_DIGITS = 6
_KINDS = {
    LinkPurpose.INVITATION: account_emails.INVITATION,
    LinkPurpose.RESET: account_emails.PASSWORD_RESET,
}


def secret_hash(token: str) -> str:
    """Links and tokens are random (256 bits): a plain SHA-256 keeps them unguessable at rest."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SentLink:
    url: str
    expires_at: datetime
    outbox_id: int


def send_password_link(
    conn: Connection,
    user: User,
    purpose: LinkPurpose,
    *,
    web: WebSettings,
    smtp: SmtpSettings,
    now: datetime,
) -> SentLink:
    """A new one-time link (the user's older ones die), emailed through the outbox in the
    caller's transaction. The link needs [web] public_url, never the request's Host header
    (which whoever asks could choose, and so receive someone else's link)."""
    if not web.public_url:
        raise ConfigError(
            "cannot email a password link: [web] public_url (ROSTERDROP_WEB_PUBLIC_URL) is not"
            " set, and the link must say where the Import Manager is"
        )
    if not user.email:
        raise ConfigError(f"user {user.name} has no email address to send a link to")
    token = secrets.token_urlsafe(LINK_TOKEN_BYTES)
    expires_at = now + timedelta(hours=web.password_link_hours)
    credentials.new_link(
        conn, user.id, token_hash=secret_hash(token), purpose=purpose, now=now,
        expires_at=expires_at,
    )  # fmt: skip
    url = account_emails.password_url(web.public_url, token)
    email = account_emails.password_link(
        kind=_KINDS[purpose], user=user.name, tenant=user.tenant, email=user.email, url=url,
        expires=expires_at, smtp=smtp,
    )  # fmt: skip
    # No tenant on the row: `outbox retry` readdresses a tenant's emails to the district's
    # addresses, and this one is for the user alone.
    outbox_id = outbox.enqueue(conn, email, tenant_id=None, import_id=None, now=now)
    return SentLink(url, expires_at, outbox_id)


def set_password_by_link(
    conn: Connection, token: str, password_hash: str, now: datetime
) -> User | None:
    """Spend the link and set the password (which ends the user's sessions, and after a
    "forgot password" link its API tokens too); None when the link is unknown, used,
    superseded or expired, or its user disabled."""
    found = credentials.live_link(conn, secret_hash(token), now)
    if found is None or not credentials.use_link(conn, secret_hash(token)):
        return None
    user = users.by_id(conn, found.user_id)
    assert user is not None  # the link's row was just deleted with it alive
    # An invitation's tokens (made by the operator before the first password) stay.
    reset = found.purpose is LinkPurpose.RESET
    users.set_password(conn, user.name, password_hash, now, end_tokens=reset)
    return user


def link_is_live(conn: Connection, token: str, now: datetime) -> bool:
    return credentials.live_link(conn, secret_hash(token), now) is not None


# -- API tokens ----------------------------------------------------------------------------


def new_api_token(
    conn: Connection, user: User, label: str, *, web: WebSettings, now: datetime
) -> tuple[int, str, datetime]:
    """(id, the token — shown once, only its hash is kept —, when it expires)."""
    if len(label) > credentials.TOKEN_LABEL_MAX_CHARS:
        raise ConfigError(
            f"a token's label is at most {credentials.TOKEN_LABEL_MAX_CHARS} characters,"
            f" not {len(label)}"
        )
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(API_TOKEN_BYTES)
    expires_at = now + timedelta(days=web.api_token_days)
    token_id = credentials.add_token(
        conn, user.id, token_hash=secret_hash(token), label=label, now=now, expires_at=expires_at
    )
    return token_id, token, expires_at


def api_token_user(conn: Connection, token: str, now: datetime) -> User | None:
    """The enabled user a live token stands for; None for anything else."""
    user_id = credentials.token_user_id(conn, secret_hash(token), now)
    user = users.by_id(conn, user_id) if user_id is not None else None
    return user if user is not None and not user.disabled else None


# -- TOTP ----------------------------------------------------------------------------------


def enrol_totp(conn: Connection, user: User) -> str:
    """A new secret (the old one stops working); returns the otpauth:// URI to show once."""
    secret = pyotp.random_base32()
    credentials.set_totp(conn, user.id, secret)
    return pyotp.TOTP(secret, digits=TOTP_DIGITS).provisioning_uri(
        name=user.name, issuer_name=TOTP_ISSUER
    )


def remove_totp(conn: Connection, user: User) -> None:
    credentials.set_totp(conn, user.id, None)


def accept_totp_code(conn: Connection, user: User, code: str, now: datetime) -> bool:
    """Whether `code` is the user's code for now (± TOTP_VALID_STEPS) and not used before:
    each accepted step is recorded, so a code seen over a shoulder cannot be replayed."""
    if user.totp_secret is None:
        return False
    code = "".join(code.split())
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return False
    totp = pyotp.TOTP(user.totp_secret, digits=TOTP_DIGITS)
    current = totp.timecode(now)
    for step in range(current - TOTP_VALID_STEPS, current + TOTP_VALID_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return credentials.spend_totp_step(conn, user.id, step)
    return False
