"""What every request handler works with: settings, database, pipeline, signer, templates."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from daemon.config import WebSettings, WindowSettings
from daemon.pipeline import Pipeline
from daemon.store.database import Database
from daemon.store.users import Session
from daemon.web.auth import Signer
from daemon.web.proxies import FORWARDED_FOR, FORWARDED_PROTO, TrustedProxies
from daemon.web.render import Templates
from daemon.web.throttle import RESET_POLICY, SigninThrottle
from daemon.web.uploads import UploadDesk


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SftpDetails:
    """What the Setup page tells a district to type into its SIS."""

    public_host: str  # [service] public_host; empty: this machine's name, as the CLI says it
    listening_port: Callable[[], int]  # the SFTP listener's port (known once it listens)
    host_keys: Path  # the directory of the host keys, whose fingerprints are shown
    # The SFTP package's check of a public key line (asyncssh lives only there), as
    # `tenant add-key` uses it; raises ValueError naming what is wrong.
    public_key_line: Callable[[str], str]

    def host(self) -> str:
        return self.public_host or _this_host()


@functools.cache
def _this_host() -> str:
    # A DNS lookup: once per process, and only when a Setup page asks (never at start-up).
    return socket.getfqdn()


@dataclass
class WebContext:
    settings: WebSettings
    db: Database
    pipeline: Pipeline
    signer: Signer
    throttle: SigninThrottle
    templates: Templates
    sftp: SftpDetails
    # Called on the event loop when an import this listener ran (an approval) has stopped.
    import_done: Callable[[int], None] = lambda _import_id: None
    uploads: UploadDesk | None = None  # Choose Files; None: no import worker to hand them to
    clock: Callable[[], datetime] = field(default=utc_now)
    # [web] trusted_proxies: whose X-Forwarded-For and X-Forwarded-Proto are believed.
    proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # "Forgot password" requests, throttled apart from the sign-ins (views/account.py).
    reset_throttle: SigninThrottle = field(default_factory=lambda: SigninThrottle(RESET_POLICY))
    windows: WindowSettings = field(default_factory=WindowSettings)  # [windows]: the Setup page's


CONTEXT = web.AppKey("context", WebContext)
# The request's Session (None: signed out), set by the session middleware. aiohttp runs each
# request in a task of its own, so the value is the request's alone.
_SESSION: ContextVar[Session | None] = ContextVar("rosterdrop_web_session", default=None)


def context(request: web.Request) -> WebContext:
    return request.app[CONTEXT]


def session(request: web.Request) -> Session | None:
    return _SESSION.get()


def set_session(found: Session | None) -> None:
    _SESSION.set(found)


def address(request: web.Request) -> str:
    """The client's address, for the sign-in throttle and the audit log: the connection's,
    or behind a trusted proxy the rightmost X-Forwarded-For hop that is not one of ours."""
    forwarded = request.headers.getall(FORWARDED_FOR, [])
    return context(request).proxies.client(request.remote, forwarded)


def over_https(request: web.Request) -> bool:
    """Served over TLS here, or a trusted proxy says the client came over https."""
    forwarded = request.headers.getall(FORWARDED_PROTO, [])
    return request.secure or context(request).proxies.https(request.remote, forwarded)


def secure_cookies(request: web.Request) -> bool:
    """Cookies are Secure over https, and always when public_url is https or TLS is on."""
    return context(request).settings.secure_cookies or over_https(request)
