"""An operator's "send it again now": `rosterdrop outbox retry` and the web's Outbox page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from daemon.config import SmtpSettings
from daemon.errors import Conflict
from daemon.notify import messages
from daemon.store import outbox, tenants


def retry_now(
    conn: Connection, message_id: int, now: datetime, smtp: SmtpSettings
) -> tuple[str, ...]:
    """Make a failed (or waiting) email due now, addressed to its tenant's current addresses
    (an operator who fixed them retries the emails that had nobody, or a wrong address);
    returns the recipients. A running sender picks it up at its next pass."""
    message = outbox.get(conn, message_id)
    readdressed = None
    if message.tenant_id is not None and message.state is not outbox.OutboxState.SENT:
        tenant = tenants.by_id(conn, message.tenant_id)
        readdressed = messages.readdressed(message.message, tenant.emails, smtp)
        if not readdressed[0]:
            raise Conflict(
                f"tenant {tenant.name} has no email address to send #{message_id} to:"
                f" add one with `rosterdrop tenant set {tenant.name} --email ADDRESS`"
            )
    outbox.retry(conn, message_id, now, readdressed)
    return tuple(readdressed[0] if readdressed else message.recipients)
