"""The operator's pages in this process over each kind of database: a district administrator
finds none of them (404, changing nothing); tenants added (the password shown once), disabled
and enabled; users disabled and enabled; a failed email retried to the tenant's addresses; the
audit log filtered and paged; every page size at its edge; every change audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from daemon.config import Settings
from daemon.notify.messages import OutgoingEmail
from daemon.passwords import PASSWORD_LENGTH, verify_password
from daemon.store import outbox, tenants, users
from daemon.store.database import Database
from daemon.store.tables import audit_log
from daemon.web.views.operator_audit import AUDIT_PAGE_SIZE
from daemon.web.views.operator_outbox import OUTBOX_PAGE_SIZE
from daemon.web.views.operator_tenants import TENANTS_PAGE_SIZE
from daemon.web.views.operator_users import USERS_PAGE_SIZE
from tests.integration.test_web_app import START, Web, add_user, csrf_of, web_for

PAGES = ("/operator", "/operator/tenants", "/operator/users", "/operator/outbox", "/operator/audit")


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


def people(web: Web) -> None:
    add_user(web.db, "ops", None)
    add_user(web.db, "north-admin", "north")
    with web.db.write() as conn:
        tenants.update(conn, "north", emails=["registrar@north.example.org"])


def audit_rows(web: Web) -> list[dict[str, object]]:
    with web.db.read() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings()
        return [dict(row) for row in rows]


async def token(web: Web, path: str = "/operator/tenants") -> str:
    return csrf_of(await (await web.client.get(path)).text())


async def post(web: Web, path: str, data: dict[str, str]) -> tuple[int, str]:
    response = await web.client.post(path, data=data)
    return response.status, await response.text()


def failed_email(web: Web, tenant: str | None = "north", subject: str = "Import Results") -> int:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "rosterdrop@localhost"
    message.set_content("the body")
    email = OutgoingEmail("import_results", subject, (), message.as_bytes())
    with web.db.write() as conn:
        tenant_id = tenants.get(conn, tenant).id if tenant else None
        return outbox.enqueue(conn, email, tenant_id=tenant_id, import_id=None, now=START)


async def test_a_district_administrator_finds_no_operator_page(web: Web) -> None:
    people(web)
    message = failed_email(web)
    assert await web.sign_in("north-admin") == 303
    home = await (await web.client.get("/imports")).text()
    assert 'href="/operator"' not in home
    for path in PAGES:
        assert await web.status(path) == 404, path
    csrf = csrf_of(home)
    for path, form in (
        ("/operator/tenants", {"name": "mine", "emails": ""}),
        ("/operator/tenants/north/disable", {}),
        ("/operator/users/ops/disable", {}),
        (f"/operator/outbox/{message}/retry", {}),
    ):
        status, _ = await post(web, path, {"csrf_token": csrf, **form})
        assert status == 404, path
    with web.db.read() as conn:
        assert tenants.find(conn, "mine") is None
        assert not tenants.get(conn, "north").disabled
        assert not users.get(conn, "ops").disabled
        assert outbox.get(conn, message).state is outbox.OutboxState.FAILED
    assert audit_rows(web) == []


async def test_an_operator_sees_the_operator_link_and_every_page(web: Web) -> None:
    people(web)
    assert await web.sign_in("ops") == 303
    home = await (await web.client.get("/imports")).text()
    assert 'href="/operator"' in home
    for path in PAGES:
        assert await web.status(path) == 200, path


async def test_every_operator_post_without_the_csrf_token_is_refused(web: Web) -> None:
    people(web)
    assert await web.sign_in("ops") == 303
    for path in (
        "/operator/tenants",
        "/operator/tenants/north/disable",
        "/operator/users/north-admin/disable",
    ):
        status, _ = await post(web, path, {"name": "forged"})
        assert status == 403, path
    with web.db.read() as conn:
        assert tenants.find(conn, "forged") is None
        assert not tenants.get(conn, "north").disabled
    assert audit_rows(web) == []


async def test_an_operator_adds_a_tenant_and_sees_its_password_once(
    web: Web, settings: Settings
) -> None:
    people(web)
    assert await web.sign_in("ops") == 303
    form = {"csrf_token": await token(web), "name": "east", "emails": "It@East.example.org"}
    status, page = await post(web, "/operator/tenants", form)
    assert status == 200
    assert "Tenant east was added." in page
    password = page.split('id="password-value">', 1)[1].split("<", 1)[0]
    assert len(password) == PASSWORD_LENGTH
    with web.db.read() as conn:
        east = tenants.get(conn, "east")
    assert east.emails == ("it@east.example.org",)
    assert east.password_hash
    assert verify_password(east.password_hash, password)
    assert settings.paths.upload_dir("east").is_dir()
    assert password not in await (await web.client.get("/operator/tenants")).text()
    (entry,) = audit_rows(web)
    assert (entry["action"], entry["tenant_id"], entry["user_name"]) == (
        "tenant_added",
        east.id,
        "ops",
    )
    assert password not in str(entry["detail"])


@pytest.mark.parametrize(
    ("name", "emails", "said"),
    [
        ("North Side", "", "Tenant name: tenant name &#39;North Side&#39; must be 1-63 lower-case"),
        ("north", "", "Tenant name: tenant &#39;north&#39; already exists"),
        ("west", "not-mail", "Notification addresses: not an email address: not-mail"),
        ("", "", "Tenant name: tenant name &#39;&#39; must be"),
    ],
)
async def test_a_tenant_the_cli_refuses_is_refused_naming_the_field(
    web: Web, name: str, emails: str, said: str
) -> None:
    people(web)
    assert await web.sign_in("ops") == 303
    form = {"csrf_token": await token(web), "name": name, "emails": emails}
    status, page = await post(web, "/operator/tenants", form)
    assert status == 400
    assert said in page
    assert 'aria-invalid="true"' in page
    assert 'id="password-value"' not in page
    with web.db.read() as conn:
        assert [t.name for t in tenants.list_all(conn)] == ["north"]
    assert audit_rows(web) == []


async def test_an_operator_disables_and_enables_a_tenant(web: Web) -> None:
    people(web)
    assert await web.sign_in("ops") == 303
    csrf = await token(web)
    status, page = await post(web, "/operator/tenants/north/disable", {"csrf_token": csrf})
    assert status == 200
    assert "Tenant north is disabled" in page
    with web.db.read() as conn:
        assert tenants.get(conn, "north").disabled
    assert 'action="/operator/tenants/north/enable"' in page
    status, _ = await post(web, "/operator/tenants/north/enable", {"csrf_token": csrf})
    with web.db.read() as conn:
        assert not tenants.get(conn, "north").disabled
    assert [e["action"] for e in audit_rows(web)] == ["tenant_disabled", "tenant_enabled"]
    status, _ = await post(web, "/operator/tenants/nowhere/disable", {"csrf_token": csrf})
    assert status == 404


async def test_the_tenants_page_shows_the_last_import_and_the_paused_count(web: Web) -> None:
    from daemon.roster.outcome import ImportState
    from tests.integration.test_web_app import add_imports

    people(web)
    paused = add_imports(web.db, "north", ImportState.PAUSED, 2)
    (last,) = add_imports(web.db, "north", ImportState.IMPORTED, 1)
    assert await web.sign_in("ops") == 303
    page = await (await web.client.get("/operator/tenants")).text()
    row = page.split('href="/tenants/north/setup">north</a>', 1)[1].split("</tr>", 1)[0]
    assert f"#{last}</a> imported" in row
    assert '&amp;state=paused">2</a>' in row
    assert f"#{paused[0]}" not in row


async def test_tenants_and_users_are_paged_at_the_page_size(web: Web) -> None:
    people(web)
    with web.db.write() as conn:
        for n in range(TENANTS_PAGE_SIZE):
            tenants.add(conn, f"t{n:03d}", emails=[], now=START)
        for n in range(USERS_PAGE_SIZE - 1):  # with ops and north-admin: one more than a page
            users.add(conn, f"u{n:03d}", tenant_id=None, email=None, password_hash=None, now=START)
    assert await web.sign_in("ops") == 303
    first = await (await web.client.get("/operator/tenants")).text()
    assert first.count('/setup">t') == TENANTS_PAGE_SIZE - 1  # north sorts first
    assert "More tenants" in first
    after = first.split("/operator/tenants?after=", 1)[1].split('"', 1)[0]
    rest = await (await web.client.get(f"/operator/tenants?after={after}")).text()
    assert "More tenants" not in rest
    listed = {line for line in (first + rest).split() if line.startswith('href="/tenants/')}
    assert len(listed) == TENANTS_PAGE_SIZE + 1
    page = await (await web.client.get("/operator/users")).text()
    assert "More users" in page
    after = page.split("/operator/users?after=", 1)[1].split('"', 1)[0]
    last = await (await web.client.get(f"/operator/users?after={after}")).text()
    assert "More users" not in last
    assert last.count("<td>u") == 1
    assert "<td>u098</td>" in last


async def test_an_operator_disables_and_enables_a_user_but_not_itself(web: Web) -> None:
    people(web)
    assert await web.sign_in("north-admin") == 303  # a live session: its sign-in is known
    assert await web.sign_in("ops") == 303
    page = await (await web.client.get("/operator/users")).text()
    row = page.split("<td>north-admin</td>", 1)[1].split("</tr>", 1)[0]
    assert "district administrator" in row
    assert 'href="/tenants/north/setup"' in row
    assert "not known" not in row
    csrf = csrf_of(page)
    status, page = await post(web, "/operator/users/north-admin/disable", {"csrf_token": csrf})
    assert status == 200
    assert "User north-admin is disabled" in page
    with web.db.read() as conn:
        assert users.get(conn, "north-admin").disabled
        assert users.latest_signins(conn, [users.get(conn, "north-admin").id]) == {}
    status, _ = await post(web, "/operator/users/north-admin/enable", {"csrf_token": csrf})
    with web.db.read() as conn:
        assert not users.get(conn, "north-admin").disabled
    status, page = await post(web, "/operator/users/ops/disable", {"csrf_token": csrf})
    assert status == 409
    assert "You cannot disable your own account" in page
    assert [(e["action"], e["detail"]) for e in audit_rows(web)] == [
        ("user_disabled", "user north-admin"), ("user_enabled", "user north-admin"),
    ]  # fmt: skip


async def test_a_failed_email_is_listed_and_retried_to_the_tenants_addresses(web: Web) -> None:
    people(web)
    message = failed_email(web, subject="Import Results <north>")
    assert await web.sign_in("ops") == 303
    page = await (await web.client.get("/operator/outbox")).text()
    row = page.split(f'id="email-{message}"', 1)[1].split("</tr>", 1)[0]
    for shown in ("failed", "north", "nobody", "Import Results &lt;north&gt;", "no recipients"):
        assert shown in row
    web.clock.advance(timedelta(minutes=5))
    form = {"csrf_token": csrf_of(page)}
    status, page = await post(web, f"/operator/outbox/{message}/retry", form)
    assert status == 200
    assert f"Email #{message} will be sent now to registrar@north.example.org." in page
    with web.db.read() as conn:
        retried = outbox.get(conn, message)
        due = outbox.due(conn, web.clock(), 10)
    assert retried.state is outbox.OutboxState.PENDING
    assert retried.recipients == ("registrar@north.example.org",)
    assert b"To: registrar@north.example.org" in retried.message
    assert [m.id for m in due] == [message]
    (entry,) = audit_rows(web)
    assert entry["action"] == "email_retry"
    assert entry["detail"] == f"email #{message} (import_results) to registrar@north.example.org"

    with web.db.write() as conn:
        outbox.mark_sent(conn, message, web.clock())
    status, page = await post(web, f"/operator/outbox/{message}/retry", form)
    assert status == 409
    assert "was already sent" in page
    assert f'id="email-{message}"' not in page  # a sent email is not listed


async def test_the_outbox_is_filtered_by_state_and_paged(web: Web) -> None:
    people(web)
    made = [failed_email(web, subject=f"mail {n:02d}") for n in range(OUTBOX_PAGE_SIZE + 1)]
    with web.db.write() as conn:
        outbox.retry(conn, made[0], START)  # pending again
    assert await web.sign_in("ops") == 303
    first = await (await web.client.get("/operator/outbox")).text()
    assert first.count('id="email-') == OUTBOX_PAGE_SIZE
    assert f'id="email-{made[0]}"' not in first
    older = first.split("/operator/outbox?before=", 1)[1].split('"', 1)[0]
    rest = await (await web.client.get(f"/operator/outbox?before={older}")).text()
    assert rest.count('id="email-') == 1
    pending = await (await web.client.get("/operator/outbox?state=pending")).text()
    assert pending.count('id="email-') == 1
    assert f'id="email-{made[0]}"' in pending


async def test_the_audit_log_is_filtered_by_tenant_user_and_action_and_paged(web: Web) -> None:
    people(web)
    with web.db.write() as conn:
        north = tenants.get(conn, "north").id
        south = tenants.add(conn, "south", emails=[], now=START).id
        for n in range(AUDIT_PAGE_SIZE + 1):
            users.audit(conn, user_name="north-admin", action="thresholds", tenant_id=north,
                        now=START + timedelta(seconds=n), detail=f"north-{n:02d}")  # fmt: skip
        users.audit(conn, user_name="ops", action="emails", tenant_id=south, now=START,
                    detail="south-entry")  # fmt: skip
    assert await web.sign_in("ops") == 303
    first = await (await web.client.get("/operator/audit")).text()
    assert "south-entry" in first  # the newest
    assert first.count("<td>north-admin</td>") == AUDIT_PAGE_SIZE - 1
    assert "north-00" not in first
    assert "north-01" not in first
    older = first.split('href="/operator/audit?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    rest = await (await web.client.get(f"/operator/audit?{older}")).text()
    assert "north-01" in rest
    assert "north-00" in rest
    assert "Older entries" not in rest
    for query, shown, hidden in (
        ("tenant=south", "south-entry", "north-00"),
        ("user=north-admin", "north-50", "south-entry"),
        ("action=emails", "south-entry", "north-50"),
        ("tenant=nowhere", "No entries match these filters", "south-entry"),
    ):
        page = await (await web.client.get(f"/operator/audit?{query}")).text()
        assert shown in page, query
        assert hidden not in page, query
