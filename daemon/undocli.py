"""`rosterdrop imports undo ID`: the roster back to what it was before an applied import."""

from __future__ import annotations

import json

import click

from daemon import console, undo
from daemon.app import App
from daemon.cliaudit import audit_cli, cli_user
from daemon.errors import RosterdropError
from daemon.roster.outcome import ImportState
from daemon.store import tenants

pass_app = click.make_pass_decorator(App)


def _echo_plan(shown: undo.UndoPlan, as_json: bool) -> None:
    if as_json:
        data = {
            "undo_of": shown.target.id,
            "undone": [r.id for r in shown.undone],
            "counts": console.plan_json(shown.plan, {}),
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"undoing import #{shown.target.id} of {shown.target.tenant} undoes"
        f" {', '.join(f'#{r.id}' for r in shown.undone)} (newest first) and would:"
    )
    console.print_plan(click.echo, shown.plan, {})


@click.command("undo")
@click.argument("import_id", type=int)
@click.option(
    "--back-to",
    is_flag=True,
    help="Undo every applied import from the newest back to ID (needed when ID is not the newest).",
)
@click.option("--dry-run", is_flag=True, help="Show what the undo would change; change nothing.")
@click.option("--by", help="Who asks for it (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli.md).")
@pass_app
def undo_command(
    app: App, import_id: int, back_to: bool, dry_run: bool, by: str | None, as_json: bool
) -> None:
    """Restore the roster to what it was before import ID was applied, as a new import."""
    shown = undo.plan_undo(app.db, import_id)
    if dry_run or (shown.back_to and not back_to):
        _echo_plan(shown, as_json)
        if not dry_run:
            raise RosterdropError(
                f"{undo.not_newest(shown)}: nothing was changed; add --back-to to do it"
            )
        return
    who = by or cli_user()
    pipeline = app.pipeline()
    report = pipeline.run(undo.ask(pipeline, import_id, back_to=back_to, newest=shown.newest))
    with app.db.write() as conn:
        audit_cli(
            conn, "undo", tenant_id=tenants.get(conn, report.tenant).id,
            import_id=report.import_id, by=who,
            detail=f"undo back to #{import_id}: {str(report.state).replace('_', ' ')}",
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(console.import_json(report), indent=2, ensure_ascii=False))
    else:
        console.print_import(click.echo, report)
    if report.state is not ImportState.IMPORTED:
        raise RosterdropError(report.fatal_reason or f"the undo ended {report.state.value}")
