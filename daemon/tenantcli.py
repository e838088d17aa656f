"""`rosterdrop tenant …`: adding districts, their SFTP credentials, addresses and import rules."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from daemon import console, publickeys
from daemon.app import App
from daemon.cliaudit import audit_cli, cli_user
from daemon.config import Settings
from daemon.errors import ConfigError
from daemon.passwords import generate_password, hash_password, read_password_stdin
from daemon.pausecli import default_window, pause_group
from daemon.roster.tenant import INPUT_FORMATS, TenantSettings, grade_rule
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.tenants import Tenant


def _sftp() -> Any:
    """The SFTP package's credential helpers, loaded only by the commands that need them
    (asyncssh takes a noticeable part of a second to import)."""
    from daemon import sftp

    return sftp


DEMO_TENANT = "demo"
DEMO_CREDENTIALS = "demo-credentials.txt"
Echo = Callable[[str], None]


def _now() -> datetime:
    return datetime.now(UTC)


def _prepare_folder(settings: Settings, name: str) -> None:
    settings.paths.upload_dir(name).mkdir(parents=True, exist_ok=True, mode=0o750)


def connection_info(settings: Settings, tenant: str, password: str | None, echo: Echo) -> None:
    """What a district enters in its SIS export settings."""
    host = settings.service.public_host or socket.getfqdn()
    echo(f"  SFTP server:    {host}")
    echo(f"  SFTP port:      {settings.sftp.port}")
    echo("  SFTP directory: /upload")
    echo(f"  username:       {tenant}")
    if password:
        echo(f"  password:       {password}")
    for fingerprint in _sftp().host_key_fingerprints(settings.paths.host_keys):
        echo(f"  host key:       {fingerprint}")


@click.group("tenant")
def tenant_group() -> None:
    """Districts: their SFTP login, notification addresses and import rules."""


@tenant_group.command("add")
@click.argument("name")
@click.option("--email", "emails", multiple=True, help="Who gets the emails (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--no-password", is_flag=True, help="Key login only (add keys with add-key).")
@click.pass_obj
def tenant_add(
    app: App, name: str, emails: tuple[str, ...], password_stdin: bool, no_password: bool
) -> None:
    """Add a district; prints its SFTP settings and (once) its generated password."""
    password = None
    if not no_password:
        password = read_password_stdin() if password_stdin else generate_password()
    with app.db.write() as conn:
        added = tenants.add(
            conn,
            name,
            emails=_checked_emails(emails),
            now=_now(),
            password_hash=hash_password(password) if password else None,
        )
        audit_cli(conn, "tenant_added", tenant_id=added.id, detail=f"tenant {name}")
        default_window(conn, app.settings, added.id)
    _prepare_folder(app.settings, name)
    click.echo(f"tenant {name} added; give the district these SIS export settings:")
    connection_info(app.settings, name, None if password_stdin else password, click.echo)
    if password and not password_stdin:
        click.echo("The password is shown only now: rosterdrop keeps just a hash of it.")


def _checked_emails(emails: tuple[str, ...]) -> list[str]:
    from daemon.clever.values import checked_emails  # the web's Setup page checks them so too

    return checked_emails(emails)


@tenant_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tenant_list(app: App, as_json: bool) -> None:
    """All tenants."""
    with app.db.read() as conn:
        everyone = tenants.list_all(conn)
    if as_json:
        click.echo(_dumps([console.tenant_json(t) for t in everyone]))
    else:
        console.print_tenants(click.echo, everyone)


@tenant_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tenant_show(app: App, name: str, as_json: bool) -> None:
    """One tenant's addresses, login methods and import settings."""
    with app.db.read() as conn:
        tenant = tenants.get(conn, name)
    data = console.tenant_json(tenant)
    if as_json:
        click.echo(_dumps(data))
        return
    for key, value in data.items():
        if key != "settings":
            click.echo(f"{key}: {value}")
    for key, value in data["settings"].items():
        click.echo(f"  {key}: {value}")


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False)


