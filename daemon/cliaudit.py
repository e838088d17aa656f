"""Who the audit log says acted, and from where, for a command run in the operator's shell:
the OS user with `(cli)` (as `imports approve` names the decider) and the address `cli`."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from daemon.store import users

CLI_ADDRESS = "cli"  # the audit log's "from which address" for a shell command


def cli_user() -> str:
    return f"{getpass.getuser()} (cli)"


def audit_cli(
    conn: Connection,
    action: str,
    *,
    tenant_id: int | None = None,
    import_id: int | None = None,
    detail: str = "",
    by: str | None = None,
    now: datetime | None = None,
) -> None:
    """One audit entry for a CLI command, in the caller's transaction (the change's own)."""
    users.audit(
        conn, user_name=by or cli_user(), action=action, now=now or datetime.now(UTC),
        tenant_id=tenant_id, import_id=import_id, detail=detail, address=CLI_ADDRESS,
    )  # fmt: skip
