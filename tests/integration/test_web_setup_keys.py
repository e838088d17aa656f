"""The Setup page's public keys and grade rules, in this process over each kind of database:
a key checked as `tenant add-key` checks it, listed with its type, fingerprint and comment,
removed after a confirmation; grade rules checked as `tenant set --grade-rule` checks them; the
bounds at their edge; every change in the tenant's audit log, shown on the page, paged."""

from __future__ import annotations

import html as html_lib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncssh
import pytest

from daemon import publickeys
from daemon.config import Settings
from daemon.hostkeyfiles import public_key_fingerprint
from daemon.store import users
from daemon.store.database import Database
from daemon.web.views.setup_page import SETUP_AUDIT_PAGE_SIZE
from tests.integration.test_web_app import START, Web, web_for
from tests.integration.test_web_setup import audit_entries, districts, post, tenant, token


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


def public_key(comment: str = "sis@north") -> str:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    return key.export_public_key().decode().strip()


async def test_a_key_is_added_listed_and_removed_after_a_confirmation(web: Web) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    line = public_key("SIS export <north>")
    while not set("+/") & set(public_key_fingerprint(line)):  # one that a URL must encode
        line = public_key("SIS export <north>")
    fingerprint = public_key_fingerprint(line)
    status, page = await post(web, "keys", {"csrf_token": await token(web), "key": line + "\n"})
    assert status == 200
    assert "The key was added" in page
    assert tenant(web, "north").authorized_keys == line + "\n"
    for shown in ("ssh-ed25519", fingerprint, "SIS export &lt;north&gt;"):
        assert shown in page
    status, _ = await post(web, "keys", {"csrf_token": await token(web), "key": line})
    assert status == 200  # the same key again: kept once, not audited twice
    assert tenant(web, "north").authorized_keys == line + "\n"

    confirm = await web.client.get(  # as the form's GET encodes it ('+' and '/' in it)
        "/tenants/north/setup/keys/remove", params={"fingerprint": fingerprint}
    )
    assert confirm.status == 200
    assert ">Confirm</button>" in await confirm.text()
    assert await web.status("/tenants/north/setup/keys/remove?fingerprint=SHA256:nope") == 404
    form = {"csrf_token": await token(web), "fingerprint": fingerprint}
    status, page = await post(web, "keys/remove", form)
    assert status == 200
    assert "The key was removed" in page
    assert tenant(web, "north").authorized_keys == ""
    added, removed = audit_entries(web)
    assert (added["action"], removed["action"]) == ("public_key_added", "public_key_removed")
    assert added["detail"] == f"ssh-ed25519 {fingerprint} SIS export <north>"
    assert removed["user_name"] == "north-admin"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("", "give exactly one public key"),
        ("ssh-ed25519 bm90IGEga2V5", "not an OpenSSH public key"),
        ("two\nlines", "give exactly one public key"),
        (
            "ssh-ed25519 " + "A" * (publickeys.MAX_KEY_CHARS - 11),
            "a public key line is at most 8192 characters",
        ),
    ],
)
async def test_a_key_the_cli_refuses_is_refused_naming_the_field(
    web: Web, given: str, said: str
) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    status, page = await post(web, "keys", {"csrf_token": await token(web), "key": given})
    assert status == 400
    assert f"Public key: {said}" in html_lib.unescape(page)
    assert 'aria-invalid="true"' in page
    assert tenant(web, "north").authorized_keys == ""
    assert audit_entries(web) == []


async def test_a_tenant_holds_at_most_the_bound_of_keys(web: Web) -> None:
    districts(web)
    keys = "".join(f"{public_key(str(n))}\n" for n in range(publickeys.MAX_KEYS_PER_TENANT - 1))
    with web.db.write() as conn:
        from daemon.store import tenants

        tenants.update(conn, "north", authorized_keys=keys)
    assert await web.sign_in("north-admin") == 303
    status, _ = await post(web, "keys", {"csrf_token": await token(web), "key": public_key()})
    assert status == 200  # the last one allowed
    status, page = await post(web, "keys", {"csrf_token": await token(web), "key": public_key()})
    assert status == 400
    assert f"at most {publickeys.MAX_KEYS_PER_TENANT} public keys" in page
    assert len(tenant(web, "north").authorized_keys.splitlines()) == publickeys.MAX_KEYS_PER_TENANT


async def test_grade_rules_are_checked_as_the_cli_checks_them_and_audited(web: Web) -> None:
    districts(web)
    assert await web.sign_in("north-admin") == 303
    csrf = await token(web)
    status, page = await post(
        web, "grade-rules", {"csrf_token": csrf, "grade_rules": "K5=KG\nfirst"}
    )
    assert status == 400
    assert "Grade replace rules: line 2: grade-rule wants FROM=TO, not &#39;first&#39;" in page
    assert 'id="grade_rules"' in page
    assert 'aria-invalid="true"' in page
    status, page = await post(web, "grade-rules", {"csrf_token": csrf, "grade_rules": "K5=Q9"})
    assert status == 400
    assert (
        "Grade replace rules: grade rule &#39;K5&#39; → &#39;Q9&#39;: &#39;Q9&#39; is not a CEDS"
        in page
    )
    assert tenant(web, "north").settings.grade_rules == {}
    assert audit_entries(web) == []

    form = {"csrf_token": csrf, "grade_rules": "K5=KG\n\n 1st = 01 \nK5=PK"}  # the last K5 wins
    status, page = await post(web, "grade-rules", form)  # the checkbox unticked: common off
    assert status == 200
    assert "The grade rules were saved." in page
    settings = tenant(web, "north").settings
    assert dict(settings.grade_rules) == {"K5": "PK", "1st": "01"}
    assert settings.common_grade_rules is False
    (entry,) = audit_entries(web)
    assert (entry["action"], entry["detail"]) == (
        "grade_rules", "rules: K5 → PK, 1st → 01; common rules off",
    )  # fmt: skip
    assert "K5=PK\n1st=01" in page  # the form shows what is kept
    status, page = await post(web, "grade-rules", form)
    assert "The grade rules were already so." in page
    assert len(audit_entries(web)) == 1


async def test_the_setup_page_shows_the_tenants_audit_log_newest_first_paged(web: Web) -> None:
    districts(web)
    with web.db.write() as conn:
        north = tenant(web, "north").id
        south = tenant(web, "south").id
        for n in range(SETUP_AUDIT_PAGE_SIZE + 3):
            at = START + timedelta(minutes=n)
            users.audit(conn, user_name="ops", action="emails", now=at, tenant_id=north,
                        detail=f"change-{n:02d}")  # fmt: skip
        users.audit(conn, user_name="ops", action="emails", now=START, tenant_id=south,
                    detail="south-change")  # fmt: skip
    assert await web.sign_in("north-admin") == 303
    first = await (await web.client.get("/tenants/north/setup")).text()
    shown = [
        f"change-{n:02d}" for n in range(SETUP_AUDIT_PAGE_SIZE + 3) if f"change-{n:02d}" in first
    ]
    assert shown == [f"change-{n:02d}" for n in range(3, SETUP_AUDIT_PAGE_SIZE + 3)]
    assert first.index(f"change-{SETUP_AUDIT_PAGE_SIZE + 2:02d}") < first.index("change-03")
    assert "south-change" not in first
    older = first.split("setup?audit_before=", 1)[1].split("#", 1)[0]
    second = await (await web.client.get(f"/tenants/north/setup?audit_before={older}")).text()
    assert [n for n in range(3) if f"change-{n:02d}" in second] == [0, 1, 2]
    assert "change-03" not in second
    assert "audit_before=" not in second
