"""`rosterdrop user totp` and `user token`: a web account's second factor and its API tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from daemon import accounts
from daemon.app import App
from daemon.cliaudit import audit_cli
from daemon.errors import ConfigError
from daemon.store import credentials, users


def _now() -> datetime:
    return datetime.now(UTC)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


@click.command("totp")
@click.argument("name")
@click.option("--off", is_flag=True, help="Remove the second factor.")
@click.pass_obj
def user_totp(app: App, name: str, off: bool) -> None:
    """Enrol the user in TOTP (prints the otpauth:// URI and secret once; a new enrolment
    replaces the old one), or remove it with --off."""
    now = _now()
    with app.db.write() as conn:
        user = users.get(conn, name)
        if off:
            if not user.totp:
                raise ConfigError(f"user {name} has no second factor to remove")
            accounts.remove_totp(conn, user)
        else:
            uri = accounts.enrol_totp(conn, user)
            users.end_sessions(conn, user.id)  # so that the next sign-in asks for a code
        audit_cli(
            conn, "totp_removed" if off else "totp_enrolled", now=now, tenant_id=user.tenant_id,
            detail=f"user {name}",
        )  # fmt: skip
    if off:
        click.echo(f"user {name} signs in with a password only")
        return
    secret = uri.split("secret=", 1)[1].split("&", 1)[0]
    click.echo(f"user {name} now signs in with an authentication code after the password")
    click.echo(f"  otpauth URI: {uri}")
    click.echo(f"  secret:      {secret}")
    click.echo("Add it to an authenticator app now: it is shown only this once.")


@click.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown by --list).")
@click.option("--list", "listing", is_flag=True, help="The user's tokens (never their values).")
@click.option("--revoke", "revoke_id", type=int, help="Revoke the token with this id.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
@click.pass_obj
def user_token(
    app: App, name: str, label: str, listing: bool, revoke_id: int | None, as_json: bool
) -> None:
    """Create an API token for /api/v1 (`Authorization: Bearer …`; printed once), list the
    user's tokens, or revoke one."""
    if listing and revoke_id is not None:
        raise ConfigError("give at most one of --list and --revoke ID")
    now = _now()
    if listing:
        with app.db.read() as conn:
            found = credentials.tokens_of(conn, users.get(conn, name).id)
        rows = [
            {"id": t.id, "label": t.label, "state": t.state(now),
             "created_at": t.created_at.isoformat(), "expires_at": t.expires_at.isoformat(),
             "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}
            for t in found
        ]  # fmt: skip
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        for t in [] if as_json else found:
            click.echo(
                f"  #{t.id}  {t.state(now):7}  created {_when(t.created_at)}"
                f"  expires {_when(t.expires_at)}  {t.label or '-'}"
            )
        if not found and not as_json:
            click.echo(f"no tokens: make one with `rosterdrop user token {name}`")
        return
    with app.db.write() as conn:
        user = users.get(conn, name)
        if revoke_id is not None:
            token = credentials.revoke_token(conn, user.id, revoke_id, now)
            action, detail = "token_revoked", f"user {name}, token #{token.id} {token.label}"
        else:
            token_id, value, expires_at = accounts.new_api_token(
                conn, user, label, web=app.settings.web, now=now
            )
            action, detail = "token_created", f"user {name}, token #{token_id} {label}"
        audit_cli(conn, action, now=now, tenant_id=user.tenant_id, detail=detail.strip())
    if revoke_id is not None:
        click.echo(f"token #{revoke_id} of {name} revoked: requests with it get 401")
        return
    click.echo(f"token #{token_id} for {name} (until {_when(expires_at)}):")
    click.echo(f"  {value}")
    click.echo("Use it as `Authorization: Bearer <token>`. It is shown only now.")
