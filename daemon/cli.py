"""The `rosterdrop` command: argv → settings → a command. The only place that exits the process.

Exit codes: 0 success; 1 the upload was refused or failed (or a validation found errors);
2 a usage or configuration mistake; 3 the import is paused for a person to review.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from daemon import __version__, console, logs, uploadset
from daemon.app import App
from daemon.checkcli import checks_group
from daemon.clever.validate import fingerprints
from daemon.cliaudit import audit_cli, cli_user
from daemon.clustercli import cluster_group
from daemon.config import (
    Settings,
    config_file_in_use,
    load_settings,
    redact_url,
    redacted,
    unknown_env,
)
from daemon.errors import ConfigError, Conflict, NotFound, RosterdropError
from daemon.outboxcli import outbox_group
from daemon.roster.outcome import ImportReport, ImportState
from daemon.roster.problems import KEEP_PROBLEMS, ProblemLog
from daemon.roster.tenant import TenantSettings
from daemon.store import imports, tenants
from daemon.store.database import Database, sqlite_file
from daemon.store.roster import active_roster
from daemon.store.staging import Stage
from daemon.tenantcli import ensure_demo_tenant, tenant_group
from daemon.undocli import undo_command
from daemon.usercli import ensure_demo_user, user_group
from daemon.webservice import web_command

EXIT_REFUSED, EXIT_USAGE, EXIT_PAUSED = 1, 2, 3
# Problems a `validate --json` keeps; the readable report shows the first ones either way.
VALIDATE_KEEP = 100_000
F = TypeVar("F", bound=Callable[..., Any])


pass_app = click.make_pass_decorator(App)


def _now() -> datetime:
    return datetime.now(UTC)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    click.echo(f"rosterdrop: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=(
        "TOML settings file (default: $ROSTERDROP_CONFIG, else /etc/rosterdrop/rosterdrop.toml"
        " when it exists, else the embedded defaults)."
    ),
)
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
@click.version_option(__version__, prog_name="rosterdrop")
@click.pass_context
def main_group(ctx: click.Context, config_file: Path | None, verbose: bool) -> None:
    """rosterdrop: SFTP drop folders that import Clever roster files."""
    settings = load_settings(config_file)
    if ctx.invoked_subcommand in ("serve", "web"):
        logs.configure(settings.log.level, settings.log.format)
    else:
        logs.configure("info" if verbose else "warning", settings.log.format)
    if verbose:
        click.echo(f"rosterdrop: {_in_use(settings, config_file)}", err=True)
    app = App(settings)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _in_use(settings: Settings, config_file: Path | None) -> str:
    """Which settings file, data directory and database this command uses (for -v)."""
    found = config_file_in_use(config_file)
    source = f"settings from {found}" if found else "no settings file (embedded defaults)"
    database = redact_url(settings.database_url)
    db_file = sqlite_file(settings.database_url)
    if db_file is not None and not db_file.exists():
        database += " (does not exist yet)"
    return f"{source}; data directory {settings.data_dir}; database {database}"


def main() -> None:
    """Entry point: turns rosterdrop's own errors into a message and an exit code."""
    try:
        main_group(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (NotFound, Conflict) as exc:
        _fail(str(exc), EXIT_USAGE)
    except RosterdropError as exc:
        _fail(str(exc), EXIT_REFUSED)


# -- validate and import -----------------------------------------------------------------------


# A folder of files, or a OneRoster set's .zip (daemon/uploadset.py).
folder_argument = click.argument("folder", type=click.Path(exists=True, path_type=Path))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/cli.md).")


@main_group.command("validate")
@folder_argument
@click.option("--tenant", help="Use this tenant's rules (grade replacements, encoding).")
@json_option
@pass_app
def validate_command(app: App, folder: Path, tenant: str | None, as_json: bool) -> None:
    """Check the files in FOLDER (five Clever files, or a OneRoster set or its .zip) without
    touching any roster (no database needed)."""
    settings = TenantSettings()
    if tenant:
        with app.db.read() as conn:
            settings = tenants.get(conn, tenant).settings
    found = uploadset.find_path(folder, settings.input_format)
    problems = ProblemLog(keep=VALIDATE_KEEP if as_json else KEEP_PROBLEMS)
    with tempfile.TemporaryDirectory(prefix="rosterdrop-validate-") as scratch:
        db = Database(f"sqlite:///{scratch}/scratch.db")
        try:
            with db.read() as conn, Stage(conn) as stage:
                validation = uploadset.validate(
                    found, fingerprints(found), settings, problems, stage
                )
                stage.close()
        finally:
            db.close()
    if as_json:
        _echo_json(console.validation_json(validation, problems))
    else:
        console.print_validation(click.echo, validation, problems)
    if validation.fatal or problems.error_count:
        sys.exit(EXIT_REFUSED)


