"""The outbox sender: claims due emails, delivers them, and records every outcome durably."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TypeVar

import structlog
from sqlalchemy.engine import Connection
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from daemon.config import SmtpSettings
from daemon.errors import DeliveryError, StoreError
from daemon.metrics import EMAILS, OUTBOX_DEPTH, OUTBOX_OLDEST_AGE
from daemon.notify.eml import EmlTransport
from daemon.notify.smtp import SmtpTransport
from daemon.notify.transport import RelayUnavailable, Transport
from daemon.store import outbox
from daemon.store.database import Database
from daemon.store.outbox import NO_RECIPIENTS, OutboxMessage

DEFAULT_POLL_SECONDS = 5.0  # how soon a message enqueued by another process is seen
DEFAULT_BATCH = 20
DEFAULT_QUICK_TRIES = 3  # in-process tries before the message waits in the database
DEFAULT_QUICK_WAIT_SECONDS = 1.0
MIN_SLEEP_SECONDS = 0.05  # never spin, even when the next message is due already
# One SMTP session is a handful of commands, each bounded by the configured timeout.
COMMANDS_PER_SESSION = 6

MARK_SENT_TRIES = 5  # a database hiccup right after the server accepted must not cause a resend
T = TypeVar("T")
log = structlog.get_logger(__name__)


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    TAKEN = "taken"  # another sender claimed it first


def utc_now() -> datetime:
    return datetime.now(UTC)


def transport_for(smtp: SmtpSettings, eml_dir: Path) -> Transport:
    """SMTP when a host is configured; otherwise .eml files, the embedded default."""
    return SmtpTransport(smtp) if smtp.host else EmlTransport(eml_dir)


class OutboxSender:
    """Delivers what the outbox holds, at least once and, as far as SMTP allows, only once.

    A message is claimed (attempt counted, lease taken) before it is sent and marked sent
    right after the server accepts it, so neither a crash nor a second daemon on the same
    database sends it twice in a row. Temporary failures wait in the database with exponential
    backoff; while the relay itself is down, the sender holds off the other messages as well.
    """

    def __init__(
        self,
        db: Database,
        smtp: SmtpSettings,
        eml_dir: Path,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        batch: int = DEFAULT_BATCH,
        quick_tries: int = DEFAULT_QUICK_TRIES,
        quick_wait_seconds: float = DEFAULT_QUICK_WAIT_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.smtp = smtp
        self.transport = transport_for(smtp, eml_dir)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.quick_tries = max(1, quick_tries)
        self.quick_wait_seconds = quick_wait_seconds
        self.clock = clock
        # Long enough for every quick try to run out its timeouts; the lease is twice that,
        # so a claim never expires while its attempt is still running.
        self.attempt_budget = self.quick_tries * (
            COMMANDS_PER_SESSION * smtp.timeout + quick_wait_seconds * 4
        )
        self.lease = timedelta(seconds=2 * self.attempt_budget)
        self._wakeup = asyncio.Event()
        self._stop_requested = threading.Event()  # threading: tenacity's stop condition reads it
        self._stopped = asyncio.Event()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pass_lock = asyncio.Lock()
        self._relay_failures = 0
        self._hold_until: datetime | None = None

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def wake(self) -> None:
        """Something was enqueued: look now. Safe to call from any thread."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._wakeup.set()
        else:
            loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        """Deliver until stop() or cancellation; survives the database being away for a while."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._stopped.clear()
        log.info("notify.sender_started", transport=self.transport.describe())
        try:
            while not self._stop_requested.is_set():
                self._wakeup.clear()
                try:
                    await self.deliver_due()
                    delay = await self._seconds_to_next()
                except StoreError as exc:
                    log.error("notify.sender_store_error", error=str(exc))
                    delay = self.poll_seconds
                if self._stop_requested.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), max(delay, MIN_SLEEP_SECONDS))
        finally:
            self._running = False
            self._stopped.set()
            log.info("notify.sender_stopped")

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - the service's contract
        """Finish the message in flight, then flush: one last pass (one attempt each) over
        what is due, such as the email of an import that ended during the shutdown. All
        within `timeout`; what is left waits in the outbox for the next start."""
        self._stop_requested.set()
        self.wake()
        try:
            async with asyncio.timeout(timeout):
                if self._running:
                    await self._stopped.wait()
                await self.deliver_due(flush=True)
        except TimeoutError:
            log.warning("notify.sender_stop_timeout", timeout=timeout)
        except StoreError as exc:
            log.error("notify.sender_store_error", error=str(exc))

    async def deliver_due(self, *, flush: bool = False) -> int:
        """One pass over the due messages; how many were delivered. A stop ends a pass early,
        except the flush at the stop itself."""
        async with self._pass_lock:
            delivered = 0
            if not self._held():
                due = await self._read(lambda conn: outbox.due(conn, self.clock(), self.batch))
                for message in due:
                    if (self.stopping and not flush) or self._held():
                        break
                    if await self._deliver(message) is Outcome.SENT:
                        delivered += 1
            await self._update_metrics()
            return delivered

    async def _deliver(self, message: OutboxMessage) -> Outcome:
        started = self.clock()
        if not await self._write(
            lambda conn: outbox.claim(conn, message.id, started, started + self.lease)
        ):
            return Outcome.TAKEN
        attempts = message.attempts + 1
        fields: dict[str, object] = {
            "message_id": message.id,
            "kind": message.kind,
            "attempts": attempts,
            **message.about,
        }
        if not message.recipients:
            return await self._fail(message.id, NO_RECIPIENTS, fields)
        try:
            async with asyncio.timeout(self.attempt_budget):
                note = await self._send_with_quick_retries(message)
        except TimeoutError:
            return await self._retry(message.id, attempts, "delivery timed out", True, fields)
        except DeliveryError as exc:
            if exc.permanent:
                return await self._fail(message.id, str(exc), fields)
            relay = isinstance(exc, RelayUnavailable)
            return await self._retry(message.id, attempts, str(exc), relay, fields)
        except Exception as exc:
            # A bug must not stop every other email: this one waits, the log says why.
            log.exception("notify.transport_crashed", **fields)
            return await self._retry(message.id, attempts, repr(exc), False, fields)
        await self._mark_sent(message.id, note)
        self._relay_failures, self._hold_until = 0, None
        EMAILS.labels(result="sent").inc()
        log.info("notify.email_sent", recipients=len(message.recipients), note=note, **fields)
        return Outcome.SENT

    async def _send_with_quick_retries(self, message: OutboxMessage) -> str | None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.quick_tries) | stop_when_event_set(self._stop_requested),
            wait=wait_exponential(multiplier=self.quick_wait_seconds),
            retry=retry_if_exception(_temporary),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.transport.deliver(message)
        raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover

    async def _mark_sent(self, message_id: int, note: str | None) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(MARK_SENT_TRIES),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type(StoreError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._write(
                    lambda conn: outbox.mark_sent(conn, message_id, self.clock(), note)
                )

    async def _retry(
        self, message_id: int, attempts: int, error: str, relay: bool, fields: dict[str, object]
    ) -> Outcome:
        now = self.clock()
        next_attempt = now + self._backoff(attempts)
        await self._write(lambda conn: outbox.mark_retry(conn, message_id, next_attempt, error))
        if relay:
            self._relay_failures += 1
            self._hold_until = now + self._backoff(self._relay_failures)
        EMAILS.labels(result="retry").inc()
        log.warning(
            "notify.email_deferred", error=error, next_attempt_at=next_attempt.isoformat(), **fields
        )
        return Outcome.RETRY

    async def _fail(self, message_id: int, error: str, fields: dict[str, object]) -> Outcome:
        await self._write(lambda conn: outbox.mark_failed(conn, message_id, error))
        EMAILS.labels(result="failed").inc()
        log.error("notify.email_failed", error=error, **fields)
        return Outcome.FAILED

    def _backoff(self, attempts: int) -> timedelta:
        initial, ceiling = self.smtp.retry_initial_seconds, self.smtp.retry_max_seconds
        return timedelta(seconds=min(initial * 2 ** min(attempts - 1, 32), ceiling))

    def _held(self) -> bool:
        return self._hold_until is not None and self.clock() < self._hold_until

    async def _seconds_to_next(self) -> float:
        next_due = await self._read(outbox.next_due_at)
        if next_due is None:
            return self.poll_seconds
        if self._hold_until is not None:
            next_due = max(next_due, self._hold_until)
        return min(self.poll_seconds, (next_due - self.clock()).total_seconds())

    async def _update_metrics(self) -> None:
        count, age = await self._read(lambda conn: outbox.depth(conn, self.clock()))
        OUTBOX_DEPTH.set(count)
        OUTBOX_OLDEST_AGE.set(age)

    async def _read(self, call: Callable[[Connection], T]) -> T:
        # In a worker thread: the event loop never waits on the database.
        return await asyncio.to_thread(_transact, self.db.read, call)

    async def _write(self, call: Callable[[Connection], T]) -> T:
        return await asyncio.to_thread(_transact, self.db.write, call)


def _transact(
    transaction: Callable[[], AbstractContextManager[Connection]], call: Callable[[Connection], T]
) -> T:
    with transaction() as conn:
        return call(conn)


def _temporary(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and not exc.permanent


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
