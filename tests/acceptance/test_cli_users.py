"""`rosterdrop user …` as an operator runs it: accounts of the web Import Manager."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from daemon.passwords import verify_password
from daemon.store import users
from tests.support.site import Site


def test_an_operator_manages_the_web_accounts(make_site: Callable[..., Site]) -> None:
    site = make_site()
    site.add_tenant("acme", "admin@acme.example.org")

    added = site.cli(
        "user", "add", "registrar", "--tenant", "acme", "--email", "Reg@Acme.example.org",
        "--password-stdin", stdin="a-chosen-password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "password:" not in added.stdout  # the operator chose it: never echoed
    operator = site.cli("user", "add", "ops", "--operator")
    assert operator.returncode == 0, operator.stderr
    shown = re.search(r"password: (\S+)", operator.stdout)
    assert shown is not None
    assert "shown only now" in operator.stdout

    listed = json.loads(site.cli("user", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["tenant"], u["email"], u["disabled"]) for u in listed] == [
        ("ops", "operator", None, None, False),
        ("registrar", "district", "acme", "reg@acme.example.org", False),
    ]
    with site.db() as db, db.read() as conn:
        stored = users.get(conn, "ops").password_hash
    assert stored is not None
    assert verify_password(stored, shown.group(1))

    changed = site.cli("user", "passwd", "registrar", "--password-stdin", stdin="another-one-12\n")
    assert changed.returncode == 0, changed.stderr
    with site.db() as db, db.read() as conn:
        stored = users.get(conn, "registrar").password_hash
    assert stored is not None
    assert verify_password(stored, "another-one-12")

    assert site.cli("user", "disable", "registrar").returncode == 0
    assert json.loads(site.cli("user", "list", "--json").stdout)[1]["disabled"] is True
    assert site.cli("user", "enable", "registrar").returncode == 0
    assert json.loads(site.cli("user", "list", "--json").stdout)[1]["disabled"] is False


def test_user_mistakes_are_usage_errors(make_site: Callable[..., Site]) -> None:
    site = make_site()
    site.add_tenant("acme")
    for args, stdin, said in (
        (("user", "add", "x", "--tenant", "acme", "--operator"), None, "exactly one of"),
        (("user", "add", "x"), None, "exactly one of"),
        (("user", "add", "x", "--tenant", "nowhere"), None, "no tenant"),
        (("user", "add", "x", "--operator", "--password-stdin"), "short\n", "at least 12"),
        (("user", "add", "has space", "--operator"), None, "user name"),
        (("user", "passwd", "nobody"), None, "no user"),
        (("user", "disable", "nobody"), None, "no user"),
    ):
        result = site.cli(*args, stdin=stdin)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert said in result.stderr, (args, result.stderr)
    assert site.cli("user", "add", "x", "--operator").returncode == 0
    again = site.cli("user", "add", "x", "--operator")
    assert again.returncode == 2
    assert "already exists" in again.stderr