@main_group.command("import")
@folder_argument
@click.option("--tenant", required=True, help="The tenant whose roster this is.")
@click.option("--dry-run", is_flag=True, help="Show the plan; change and record nothing.")
@json_option
@pass_app
def import_command(app: App, folder: Path, tenant: str, dry_run: bool, as_json: bool) -> None:
    """Import the files in FOLDER (or a OneRoster .zip), exactly as an SFTP upload would be."""
    pipeline = app.pipeline()
    with app.db.read() as conn:
        owner = tenants.get(conn, tenant)
    if dry_run:
        preview = pipeline.preview(owner, folder)
        files = preview.validation.files
        if as_json:
            data = console.validation_json(preview.validation, preview.problems)
            data["tenant"] = owner.name
            data["counts"] = console.plan_json(preview.plan, files)
            data["tripped"] = [t.as_dict() for t in preview.tripped]
            _echo_json(data)
        else:
            console.print_validation(click.echo, preview.validation, preview.problems)
            if preview.plan is not None:
                click.echo("")
                click.echo(f"dry run for {owner.name}: nothing was changed or recorded")
                console.print_plan(click.echo, preview.plan, files)
                if preview.tripped:
                    click.echo("")
                    click.echo("the import would be paused because it")
                    console.print_tripped(click.echo, preview.tripped)
        if preview.validation.fatal:
            sys.exit(EXIT_REFUSED)
        if preview.tripped:
            sys.exit(EXIT_PAUSED)
        return
    found = uploadset.find_path(folder, owner.settings.input_format)
    import_id = pipeline.receive(owner, found, source="cli", move=False)
    _show_import(pipeline.run(import_id), as_json)


def _show_import(report: Any, as_json: bool) -> None:
    if as_json:
        _echo_json(console.import_json(report))
    else:
        console.print_import(click.echo, report)
    if report.state is ImportState.PAUSED:
        sys.exit(EXIT_PAUSED)
    if report.state in (ImportState.FAILED, ImportState.REJECTED, ImportState.SUPERSEDED):
        sys.exit(EXIT_REFUSED)


# -- imports -------------------------------------------------------------------------------------


@main_group.group("imports")
def imports_group() -> None:
    """The import history; approve or reject paused imports, end stuck ones, undo."""


@imports_group.command("list")
@click.option("--tenant", help="Only this tenant's imports.")
@click.option("--state", type=click.Choice([s.value for s in ImportState]), help="Only this state.")
@click.option("--limit", default=50, show_default=True)
@json_option
@pass_app
def imports_list(
    app: App, tenant: str | None, state: str | None, limit: int, as_json: bool
) -> None:
    """The most recent imports, newest first."""
    with app.db.read() as conn:
        tenant_id = tenants.get(conn, tenant).id if tenant else None
        states = [ImportState(state)] if state else None
        records = imports.list_recent(conn, tenant_id=tenant_id, states=states, limit=limit)
    if as_json:
        _echo_json(console.imports_json(records))
    else:
        console.print_imports(click.echo, records)


@imports_group.command("show")
@click.argument("import_id", type=int)
@json_option
@pass_app
def imports_show(app: App, import_id: int, as_json: bool) -> None:
    """One import: counts, thresholds, problems."""
    report = app.pipeline().report(import_id)
    if as_json:
        _echo_json(console.import_json(report))
    else:
        console.print_import(click.echo, report)


def _decided_by(by: str | None) -> str:
    return by or cli_user()


def _audit_entry(app: App, report: ImportReport, action: str, by: str, detail: str) -> None:
    """The decision in the audit log, as the web writes it (right after the pipeline's own
    transactions, which approve, reject and fail run themselves)."""
    with app.db.write() as conn:
        audit_cli(
            conn, action, tenant_id=tenants.get(conn, report.tenant).id,
            import_id=report.import_id, by=by,
            detail=f"result: {str(report.state).replace('_', ' ')}{detail}",
        )  # fmt: skip


