"""`rosterdrop user …`: the accounts that sign in to the web Import Manager."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import click

from daemon import accounts, factorcli
from daemon.app import App
from daemon.cliaudit import audit_cli
from daemon.config import Settings
from daemon.errors import ConfigError
from daemon.passwords import hash_password, read_password_stdin
from daemon.store import tenants, users
from daemon.store.credentials import LinkPurpose
from daemon.store.database import Database
from daemon.store.users import User

DEMO_USER = "demo-admin"
DEMO_WEB_CREDENTIALS = "demo-web-credentials.txt"
# A generated web password: shown once, typed or pasted by a person, then changed by them.
GENERATED_PASSWORD_BYTES = 15  # 20 URL-safe characters


def _now() -> datetime:
    return datetime.now(UTC)


def _generate() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "tenant": user.tenant,
        "email": user.email,
        "disabled": user.disabled,
        "totp": user.totp,
        "created_at": user.created_at.isoformat(),
        "password_changed_at": (
            user.password_changed_at.isoformat() if user.password_changed_at else None
        ),
    }


@click.group("user")
def user_group() -> None:
    """Web Import Manager accounts: district administrators and operators (docs/web.md)."""


@user_group.command("add")
@click.argument("name")
@click.option("--tenant", help="A district administrator of this tenant (sees only it).")
@click.option("--operator", is_flag=True, help="An operator (sees every tenant).")
@click.option("--email", help="The person's address: the invitation goes there.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--generate-password", is_flag=True, help="Print a generated password once; no invitation."
)
@click.pass_obj
def user_add(
    app: App,
    name: str,
    tenant: str | None,
    operator: bool,
    email: str | None,
    password_stdin: bool,
    generate_password: bool,
) -> None:
    """Add an account. With --email: an invitation email with a one-time link to choose a
    password (needs [web] public_url). Without an email, or with --generate-password: a
    generated password printed once. --password-stdin: the password you give."""
    if operator == (tenant is not None):
        raise ConfigError("give exactly one of --tenant TENANT or --operator")
    if password_stdin and generate_password:
        raise ConfigError("give at most one of --password-stdin and --generate-password")
    if email is not None:
        from daemon.clever.values import valid_email

        if not valid_email(email):
            raise ConfigError(f"not an email address: {email}")
    invite = email is not None and not (password_stdin or generate_password)
    if invite and not app.settings.web.public_url:
        raise ConfigError(
            "cannot send the invitation: [web] public_url (ROSTERDROP_WEB_PUBLIC_URL) is not set,"
            " and its link must say where the Import Manager is; set it, or add the user with"
            " --generate-password (prints a password once) or --password-stdin"
        )
    password = None
    if password_stdin:
        password = read_password_stdin()
    elif not invite:
        password = _generate()
    now = _now()
    with app.db.write() as conn:
        tenant_id = tenants.get(conn, tenant).id if tenant else None
        user = users.add(
            conn,
            name,
            tenant_id=tenant_id,
            email=email.lower() if email else None,
            password_hash=hash_password(password) if password else None,
            now=now,
        )
        role = "operator" if operator else f"administrator of {tenant}"
        audit_cli(conn, "user_added", now=now, tenant_id=tenant_id, detail=f"user {name} ({role})")
        sent = _invite(app, conn, user, now) if invite else None
    click.echo(f"user {name} added ({role})")
    if sent is not None:
        _say_sent(user, sent)
    elif not password_stdin:
        assert password is not None
        _show_once(password)


def _invite(app: App, conn: Any, user: User, now: datetime) -> accounts.SentLink:
    sent = accounts.send_password_link(
        conn, user, LinkPurpose.INVITATION, web=app.settings.web, smtp=app.settings.smtp, now=now
    )
    audit_cli(
        conn, "invitation_sent", now=now, tenant_id=user.tenant_id,
        detail=f"user {user.name}, to {user.email}, until {sent.expires_at:%Y-%m-%d %H:%M} UTC",
    )  # fmt: skip
    return sent


def _say_sent(user: User, sent: accounts.SentLink) -> None:
    click.echo(
        f"  invitation queued for {user.email} (email #{sent.outbox_id}; the running daemon"
        f" sends it): a link to choose a password, valid once, until"
        f" {sent.expires_at:%Y-%m-%d %H:%M} UTC"
    )


@user_group.command("invite")
@click.argument("name")
@click.pass_obj
def user_invite(app: App, name: str) -> None:
    """Email the user a new one-time link to choose a password (older links stop working)."""
    if not app.settings.web.public_url:
        raise ConfigError(
            "cannot send the invitation: [web] public_url (ROSTERDROP_WEB_PUBLIC_URL) is not set;"
            " use `rosterdrop user passwd NAME` instead"
        )
    now = _now()
    with app.db.write() as conn:
        user = users.get(conn, name)
        if user.disabled:
            raise ConfigError(f"user {name} is disabled: enable it first")
        sent = _invite(app, conn, user, now)
    _say_sent(user, sent)


def _show_once(password: str) -> None:
    click.echo(f"  password: {password}")
    click.echo("The password is shown only now: rosterdrop keeps just a hash of it.")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/web.md).")
@click.pass_obj
def user_list(app: App, as_json: bool) -> None:
    """Every account, its role and tenant."""
    with app.db.read() as conn:
        found = users.all_users(conn)
    if as_json:
        click.echo(json.dumps([user_json(u) for u in found], indent=2))
        return
    if not found:
        click.echo("no users yet: add one with `rosterdrop user add NAME --tenant T`")
        return
    for user in found:
        status = "disabled" if user.disabled else "active"
        scope = "operator" if user.operator else f"tenant {user.tenant}"
        click.echo(f"  {user.name}  {scope}  {status}  {user.email or '-'}")


@user_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def user_passwd(app: App, name: str, password_stdin: bool) -> None:
    """Set a new password (generated unless --password-stdin); signs the user out everywhere
    and revokes its API tokens."""
    password = read_password_stdin() if password_stdin else _generate()
    with app.db.write() as conn:
        users.set_password(conn, name, hash_password(password), _now())
        user = users.get(conn, name)
        detail = f"user {name}; its sessions ended, its API tokens revoked"
        audit_cli(conn, "password_set", tenant_id=user.tenant_id, detail=detail)
    click.echo(f"password of {name} changed; its sessions are signed out, its API tokens revoked")
    if not password_stdin:
        _show_once(password)


@user_group.command("disable")
@click.argument("name")
@click.pass_obj
def user_disable(app: App, name: str) -> None:
    """Refuse the user's sign-ins, and sign it out everywhere."""
    _set_disabled(app, name, True)


