"""The emails about a web account: an invitation, and a "forgot password" answer, each with
a one-time link that sets the password."""

from __future__ import annotations

from datetime import datetime

from daemon.config import SmtpSettings
from daemon.notify import compose
from daemon.notify.figures import when
from daemon.notify.messages import OutgoingEmail
from daemon.notify.render import neutralise, render

INVITATION = "invitation"
PASSWORD_RESET = "password_reset"  # noqa: S105 - an email's kind
TEMPLATE = "password_link"
# Where a link leads, under [web] public_url (daemon/web/views/account.py serves it).
PASSWORD_PATH = "/password/{token}"  # noqa: S105 - a path


def password_url(base: str, token: str) -> str:
    return base.rstrip("/") + PASSWORD_PATH.format(token=token)


def password_link(
    *,
    kind: str,
    user: str,
    tenant: str | None,
    email: str,
    url: str,
    expires: datetime,
    smtp: SmtpSettings,
) -> OutgoingEmail:
    """To the user's own address only: the link is a password waiting to be chosen, so the
    operator's copy (`smtp.copy_to`) never gets it."""
    invited = kind == INVITATION
    subject = (
        "You are invited to the rosterdrop Import Manager"
        if invited
        else "Set a new password for the rosterdrop Import Manager"
    )
    context = {
        "subject": subject,
        "invited": invited,
        "user": user,
        "scope": f"the district {tenant}" if tenant else "every district (an operator)",
        "url": url,
        "expires": when(expires),
        "footer": "rosterdrop · Import Manager",
    }
    text, html = render(TEMPLATE, context)
    to = compose.addresses([email])
    message = compose.build(
        subject=subject, sender=smtp.from_address, to=to, text=text, html=html,
        headers=[("X-Rosterdrop-User", user)],
    )  # fmt: skip
    return OutgoingEmail(kind, neutralise(subject), to, message)