def _audited_decision(
    app: App, report: ImportReport, action: str, by: str, as_json: bool, detail: str = ""
) -> None:
    _audit_entry(app, report, action, by, detail)
    if as_json:
        _echo_json(console.import_json(report))
    else:
        console.print_import(click.echo, report)


@imports_group.command("approve")
@click.argument("import_id", type=int)
@click.option("--by", help="Who approves (default: your user name).")
@json_option
@pass_app
def imports_approve(app: App, import_id: int, by: str | None, as_json: bool) -> None:
    """Apply a paused import after re-checking it against the roster as it is now."""
    who = _decided_by(by)
    _audited_decision(app, app.pipeline().approve(import_id, who), "approve", who, as_json)


@imports_group.command("reject")
@click.argument("import_id", type=int)
@click.option("--by", help="Who rejects (default: your user name).")
@json_option
@pass_app
def imports_reject(app: App, import_id: int, by: str | None, as_json: bool) -> None:
    """Discard a paused import: nothing is applied."""
    who = _decided_by(by)
    _audited_decision(app, app.pipeline().reject(import_id, who), "reject", who, as_json)


@imports_group.command("fail")
@click.argument("import_id", type=int)
@click.option("--reason", default="stuck", show_default=True, help="Said in the email.")
@click.option("--by", help="Who ends it (default: your user name).")
@json_option
@pass_app
def imports_fail(app: App, import_id: int, reason: str, by: str | None, as_json: bool) -> None:
    """End an unfinished import that cannot end by itself (one that crashes on every attempt):
    nothing is applied, the district is emailed, the files are archived."""
    who = _decided_by(by)
    report = app.pipeline().fail(import_id, who, reason)
    _audited_decision(app, report, "fail", who, as_json, f"; reason: {reason}")


imports_group.add_command(undo_command)


# -- roster --------------------------------------------------------------------------------------


@main_group.group("roster")
def roster_group() -> None:
    """The imported rosters."""


@roster_group.command("show")
@click.option("--tenant", required=True)
@json_option
@pass_app
def roster_show(app: App, tenant: str, as_json: bool) -> None:
    """A tenant's active roster (sections list their teachers in display order)."""
    with app.db.read() as conn:
        roster = active_roster(conn, tenants.get(conn, tenant).id)
    if as_json:
        _echo_json(roster)
    else:
        console.print_roster(click.echo, roster)


# -- database, outbox, config ----------------------------------------------------------------------


@main_group.group("db")
def db_group() -> None:
    """The database."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply the schema migrations (also done automatically on first use)."""
    app.db.upgrade()
    click.echo("database is up to date")


@main_group.group("config")
def config_group() -> None:
    """The settings."""


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def config_check(app: App, file: Path | None) -> None:
    """Print the effective settings of FILE (default: --config, $ROSTERDROP_CONFIG), secrets
    hidden, after the environment's overrides; exit 2 naming the key if they are invalid."""
    settings = load_settings(file) if file is not None else app.settings
    for name in unknown_env():
        click.echo(f"rosterdrop: warning: {name} is not a setting and is ignored", err=True)
    root = click.get_current_context().find_root().params.get("config_file")
    found = config_file_in_use(file or root)
    # Not a setting: which file these came from (data_dir and database_url say the rest).
    _echo_json({"config_file": str(found) if found else None, **redacted(settings)})


# -- serve -----------------------------------------------------------------------------------------


@main_group.command("serve")
@click.option("--once", is_flag=True, help="Import what is waiting, deliver due emails, exit.")
@click.option("--demo", is_flag=True, help="Create a demo tenant first if there is none.")
@pass_app
def serve(app: App, once: bool, demo: bool) -> None:
    """Run the daemon: SFTP server, upload watcher, importers, mailer, health and metrics."""
    import structlog

    from daemon import service

    for name in unknown_env():
        structlog.get_logger(__name__).warning("not a setting; ignored", variable=name)
    if demo:
        demo_tenant = ensure_demo_tenant(app.db, app.settings, click.echo)
        ensure_demo_user(app.db, app.settings, demo_tenant.name, click.echo)
    config_file = click.get_current_context().find_root().params.get("config_file")
    code = service.run(app.settings, app.db, once=once, reload=lambda: load_settings(config_file))
    sys.exit(code)


main_group.add_command(outbox_group)
main_group.add_command(tenant_group)
main_group.add_command(cluster_group)
main_group.add_command(checks_group)
main_group.add_command(user_group)
main_group.add_command(web_command)