@user_group.command("enable")
@click.argument("name")
@click.pass_obj
def user_enable(app: App, name: str) -> None:
    """Let a disabled user sign in again."""
    _set_disabled(app, name, False)


def _set_disabled(app: App, name: str, disabled: bool) -> None:
    action = "user_disabled" if disabled else "user_enabled"  # as AUDIT_ACTIONS spells them
    with app.db.write() as conn:
        users.set_disabled(conn, name, disabled)
        user = users.get(conn, name)
        audit_cli(conn, action, tenant_id=user.tenant_id, detail=f"user {name}")
    click.echo(f"user {name} {'disabled' if disabled else 'enabled'}")


@user_group.command("remove")
@click.argument("name")
@click.pass_obj
def user_remove(app: App, name: str) -> None:
    """Delete the account: its sessions, links and API tokens end; the audit log keeps its name."""
    now = _now()
    with app.db.write() as conn:
        user = users.remove(conn, name)
        audit_cli(
            conn, "user_removed", now=now, tenant_id=user.tenant_id,
            detail=f"user {user.name} ({'operator' if user.operator else user.tenant})",
        )  # fmt: skip
    click.echo(f"user {name} removed; its sessions and API tokens no longer work")


user_group.add_command(factorcli.user_totp)
user_group.add_command(factorcli.user_token)


def ensure_demo_user(db: Database, settings: Settings, tenant: str, echo: Any) -> None:
    """For `make run`: an administrator of the demo tenant, its password kept (0600) in the
    data directory so that every start can say how to sign in."""
    credentials = settings.paths.root / DEMO_WEB_CREDENTIALS
    with db.write() as conn:
        if users.find(conn, DEMO_USER) is None:
            password = _generate()
            users.add(
                conn, DEMO_USER, tenant_id=tenants.get(conn, tenant).id, email=None,
                password_hash=hash_password(password), now=_now(),
            )  # fmt: skip
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.touch(mode=0o600)
            credentials.write_text(password + "\n", encoding="utf-8")
    web = settings.web
    host = "localhost" if web.host in ("0.0.0.0", "::", "127.0.0.1") else web.host  # noqa: S104
    url = web.public_url or f"{'https' if web.tls else 'http'}://{host}:{web.port}"
    saved = credentials.read_text(encoding="utf-8").strip() if credentials.exists() else None
    echo("Sign in to the Import Manager (the web pages) as the demo district's administrator:")
    echo(f"  Import Manager: {url}/")
    echo(f"  web username:   {DEMO_USER}")
    echo(f"  web password:   {saved or '(set one: rosterdrop user passwd ' + DEMO_USER + ')'}")
