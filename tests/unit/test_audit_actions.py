"""The audit actions are one list (daemon/store/audit_actions.py): every action the code writes
is in it, every entry of it is written somewhere, and docs/web.md and the operator's audit
page show all of them. Read from the source, so that a new `audit(...)` call cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader

from daemon.store import users
from daemon.store.audit_actions import AUDIT_ACTIONS

ROOT = Path(__file__).parents[2]
DAEMON = ROOT / "daemon"
_LIST = DAEMON / "store" / "audit_actions.py"


def _words(node: ast.AST | None) -> list[str]:
    """The strings an expression can be: a literal, either side of `a if c else b`, a tuple."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _words(node.body) + _words(node.orelse)
    if isinstance(node, ast.Tuple):
        return [w for element in node.elts for w in _words(element)]
    return []


def _name(node: ast.AST) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _is_audit_call(call: ast.Call) -> bool:
    """A call of an audit function, directly or off the event loop (`to_thread(_audit, …)`)."""
    name = _name(call.func)
    if name == "to_thread" and call.args:
        name = _name(call.args[0])
    return "audit" in name or name == "record_decision"


def written_actions() -> dict[str, list[str]]:
    """Every action a call can write, with where: `action="…"`, a literal handed to an audit
    helper, or a literal assigned to `action` (also `action, detail = "…", …`)."""
    found: dict[str, list[str]] = {}
    for path in sorted(DAEMON.rglob("*.py")):
        if path == _LIST:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            words: list[str] = []
            if isinstance(node, ast.Call) and _is_audit_call(node):
                for keyword in node.keywords:
                    if keyword.arg == "action":
                        words += _words(keyword.value)
                # Positional helpers (audit_change, _audit, audit_operator) take the action
                # as their one argument that is a bare word.
                words += [w for arg in node.args for w in _words(arg) if w.isidentifier()]
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "action":
                        words += _words(node.value)
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for element, value in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(element, ast.Name) and element.id == "action":
                                words += _words(value)
            for word in words:
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                found.setdefault(word, []).append(where)
    return found


def test_every_action_the_code_writes_is_in_the_list() -> None:
    written = written_actions()
    assert "files_downloaded" in written  # the scan sees keyword calls …
    assert "public_key_added" in written  # … positional helpers …
    assert "tenant_disabled" in written  # … and assignments, one name …
    assert "token_revoked" in written  # … or a tuple
    unlisted = {word: where for word, where in written.items() if word not in AUDIT_ACTIONS}
    assert unlisted == {}


def test_every_listed_action_is_written_somewhere() -> None:
    written = set(written_actions())
    # The web's approve and reject are the route's own word ({action:approve|reject}), handed
    # on; the CLI's `imports approve`/`reject` write them literally.
    routes = (DAEMON / "web" / "app.py").read_text(encoding="utf-8")
    assert "{action:approve|reject}" in routes
    assert set(AUDIT_ACTIONS) - written == set()


def test_an_unlisted_action_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="'approved' is not in AUDIT_ACTIONS"):
        users.audit(None, user_name="x", action="approved", now=None)  # type: ignore[arg-type]


def test_the_docs_and_the_operators_audit_page_list_every_action() -> None:
    docs = (ROOT / "docs" / "web.md").read_text(encoding="utf-8")
    assert [a for a in AUDIT_ACTIONS if f"`{a}`" not in docs] == []
    templates = DAEMON / "web" / "templates"
    env = Environment(loader=FileSystemLoader(templates), autoescape=True)
    env.filters["when"] = str
    html = env.get_template("operator_audit.html.j2").blocks["main"]
    values = {
        "filters": {"tenant": "", "user": "", "action": ""}, "entries": [], "names": {},
        "older": None, "actions": AUDIT_ACTIONS,
    }  # fmt: skip
    context = env.get_template("operator_audit.html.j2").new_context(values)
    page = "".join(html(context))
    assert [a for a in AUDIT_ACTIONS if f'<option value="{a}">' not in page] == []
