"""The SMTP transport: one aiosmtplib session per message, server replies turned into outcomes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from email.utils import parseaddr

import aiosmtplib

from daemon.config import SmtpSettings
from daemon.errors import DeliveryError
from daemon.notify.transport import RelayUnavailable
from daemon.store.outbox import OutboxMessage

_SESSION_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


class SmtpTransport:
    """Delivers to the configured relay (STARTTLS, implicit TLS or plain; optional login).

    Permanent means the server refused this message with a 5xx reply to MAIL, RCPT (every
    recipient) or DATA: sending it again cannot help. Anything else — no connection, TLS or
    login failing, timeouts, 4xx replies — is temporary and retried.
    """

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def describe(self) -> str:
        return f"smtp://{self.smtp.host}:{self.smtp.port} ({self.smtp.tls})"

    async def deliver(self, message: OutboxMessage) -> str | None:
        client = self._client()
        try:
            await client.connect()
        except _SESSION_ERRORS as exc:
            client.close()
            raise RelayUnavailable(f"{self.describe()}: {_reason(exc)}") from exc
        polite = True
        try:
            refused, _ = await client.sendmail(
                parseaddr(self.smtp.from_address)[1] or self.smtp.from_address,
                list(message.recipients),
                message.message,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                "all recipients refused: "
                + _refusals((r.recipient, r.code, r.message) for r in exc.recipients),
                permanent=all(r.code >= 500 for r in exc.recipients),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(_reason(exc), permanent=exc.code >= 500) from exc
        except ValueError as exc:  # an address no SMTP command line can carry
            raise DeliveryError(str(exc), permanent=True) from exc
        except _SESSION_ERRORS as exc:
            polite = False  # the session is broken: waiting for a QUIT reply would only stall
            raise RelayUnavailable(f"{self.describe()}: {_reason(exc)}") from exc
        finally:
            # Accepted or refused, the outcome is known by now: a failing QUIT changes nothing.
            if polite:
                with contextlib.suppress(*_SESSION_ERRORS):
                    await client.quit()
            client.close()
        if not refused:
            return None
        return "refused: " + _refusals(
            (address, reply.code, reply.message) for address, reply in refused.items()
        )

    def _client(self) -> aiosmtplib.SMTP:
        smtp = self.smtp
        return aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            use_tls=smtp.tls == "tls",
            start_tls=smtp.tls == "starttls",
            username=smtp.username or None,
            password=smtp.password.reveal() if smtp.username else None,
            timeout=smtp.timeout,
        )


def _refusals(items: Iterable[tuple[str, int, str]]) -> str:
    return "; ".join(f"{address} ({code} {text})" for address, code, text in items)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return str(exc) or exc.__class__.__name__
