"""What the Dockerfile and docker-compose.yml configure, read back for the tests, which run the
same configuration without Docker (none runs here). Line-based readers for the simple shapes
these two files use, rather than a YAML dependency."""

from __future__ import annotations

import json
import re
import shlex

from tests.support.process import REPO

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions with their continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    return joined


def dockerfile_env() -> dict[str, str]:
    """The ROSTERDROP_* values the image's ENV instructions set."""
    env: dict[str, str] = {}
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction.startswith("ENV "):
            for pair in shlex.split(instruction[4:]):
                key, _, value = pair.partition("=")
                if key.startswith("ROSTERDROP_"):
                    env[key] = value
    return env


def dockerfile_healthcheck() -> list[str]:
    """The HEALTHCHECK's command (exec form)."""
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction.startswith("HEALTHCHECK "):
            command: list[str] = json.loads(instruction.split(" CMD ", 1)[1])
            return command
    raise AssertionError("the Dockerfile has no HEALTHCHECK")


def dockerfile_exposed() -> set[int]:
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction.startswith("EXPOSE "):
            return {int(p.split("/")[0]) for p in instruction.split()[1:]}
    return set()


def compose_service(name: str) -> list[str]:
    """The lines of one service in docker-compose.yml."""
    lines = COMPOSE.read_text().splitlines()
    start = lines.index(f"  {name}:") + 1
    end = start
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith("    ")):
        end += 1
    return lines[start:end]


def compose_mapping(name: str, key: str) -> dict[str, str]:
    """A `key:` mapping (such as environment) of a service, as strings."""
    lines = compose_service(name)
    start = lines.index(f"    {key}:") + 1
    found: dict[str, str] = {}
    for line in lines[start:]:
        if not line.startswith("      "):
            break
        item, _, value = line.strip().partition(":")
        found[item] = value.strip().strip('"')
    return found


def compose_list(name: str, key: str) -> list[str]:
    lines = compose_service(name)
    start = lines.index(f"    {key}:") + 1
    items = []
    for line in lines[start:]:
        match = re.match(r"\s{6}- (.*)$", line)
        if match is None:
            break
        items.append(match[1].strip().strip('"'))
    return items
