"""`rosterdrop tenant pause …`: a district's pause windows (the school year's rollover)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from sqlalchemy.engine import Connection

from daemon.app import App
from daemon.cliaudit import audit_cli, cli_user
from daemon.config import Settings
from daemon.errors import ConfigError
from daemon.roster.windows import PauseWindow, parse_day
from daemon.store import tenants, windows
from daemon.windowclock import window_now


def _now() -> datetime:
    return window_now(lambda: datetime.now(UTC))


def window_json(window: PauseWindow) -> dict[str, object]:
    return {
        "id": window.id,
        "from": window.starts_on.isoformat(),
        "to": window.ends_on.isoformat(),
        "note": window.note,
        "yearly": window.yearly,
        "expect_percent": window.expect_percent,
        "expect_by": window.expect_by,
        "expect_import_id": window.expect_import_id,
    }


@click.group("pause")
def pause_group() -> None:
    """Pause windows: uploads are checked and reported, never applied, until a window ends."""


@pause_group.command("add")
@click.argument("name")
@click.option("--from", "starts", required=True, metavar="YYYY-MM-DD", help="First day held.")
@click.option("--to", "ends", required=True, metavar="YYYY-MM-DD", help="Last day held.")
@click.option("--note", default="", help="What the window is for (shown in its emails).")
@click.option("--yearly", is_flag=True, help="When it ends, add the same days of the next year.")
@click.option(
    "--expect-changes",
    type=float,
    metavar="PERCENT",
    help="A one-time threshold override: the first import applied after the window may"
    " deactivate or change up to PERCENT of an entity without a pause.",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Confirm --expect-changes (it lets a big import through unreviewed).",
)
@click.pass_obj
def pause_add(
    app: App, name: str, starts: str, ends: str, note: str, yearly: bool,
    expect_changes: float | None, confirm: bool,
) -> None:  # fmt: skip
    """Hold NAME's uploads from --from to --to (days in [windows] timezone)."""
    if expect_changes is not None and not confirm:
        raise ConfigError(
            f"--expect-changes {expect_changes:g} lets the first import after the window change"
            " that much without a pause: add --confirm to say you expect it"
        )
    starts_on, ends_on = parse_day(starts, "--from"), parse_day(ends, "--to")
    with app.db.write() as conn:
        tenant = tenants.get(conn, name)
        window = windows.add(
            conn, tenant.id, starts_on, ends_on, zone=app.settings.windows.zone(), now=_now(),
            by=cli_user(), note=note, yearly=yearly, expect_percent=expect_changes,
        )  # fmt: skip
        audit_cli(conn, "pause_window_added", tenant_id=tenant.id, detail=window.described())
    click.echo(f"pause window added for {name}: {window.described()}")
    click.echo(
        f"  uploads from {window.starts_on} through {window.ends_on} are checked but not"
        f" applied; on {window.released_on} the newest one is imported"
    )


@pause_group.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def pause_list(app: App, name: str, as_json: bool) -> None:
    """NAME's pause windows, by first day."""
    with app.db.read() as conn:
        found = windows.list_for(conn, tenants.get(conn, name).id)
    if as_json:
        click.echo(json.dumps([window_json(w) for w in found], indent=2))
        return
    if not found:
        click.echo(f"{name} has no pause windows")
    now = _now()
    for window in found:
        click.echo(f"{window.described()}: {window.state(now)}")


@pause_group.command("remove")
@click.argument("name")
@click.argument("window_id", type=int)
@click.pass_obj
def pause_remove(app: App, name: str, window_id: int) -> None:
    """Remove window WINDOW_ID: an upload it holds is imported at the daemon's next look."""
    with app.db.write() as conn:
        tenant = tenants.get(conn, name)
        window = windows.remove(conn, tenant.id, window_id)
        audit_cli(conn, "pause_window_removed", tenant_id=tenant.id, detail=window.described())
    click.echo(f"pause window removed from {name}: {window.described()}")


def default_window(conn: Connection, settings: Settings, tenant_id: int) -> None:
    """A new tenant's yearly window from [windows] new_tenant (none when it is empty)."""
    window = windows.add_yearly(
        conn, tenant_id, settings.windows.new_tenant, zone=settings.windows.zone(),
        now=_now(), by=cli_user(),
    )  # fmt: skip
    if window is not None:
        audit_cli(conn, "pause_window_added", tenant_id=tenant_id, detail=window.described())
