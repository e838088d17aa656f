"""What the Dockerfile and docker-compose.yml configure, read back for the tests, which run the
same configuration without Docker (none runs here). Line-based readers for the simple shapes
these two files use, rather than a YAML dependency."""

from __future__ import annotations

import json
import re
import shlex

import sqlalchemy as sa

from daemon.config import CONFIG_ENV, keys
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
        if line.lstrip().startswith("#"):
            continue
        item, _, value = line.strip().partition(":")
        found[item] = value.strip().strip('"')
    return found


def compose_list(name: str, key: str) -> list[str]:
    lines = compose_service(name)
    start = lines.index(f"    {key}:") + 1
    items = []
    for line in lines[start:]:
        if line.startswith("      #"):
            continue
        match = re.match(r"\s{6}- (.*)$", line)
        if match is None:
            break
        items.append(match[1].strip().strip('"'))
    return items


def compose_healthcheck(name: str) -> list[str]:
    """A service's healthcheck command (its `test:`, exec form, without the CMD)."""
    for line in compose_service(name):
        if line.strip().startswith("test:"):
            test: list[str] = json.loads(line.split(":", 1)[1])
            assert test[0] == "CMD", "the exec form"
            return test[1:]
    raise AssertionError(f"the {name} service has no healthcheck")


def dockerfile_command() -> list[str]:
    """ENTRYPOINT followed by CMD (exec forms): what the container runs."""
    found: dict[str, list[str]] = {}
    for instruction in _instructions(DOCKERFILE.read_text()):
        keyword, _, rest = instruction.partition(" ")
        if keyword in ("ENTRYPOINT", "CMD"):
            found[keyword] = json.loads(rest)
    return found.get("ENTRYPOINT", []) + found.get("CMD", [])


def compose_here(postgres_url: str, relay_port: int) -> dict[str, str]:
    """The compose file's rosterdrop configuration (Dockerfile ENV, then the service's
    environment) with this machine's hosts and ports: the database's and the relay's, and
    ports of the system's choosing for SFTP and HTTP. The data directory is the caller's."""
    env = {**dockerfile_env(), **compose_mapping("rosterdrop", "environment")}
    assert set(env) <= {k.env for k in keys()} | {CONFIG_ENV}, "each variable names a setting"
    volume = compose_list("rosterdrop", "volumes")[0]
    assert volume.endswith(":" + env.pop("ROSTERDROP_DATA_DIR")), "the data dir is the volume"
    url = sa.make_url(env["ROSTERDROP_DATABASE_URL"])
    local = sa.make_url(postgres_url)
    assert (url.host, url.drivername) == ("postgres", local.drivername)
    url = url.set(host=local.host, port=local.port, database=local.database)
    assert (env["ROSTERDROP_SMTP_HOST"], env["ROSTERDROP_SMTP_PORT"]) == ("mailpit", "1025")
    return env | {
        "ROSTERDROP_DATABASE_URL": url.render_as_string(hide_password=False),
        "ROSTERDROP_SMTP_HOST": "127.0.0.1",
        "ROSTERDROP_SMTP_PORT": str(relay_port),
        "ROSTERDROP_SFTP_HOST": "127.0.0.1",
        "ROSTERDROP_SFTP_PORT": "0",
        "ROSTERDROP_HTTP_HOST": "127.0.0.1",
        "ROSTERDROP_HTTP_PORT": "0",
        "ROSTERDROP_WEB_HOST": "127.0.0.1",
        "ROSTERDROP_WEB_PORT": "0",
    }
