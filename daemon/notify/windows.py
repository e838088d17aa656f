"""The pause window notices a district gets: the day before a window starts, and when it
ends (with what happens to the uploads it held)."""

from __future__ import annotations

from collections.abc import Sequence

from daemon.config import SmtpSettings
from daemon.notify import compose
from daemon.notify.messages import APPROVE_COMMAND, OutgoingEmail
from daemon.notify.render import neutralise, render
from daemon.roster.windows import STARTS, PauseWindow

WINDOW_STARTS = "window_starts"
WINDOW_ENDED = "window_ended"


def window_notice(
    kind: str,
    tenant: str,
    window: PauseWindow,
    recipients: Sequence[str],
    smtp: SmtpSettings,
    *,
    released: int | None = None,
    superseded: int = 0,
    decided_early: int = 0,
) -> OutgoingEmail:
    """`released`: the held upload now being imported (when the window ended), of which
    `superseded` older held ones make way; else `decided_early`: the uploads the window held
    that someone approved or rejected before its end."""
    starts = kind == STARTS
    name = WINDOW_STARTS if starts else WINDOW_ENDED
    subject = (
        f"Pause window: {tenant} holds its imports from {window.starts_on.isoformat()}"
        if starts
        else f"Pause window ended: {tenant} imports again"
    )
    context = {
        "subject": subject,
        "tenant": tenant,
        "dates": window.dates(),
        "starts_on": window.starts_on.isoformat(),
        "ends_on": window.ends_on.isoformat(),
        "released_on": window.released_on.isoformat(),
        "expect_percent": f"{window.expect_percent:g}" if window.expect_percent else "",
        "expect_by": window.expect_by or "",
        "released": released,
        "superseded": superseded,
        "decided_early": decided_early,
        "approve_command": APPROVE_COMMAND.format(import_id="ID"),
        "footer": f"rosterdrop · {tenant}",
    }
    text, html = render(name, context)
    to, copies = compose.addresses(recipients), compose.addresses(smtp.copy_to)
    message = compose.build(
        subject=subject,
        sender=smtp.from_address,
        to=to or copies,
        text=text,
        html=html,
        headers=[("X-Rosterdrop-Tenant", tenant)],
    )
    return OutgoingEmail(name, neutralise(subject), compose.addresses(to, copies), message)
