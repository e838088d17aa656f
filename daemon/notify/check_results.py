"""The Check Results email: a check's readable report, for districts that asked for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daemon.config import SmtpSettings
from daemon.notify.messages import OutgoingEmail, email

CHECK_RESULTS = "check_results"


def check_results(
    answer: Mapping[str, Any], text: str, recipients: Sequence[str], smtp: SmtpSettings
) -> OutgoingEmail:
    """What the check found: its report.txt (`text`), as /check/results has it."""
    tenant, check_id = str(answer["tenant"]), int(answer["check"])
    subject = f"Check Results: {tenant} check #{check_id} — {answer['outcome']}"
    context = {
        "subject": subject,
        "tenant": tenant,
        "verdict": answer["verdict"],
        "lines": text.splitlines(),
        "footer": f"rosterdrop · {tenant} · check #{check_id}",
    }
    headers = [("X-Rosterdrop-Tenant", tenant), ("X-Rosterdrop-Check", str(check_id))]
    return email(CHECK_RESULTS, subject, context, recipients, smtp, headers=headers)
