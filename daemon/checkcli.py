"""`rosterdrop checks …`: the answers to sets dropped in /check, and who gets them by email."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from daemon.app import App
from daemon.check.report import as_text
from daemon.cliaudit import audit_cli
from daemon.store import checks, tenants
from daemon.store.checks import CheckRecord


@click.group("checks")
def checks_group() -> None:
    """Checks: sets dropped in a tenant's /check, validated and planned, never imported."""


@checks_group.command("list")
@click.option("--tenant", help="Only this tenant's checks.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli.md).")
@click.pass_obj
def checks_list(app: App, tenant: str | None, limit: int, as_json: bool) -> None:
    """The most recent checks, newest first."""
    with app.db.read() as conn:
        tenant_id = tenants.get(conn, tenant).id if tenant else None
        records = checks.list_recent(conn, tenant_id=tenant_id, limit=limit)
    if as_json:
        click.echo(json.dumps([check_json(r) for r in records], indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo("no checks")
    for r in records:
        received = r.received_at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"#{r.id:<6} {r.tenant:<20} {received}  {_outcome(r):<7} {r.results_name or ''}")


@checks_group.command("show")
@click.argument("check_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli.md).")
@click.pass_obj
def checks_show(app: App, check_id: int, as_json: bool) -> None:
    """One check: its report, as /check/results has it."""
    with app.db.read() as conn:
        record = checks.get(conn, check_id)
    if as_json:
        data = {**check_json(record), "result": record.result}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif record.result is None:
        click.echo(f"check #{record.id} of {record.tenant} is still running")
    else:
        click.echo(as_text(record.result), nl=False)


@checks_group.command("email")
@click.argument("tenant")
@click.argument("setting", type=click.Choice(["on", "off"]))
@click.pass_obj
def checks_email(app: App, tenant: str, setting: str) -> None:
    """Whether each check's answer is also emailed to the tenant's addresses (default off)."""
    with app.db.write() as conn:
        found = tenants.get(conn, tenant)
        checks.set_email_results(conn, found.id, setting == "on")
        audit_cli(conn, "check_emails", tenant_id=found.id, detail=setting)
    click.echo(f"{tenant}: check answers by email {setting}")


def check_json(record: CheckRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tenant": record.tenant,
        "state": str(record.state),
        "outcome": _outcome(record),
        "received_at": _iso(record.received_at),
        "finished_at": _iso(record.finished_at),
        "results": record.results_name,
        "archived": record.files_dir is not None and record.archived_at is not None,
    }


def _outcome(record: CheckRecord) -> str:
    return str((record.result or {}).get("outcome", "running"))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None
