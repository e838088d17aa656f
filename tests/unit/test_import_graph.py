"""Dependencies between rosterdrop's modules flow one way: no module imports back, directly or
through others, from a module that imports it (counting imports inside functions and under
TYPE_CHECKING too: a cycle hidden there is still a cycle for a reader)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "daemon"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Every simple path start → … → start (as module lists)."""
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append([*path, start])
            elif nxt not in path and len(path) < 8:
                walk(nxt, [*path, nxt])

    walk(start, [start])
    return found


def test_the_commands_import_one_way() -> None:
    graph = import_graph()
    assert "daemon.tenantcli" in graph["daemon.cli"]
    assert cycles_through(graph, "daemon.cli") == []
    assert cycles_through(graph, "daemon.tenantcli") == []
