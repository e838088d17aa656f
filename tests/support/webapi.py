"""A signed-in client of the Import Manager's JSON API (requests, as automation uses it), and
the districts and paused imports the API tests and the `rosterdrop web` tests decide on."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from daemon.clever.files import find_files
from daemon.passwords import hash_password
from daemon.pipeline import Pipeline
from daemon.store import tenants, users
from tests.support import clever
from tests.support.site import Site

WEB_PASSWORD = "a-district-password"
_names = itertools.count(1)


def add_admin(site: Site, tenant: str, *, operator: bool = False) -> str:
    """A web user: the tenant's administrator (or an operator); returns its name."""
    name = f"{tenant}-{'ops' if operator else 'admin'}"
    with site.db() as db, db.write() as conn:
        users.add(
            conn, name, tenant_id=None if operator else tenants.get(conn, tenant).id,
            email=None, password_hash=hash_password(WEB_PASSWORD), now=datetime.now(UTC),
        )  # fmt: skip
    return name


def run_import(site: Site, tenant: str, files: dict[str, list[list[str]]]) -> int:
    """An upload imported as `rosterdrop import` does it (in this process)."""
    folder = clever.write_upload(site.root / f"upload-{tenant}-{next(_names)}", files)
    settings = site.settings
    with site.db() as db:
        pipeline = Pipeline(db, settings.paths, settings.smtp)
        with db.read() as conn:
            owner = tenants.get(conn, tenant)
        import_id = pipeline.receive(owner, find_files(folder), source="cli", move=False)
        pipeline.run(import_id)
    return import_id


def paused_import(site: Site, tenant: str) -> int:
    """After a first import: one that drops S2 and adds S3, with a row error (it pauses)."""
    files = clever.minimal_files()
    run_import(site, tenant, files)
    files["students.csv"] = [
        ["SCH1", "S1", "Ann", "Lee", "ann@students.org", "ann", "03"],
        ["SCH1", "S3", "Cy", "Ng", "", "cy", "05"],
        ["NOSUCH", "S4", "Eve", "Evil", "", "eve", "05"],
    ]
    files["enrollments.csv"] = [["SCH1", "SEC1", "S1"]]
    import_id = run_import(site, tenant, files)
    assert state_of(site, import_id) == "paused"
    return import_id


def state_of(site: Site, import_id: int) -> str:
    return next(str(r["state"]) for r in site.imports() if r["id"] == import_id)


@dataclass
class SignedIn:
    """A browser-less session: the session cookie, and the CSRF token for its POSTs."""

    base_url: str
    http: requests.Session
    csrf_token: str

    @property
    def headers(self) -> dict[str, str]:
        cookie = self.http.cookies.get("rosterdrop_session")
        return {"Cookie": f"rosterdrop_session={cookie}", "X-CSRF-Token": self.csrf_token}

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base_url + path, timeout=30)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        headers = {"X-CSRF-Token": self.csrf_token}
        return self.http.post(self.base_url + path, headers=headers, timeout=120, **kwargs)  # type: ignore[arg-type]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(
    base_url: str, username: str, password: str = WEB_PASSWORD, *, verify: bool | str = True
) -> SignedIn:
    """Sign in through the form, as a browser does; fails unless it worked."""
    http = requests.Session()
    http.verify = verify
    form = http.get(f"{base_url}/signin", timeout=30)
    form.raise_for_status()
    answer = http.post(
        f"{base_url}/signin",
        data={"csrf_token": _csrf(form.text), "username": username, "password": password},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.url.endswith("/imports"), answer.url
    return SignedIn(base_url, http, _csrf(answer.text))
