"""The Setup page in this process over each kind of database: what a district is told to type
into its SIS, the password rotation, addresses and thresholds checked as the CLI checks them,
each change audited, another tenant's Setup not found, every POST refused without its token."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon import publickeys
from daemon.config import Settings
from daemon.hostkeyfiles import HOST_KEY_FILES
from daemon.passwords import PASSWORD_LENGTH, hash_password, verify_password
from daemon.sftp import public_key_line
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.tables import audit_log
from daemon.store.tenants import Tenant
from daemon.web.context import SftpDetails
from tests.integration.test_web_app import Web, add_user, csrf_of, web_for

OLD_PASSWORD = "the-old-sftp-password"
# north's own SSH key: removing it as south must be a 404 because of the tenant, not the key
NORTH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFHQQ+4bQaPB241NUyyDTSiwqIkc33Ir8WKgIE5n/yp8 north-sis"
)
NORTH_FINGERPRINT = publickeys.read_key(NORTH_KEY).fingerprint
POSTS = ("password", "emails", "thresholds", "keys", "keys/remove", "grade-rules", "input-format")
FORMS = {
    "password": {},
    "keys": {
        "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICFLagAzTH5zrOlBOBz+TMtttxdsMbCoklpRvEMaBKHC"
    },
    "keys/remove": {"fingerprint": NORTH_FINGERPRINT},
    "grade-rules": {"grade_rules": "K=KG", "common_grade_rules": "on"},
    "input-format": {"input_format": "oneroster"},
    "emails": {"emails": "new@north.example.org"},
    "thresholds": {
        "max_deactivate_percent": "20",
        "max_update_percent": "75",
        "threshold_floor": "5",
        "max_row_errors": "0",
    },
}
# `ssh-keygen -l` of a public key whose blob is b"a host key"
PUBLIC_LINE = "ssh-ed25519 YSBob3N0IGtleQ== rosterdrop host key\n"
FINGERPRINT = "SHA256:" + base64.b64encode(hashlib.sha256(b"a host key").digest()).decode().rstrip(
    "="
)


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


def tenant(web: Web, name: str) -> Tenant:
    with web.db.read() as conn:
        return tenants.get(conn, name)


def audit_entries(web: Web) -> list[dict[str, object]]:
    with web.db.read() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings()
        return [dict(row) for row in rows]


def districts(web: Web) -> None:
    """north (with an SFTP password) and south, each with its administrator; an operator."""
    add_user(web.db, "north-admin", "north")
    add_user(web.db, "south-admin", "south")
    add_user(web.db, "ops", None)
    with web.db.write() as conn:
        tenants.update(conn, "north", password_hash=hash_password(OLD_PASSWORD))
        tenants.update(conn, "north", emails=["registrar@north.example.org"])


async def token(web: Web, path: str = "/tenants/north/setup") -> str:
    return csrf_of(await (await web.client.get(path)).text())


async def post(web: Web, what: str, data: dict[str, str], tenant: str = "north") -> tuple[int, str]:
    response = await web.client.post(f"/tenants/{tenant}/setup/{what}", data=data)
    return response.status, await response.text()


async def test_a_district_sees_what_to_type_into_its_sis(web: Web, tmp_path: Path) -> None:
    districts(web)
    keys = web.ctx.sftp.host_keys
    keys.mkdir(parents=True, exist_ok=True)
    (keys / f"{HOST_KEY_FILES[0][0]}.pub").write_text(PUBLIC_LINE)
    assert (web.ctx.sftp.host(), web.ctx.sftp.host_keys) == ("sftp.example.org", keys)
    assert await web.sign_in("north-admin") == 303
    assert (await web.client.get("/setup", allow_redirects=False)).headers["Location"] == (
        "/tenants/north/setup"
    )
    html = await (await web.client.get("/tenants/north/setup")).text()
    for shown in ("sftp.example.org", ">2222<", ">/upload<", ">north<", f"ED25519 {FINGERPRINT}"):
        assert shown in html
    assert "registrar@north.example.org" in html
    assert 'href="/setup"' in html  # in the navigation
    assert OLD_PASSWORD not in html


def test_without_a_public_host_the_sftp_server_is_this_machines_name(tmp_path: Path) -> None:
    assert (
        SftpDetails("", lambda: 22, tmp_path, public_key_line).host() == socket.getfqdn()
    )  # as the CLI says


async def test_another_tenants_setup_is_not_found_for_every_route(web: Web) -> None:
    districts(web)
    with web.db.write() as conn:
        tenants.update(conn, "north", authorized_keys=NORTH_KEY + "\n")
    assert await web.sign_in("south-admin") == 303
    csrf = await token(web, "/tenants/south/setup")
    before = tenant(web, "north")
    for name in ("north", "nowhere"):
        assert await web.status(f"/tenants/{name}/setup") == 404
        assert await web.status(f"/tenants/{name}/setup/password") == 404
        for what in POSTS:
            status, _ = await post(web, what, {"csrf_token": csrf, **FORMS[what]}, tenant=name)
            assert status == 404, what
    after = tenant(web, "north")
    assert (after.password_hash, after.emails, after.settings, after.authorized_keys) == (
        before.password_hash, before.emails, before.settings, before.authorized_keys,
    )  # fmt: skip
    assert audit_entries(web) == []


async def test_an_operator_picks_a_tenant_and_sees_its_setup(web: Web) -> None:
    districts(web)
    assert await web.sign_in("ops") == 303
    listing = await (await web.client.get("/setup")).text()
    assert 'href="/tenants/north/setup"' in listing
    assert 'href="/tenants/south/setup"' in listing
    assert await web.status("/tenants/south/setup") == 200
    picked = await web.client.get("/setup?tenant=south", allow_redirects=False)
    assert picked.headers["Location"] == "/tenants/south/setup"


async def test_every_setup_post_without_the_csrf_token_is_refused(web: Web) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    before = tenant(web, "north")
    for what in POSTS:
        for wrong in ({}, {"csrf_token": "not-the-token"}):
            status, _ = await post(web, what, {**wrong, **FORMS[what]})
            assert status == 403, what
    after = tenant(web, "north")
    assert (after.password_hash, after.emails, after.settings, after.authorized_keys) == (
        before.password_hash, before.emails, before.settings, before.authorized_keys,
    )  # fmt: skip
    assert audit_entries(web) == []


async def test_rotating_the_password_shows_it_once_stores_its_hash_and_audits(web: Web) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    confirm = await (await web.client.get("/tenants/north/setup/password")).text()
    assert ">Confirm</button>" in confirm
    status, html = await post(web, "password", {"csrf_token": await token(web)})
    assert status == 200
    shown = html.split('id="password-value">', 1)[1].split("<", 1)[0]
    assert len(shown) == PASSWORD_LENGTH
    stored = tenant(web, "north").password_hash
    assert stored
    assert shown not in stored
    assert verify_password(stored, shown)
    assert not verify_password(stored, OLD_PASSWORD)
    again = await (await web.client.get("/tenants/north/setup")).text()
    assert shown not in again  # shown only once
    (entry,) = audit_entries(web)
    assert (entry["action"], entry["user_name"], entry["tenant_id"]) == (
        "sftp_password", "north-admin", tenant(web, "north").id,
    )  # fmt: skip
    assert shown not in str(entry["detail"])
    assert entry["address"]


async def test_addresses_are_checked_as_the_cli_checks_them_and_audited(web: Web) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    csrf = await token(web)
    status, html = await post(web, "emails", {"csrf_token": csrf, "emails": "ok@x.org\nnot-mail"})
    assert status == 400
    assert "Notification addresses: not an email address: not-mail" in html
    assert tenant(web, "north").emails == ("registrar@north.example.org",)
    status, html = await post(web, "emails", {"csrf_token": csrf, "emails": "  "})
    assert status == 400
    assert "give at least one address" in html
    assert audit_entries(web) == []
    new = "Registrar@North.example.org\nit@north.example.org"
    status, html = await post(web, "emails", {"csrf_token": csrf, "emails": new})
    assert status == 200
    assert "The notification addresses were saved." in html
    saved = ("registrar@north.example.org", "it@north.example.org")
    assert tenant(web, "north").emails == saved
    (entry,) = audit_entries(web)
    assert entry["action"] == "emails"
    assert entry["detail"] == "emails: " + ", ".join(saved)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("max_deactivate_percent", "150", "Max deactivate %: max_deactivate_percent must be"
         " between 0 and 100, not 150.0"),
        ("max_update_percent", "-1", "Max update %: max_update_percent must be between"),
        ("threshold_floor", "-3", "Threshold floor: threshold_floor must not be negative"),
        ("max_row_errors", "2.5", "Max row errors: &#39;2.5&#39; is not a whole number"),
        ("max_deactivate_percent", "lots", "Max deactivate %: &#39;lots&#39; is not a number"),
    ],
)  # fmt: skip
async def test_a_threshold_the_cli_refuses_is_refused_naming_its_field(
    web: Web, field: str, value: str, said: str
) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    before = tenant(web, "north").settings
    form = {**FORMS["thresholds"], "max_row_errors": "3", field: value}
    status, html = await post(web, "thresholds", {"csrf_token": await token(web), **form})
    assert status == 400
    assert said in html
    assert f'id="{field}"' in html
    assert 'aria-invalid="true"' in html
    assert tenant(web, "north").settings == before  # the valid fields were not saved either
    assert audit_entries(web) == []


async def test_thresholds_are_saved_and_audited(web: Web) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    form = {**FORMS["thresholds"], "max_deactivate_percent": "25", "max_row_errors": "3"}
    status, html = await post(web, "thresholds", {"csrf_token": await token(web), **form})
    assert status == 200
    assert "The thresholds were saved." in html
    settings = tenant(web, "north").settings
    assert (settings.max_deactivate_percent, settings.max_row_errors) == (25.0, 3)
    assert (settings.max_update_percent, settings.threshold_floor) == (75.0, 5)
    (entry,) = audit_entries(web)
    assert entry["action"] == "thresholds"
    assert entry["detail"] == "max_deactivate_percent: 10 → 25; max_row_errors: 0 → 3"
    status, html = await post(web, "thresholds", {"csrf_token": await token(web), **form})
    assert "The thresholds were already so." in html
    assert len(audit_entries(web)) == 1