@tenant_group.command("set")
@click.argument("name")
@click.option("--email", "emails", multiple=True, help="Replace the addresses (repeatable).")
@click.option("--max-deactivate-percent", type=float)
@click.option("--max-update-percent", type=float)
@click.option("--threshold-floor", type=int, help="Changes below this never trip a percentage.")
@click.option("--max-row-errors", type=int, help="Row errors allowed before pausing.")
@click.option(
    "--per-school/--no-per-school",
    default=None,
    help="Also count the deactivation threshold school by school (default: on).",
)
@click.option("--grade-rule", "grade_rules", multiple=True, help="FROM=TO, e.g. K5=KG.")
@click.option("--clear-grade-rules", is_flag=True, help="Drop this tenant's own rules first.")
@click.option("--common-grade-rules/--no-common-grade-rules", default=None)
@click.option("--fallback-encoding", help="e.g. windows-1252; 'none' fails non-UTF-8 files.")
@click.option("--keep-extra-columns/--ignore-extra-columns", default=None)
@click.option(
    "--input-format",
    type=click.Choice(INPUT_FORMATS),
    help="What its uploads are: clever, oneroster, or auto (told from the files).",
)
@click.option(
    "--secret-columns",
    metavar="WORD[,WORD…]",
    help="Never read a column whose name has one of these words (default: password,"
    " passwd, pwd, pin, passcode, secret).",
)
@click.option(
    "--allow-from",
    metavar="CIDR[,CIDR…]",
    help="Accept its logins only from these networks; 'any' accepts them from anywhere.",
)
@click.pass_obj
def tenant_set(
    app: App, /, name: str, emails: tuple[str, ...], allow_from: str | None, **options: Any
) -> None:
    """Change a tenant's addresses, thresholds, grade replace rules or login networks."""
    with app.db.write() as conn:
        tenant = tenants.get(conn, name)
        changes = _setting_changes(tenant.settings, options)
        values: dict[str, Any] = {"settings": tenant.settings.updated(**changes)}
        if emails:
            values["emails"] = _checked_emails(emails)
        if allow_from is not None:
            values["allow_from"] = _checked_networks(allow_from)
        tenant = tenants.update(conn, name, **values)
        for action, detail in _audited_settings(changes, values):
            audit_cli(conn, action, tenant_id=tenant.id, detail=detail)
    click.echo(_dumps(console.tenant_json(tenant)))


# `tenant set`'s options, audited under the web Setup page's action names where it has them.
_THRESHOLDS = (
    "max_deactivate_percent", "max_update_percent", "threshold_floor", "max_row_errors",
    "per_school",
)  # fmt: skip
_GRADE_RULES = ("grade_rules", "common_grade_rules")


