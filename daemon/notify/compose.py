"""MIME assembly: headers that no value can inject into, text and HTML alternatives, attachment."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr

import structlog

from daemon.notify.problem_list import Attachment
from daemon.notify.render import neutralise

# A plain ASCII addr-spec: what an SMTP relay accepts without SMTPUTF8, and nothing that could
# end a header or a MAIL/RCPT command.
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
FALLBACK_DOMAIN = "rosterdrop.invalid"

log = structlog.get_logger(__name__)


def addresses(*groups: Iterable[str]) -> tuple[str, ...]:
    """Valid addresses from all groups, in order, each once (case-insensitively)."""
    seen: set[str] = set()
    result: list[str] = []
    for group in groups:
        for raw in group:
            address = "" if "\r" in raw or "\n" in raw else parseaddr(raw)[1].strip()
            if not _ADDRESS.fullmatch(address):
                log.warning("notify.address_invalid", address=raw)
                continue
            if address.lower() not in seen:
                seen.add(address.lower())
                result.append(address)
    return tuple(result)


def build(
    *,
    subject: str,
    sender: str,
    to: Sequence[str],
    text: str,
    html: str,
    attachment: Attachment | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The complete RFC 5322 message, CRLF line ends, ready for SMTP DATA or an .eml file."""
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = neutralise(subject)
    message["From"] = sender
    if to:
        message["To"] = ", ".join(to)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid("rosterdrop", domain=_domain(sender))
    # RFC 3834: out-of-office robots must not answer an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in headers:
        message[name] = neutralise(value)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if attachment is not None:
        # The charset says how to read names like Zoë or Ｘ; without it a client may guess ASCII.
        message.add_attachment(
            attachment.data,
            maintype="text",
            subtype="csv",
            filename=attachment.filename,
            params={"charset": "utf-8"},
        )
    return message.as_bytes()


def readdress(message: bytes, to: Sequence[str]) -> bytes:
    """The same message with another To header (all else, Message-ID included, kept)."""
    parsed = BytesParser(policy=policy.SMTP).parsebytes(message)
    del parsed["To"]
    if to:
        parsed["To"] = ", ".join(to)
    return parsed.as_bytes()


def _domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain if domain and _ADDRESS.fullmatch(f"x@{domain}") else FALLBACK_DOMAIN
