"""Who is signed in: signed session cookies backed by revocable rows, CSRF tokens, roles."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from daemon.config import WebSettings
from daemon.store.users import Session, User

SESSION_COOKIE = "rosterdrop_session"
# The sign-in form's own CSRF token (double submit): there is no session to keep it in yet.
SIGNIN_COOKIE = "rosterdrop_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SECRET_FILE = "web-secret.key"  # noqa: S105 - a file name
TOKEN_BYTES = 32
# The forms a signed-out person posts: they carry the token of SIGNIN_COOKIE (double submit),
# the cookie's path being the form's own.
SIGNED_OUT_FORMS = ("/signin", "/forgot", "/password/")
# Between a right password and the authentication code: how long the signed "password was
# right" token lasts (a person types six digits from a phone).
TOTP_PENDING_SECONDS = 300
_PENDING = "totp"

log = structlog.get_logger(__name__)


def load_or_create_secret(root: Path) -> bytes:
    """The key that signs session cookies: made once per data directory (shared by nodes).

    A disk too full to write it must not stop the daemon (imports wait for space on their
    own): this run then signs with a key of its own, and sessions end at its restart."""
    path = root / SECRET_FILE
    kept = _read_secret(path)
    if kept is not None:
        return kept
    fresh = secrets.token_bytes(TOKEN_BYTES)
    draft = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(fresh.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.replace(draft, path)  # a key file that is not a key (cut short): replaced
        else:
            os.link(draft, path)  # whole or not at all; another node may have made one first
    except FileExistsError:
        pass
    except OSError as exc:
        log.warning(
            "web: cannot keep the session key; sessions end when this daemon stops",
            path=str(path),
            error=str(exc),
        )
        return fresh
    finally:
        draft.unlink(missing_ok=True)
    return _read_secret(path) or fresh


def _read_secret(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if len(text) != 2 * TOKEN_BYTES:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Signer:
    key: bytes

    def sign(self, token: str) -> str:
        return f"{token}.{self._mac(token)}"

    def unsign(self, cookie: str) -> str | None:
        token, _, mac = cookie.rpartition(".")
        if not token or not hmac.compare_digest(mac, self._mac(token)):
            return None
        return token

    def _mac(self, token: str) -> str:
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()


def signed_out_form(path: str) -> bool:
    return path in SIGNED_OUT_FORMS or path.startswith(SIGNED_OUT_FORMS[-1])


def pending_totp(signer: Signer, user_id: int, now: datetime) -> str:
    """A signed token saying the password of `user_id` was right at `now`; the code form
    carries it, so nothing is stored between the two steps."""
    return signer.sign(f"{_PENDING}:{user_id}:{int(now.timestamp())}:{new_token()}")


def pending_user_id(signer: Signer, value: str, now: datetime) -> int | None:
    """The user of a pending token still within TOTP_PENDING_SECONDS, else None."""
    token = signer.unsign(value)
    parts = token.split(":") if token else []
    if len(parts) != 4 or parts[0] != _PENDING or not (parts[1] + parts[2]).isdigit():
        return None
    if not 0 <= now.timestamp() - int(parts[2]) <= TOTP_PENDING_SECONDS:
        return None
    return int(parts[1])


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)


def session_expired(session: Session, now: datetime, settings: WebSettings) -> bool:
    """Past the idle timeout since its last request, or the absolute one since sign-in."""
    idle = timedelta(minutes=settings.session_idle_minutes)
    absolute = timedelta(hours=settings.session_max_hours)
    return now - session.last_seen_at >= idle or now - session.created_at >= absolute


def can_see_tenant(user: User, tenant_id: int) -> bool:
    return user.operator or user.tenant_id == tenant_id


def visible_tenant_ids(user: User) -> int | None:
    """None: every tenant (an operator); else the one tenant of a district administrator."""
    return None if user.operator else user.tenant_id
