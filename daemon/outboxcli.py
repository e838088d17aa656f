"""`rosterdrop outbox`: the emails waiting to be delivered, and sending them now."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from daemon.app import App
from daemon.store import outbox

pass_app = click.make_pass_decorator(App)


def _now() -> datetime:
    return datetime.now(UTC)


@click.group("outbox")
def outbox_group() -> None:
    """Emails waiting to be delivered."""


@outbox_group.command("list")
@click.option("--state", type=click.Choice([s.value for s in outbox.OutboxState]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli.md).")
@pass_app
def outbox_list(app: App, state: str | None, limit: int, as_json: bool) -> None:
    """The newest emails and where they are."""
    with app.db.read() as conn:
        messages = outbox.list_messages(conn, state=state, limit=limit)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": m.id,
                        "kind": m.kind,
                        "state": m.state.value,
                        "subject": m.subject,
                        "recipients": list(m.recipients),
                        "attempts": m.attempts,
                        "next_attempt_at": m.next_attempt_at.isoformat(),
                        "last_error": m.last_error,
                        "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                    }
                    for m in messages
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not messages:
        click.echo("the outbox is empty")
    for m in messages:
        extra = f" — {m.last_error}" if m.last_error else ""
        click.echo(f"#{m.id} {m.state.value:8} {m.kind:18} {m.subject}{extra}")


@outbox_group.command("retry")
@click.argument("message_id", type=int)
@pass_app
def outbox_retry(app: App, message_id: int) -> None:
    """Send a failed (or waiting) email again, now, to the tenant's current addresses."""
    from daemon.notify.retry import retry_now

    with app.db.write() as conn:
        recipients = ", ".join(retry_now(conn, message_id, _now(), app.settings.smtp))
    click.echo(f"email #{message_id} will be sent to {recipients} on the sender's next pass")


@outbox_group.command("send")
@pass_app
def outbox_send(app: App) -> None:
    """Deliver every due email now (what the running daemon does by itself)."""
    import asyncio

    from daemon.notify.sender import OutboxSender

    sender = OutboxSender(app.db, app.settings.smtp, app.settings.paths.outbox)
    sent = asyncio.run(sender.deliver_due())
    click.echo(f"{sent} email(s) delivered")