def _audited_settings(changes: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, detail) of each kind of change `tenant set` made, one entry per kind."""
    said: dict[str, list[str]] = {}
    for key, value in changes.items():
        action = (
            "thresholds" if key in _THRESHOLDS
            else "grade_rules" if key in _GRADE_RULES
            else "input_format" if key == "input_format"
            else "tenant_settings"
        )  # fmt: skip
        said.setdefault(action, []).append(f"{key}={value}")
    if "emails" in values:
        action = "emails"
        said[action] = [", ".join(values["emails"])]
    if "allow_from" in values:
        action = "allowed_networks"
        said[action] = [", ".join(values["allow_from"]) or "any"]
    return [(action, "; ".join(parts)) for action, parts in said.items()]


def _checked_networks(text: str) -> list[str]:
    if text.strip().lower() == "any":
        return []
    try:
        networks = _sftp().parse_networks(text)
    except ValueError as exc:
        raise ConfigError(f"--allow-from: {exc}") from None
    if not networks:
        raise ConfigError("--allow-from wants CIDR[,CIDR…], or 'any'")
    return [str(n) for n in networks]


def _setting_changes(current: TenantSettings, options: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    rules = {} if options.pop("clear_grade_rules") else dict(current.grade_rules)
    for rule in options.pop("grade_rules"):
        try:
            source, target = grade_rule(rule)
        except ConfigError as exc:
            raise ConfigError(f"--{exc}") from None
        rules[source] = target
    if rules != dict(current.grade_rules):
        changes["grade_rules"] = rules
    secret = options.pop("secret_columns")
    if secret is not None:
        changes["secret_columns"] = tuple(w.strip().lower() for w in secret.split(",") if w.strip())
    encoding = options.pop("fallback_encoding")
    if encoding is not None:
        changes["fallback_encoding"] = "" if encoding.lower() == "none" else encoding
    changes.update({k: v for k, v in options.items() if v is not None})
    return changes


@tenant_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def tenant_passwd(app: App, name: str, password_stdin: bool) -> None:
    """Set a new SFTP password (generated unless --password-stdin)."""
    password = read_password_stdin() if password_stdin else generate_password()
    with app.db.write() as conn:
        tenant = tenants.update(conn, name, password_hash=hash_password(password))
        audit_cli(conn, "sftp_password", tenant_id=tenant.id, detail="a new SFTP password")
    click.echo(f"password of {name} changed")
    if not password_stdin:
        click.echo(f"  new password: {password}  (shown only now)")


@tenant_group.command("add-key")
@click.argument("name")
@click.argument("key_file", type=click.File("r"))
@click.pass_obj
def tenant_add_key(app: App, name: str, key_file: Any) -> None:
    """Allow login with the OpenSSH public key in KEY_FILE ('-' reads standard input)."""
    try:
        line = _sftp().public_key_line(key_file.read())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with app.db.write() as conn:
        tenant = tenants.get(conn, name)
        keys = publickeys.with_key(tenant.authorized_keys, line)
        if keys != tenant.authorized_keys:  # the same key again changes nothing
            tenants.update(conn, name, authorized_keys=keys)
            key = publickeys.read_key(line)
            detail = f"{key.kind} {key.fingerprint} {key.comment}".strip()
            audit_cli(conn, "public_key_added", tenant_id=tenant.id, detail=detail)
    click.echo(f"key added for {name} ({len(keys.splitlines())} key(s) in all)")


@tenant_group.command("unban")
@click.argument("name", required=False)
@click.option("--address", "addresses", multiple=True, help="Lift this address's ban (repeatable).")
@click.option("--by", help="Who lifts it (default: your user name).")
@click.pass_obj
def tenant_unban(app: App, name: str | None, addresses: tuple[str, ...], by: str | None) -> None:
    """Lift login bans at once: NAME's pace and the bans of the addresses that failed as NAME,
    and/or the bans of --address. Running daemons apply it at the next login attempt."""
    if not name and not addresses:
        raise ConfigError("say whose ban to lift: a tenant NAME and/or --address ADDR")
    subjects = []
    with app.db.write() as conn:
        if name:
            subjects.append(f"user:{tenants.get(conn, name).name}")
        for address in addresses:
            try:
                subjects.append(f"address:{ipaddress.ip_address(address.strip())}")
            except ValueError:
                raise ConfigError(f"--address wants one IP address, not {address!r}") from None
        who = by or cli_user()
        tenants.lift_bans(conn, subjects, now=_now(), by=who)
        found = tenants.find(conn, name) if name else None
        detail = ", ".join(subjects)
        audit_cli(conn, "bans_lifted", tenant_id=found.id if found else None, detail=detail, by=who)
    click.echo(f"lifting login bans of {', '.join(subjects)} (from the next attempt on)")


@tenant_group.command("disable")
@click.argument("name")
@click.pass_obj
def tenant_disable(app: App, name: str) -> None:
    """Refuse the tenant's logins (its data stays)."""
    with app.db.write() as conn:
        tenant = tenants.update(conn, name, disabled=True)
        audit_cli(conn, "tenant_disabled", tenant_id=tenant.id)
    click.echo(f"{name} is disabled: its logins are refused")


@tenant_group.command("enable")
@click.argument("name")
@click.pass_obj
def tenant_enable(app: App, name: str) -> None:
    """Accept the tenant's logins again."""
    with app.db.write() as conn:
        tenant = tenants.update(conn, name, disabled=False)
        audit_cli(conn, "tenant_enabled", tenant_id=tenant.id)
    click.echo(f"{name} is enabled")


tenant_group.add_command(pause_group)


def ensure_demo_tenant(db: Database, settings: Settings, echo: Echo) -> Tenant:
    """For `make run`: a demo tenant whose credentials are kept (0600) in the data directory,
    so every start can say how to connect."""
    credentials = settings.paths.root / DEMO_CREDENTIALS
    with db.write() as conn:
        tenant = tenants.find(conn, DEMO_TENANT)
        if tenant is None:
            password = generate_password()
            tenant = tenants.add(
                conn, DEMO_TENANT, emails=["admin@demo.invalid"], now=_now(),
                password_hash=hash_password(password),
            )  # fmt: skip
            _write_private(credentials, password)
    _prepare_folder(settings, DEMO_TENANT)
    saved = credentials.read_text().strip() if credentials.exists() else None
    echo("Demo tenant ready. Connect with any SFTP client:")
    connection_info(settings, DEMO_TENANT, saved, echo)
    echo(f"  e.g.: sftp -P {settings.sftp.port} {DEMO_TENANT}@localhost")
    echo(f"  emails are written to {settings.paths.outbox}/")
    return tenant


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(text + "\n")
