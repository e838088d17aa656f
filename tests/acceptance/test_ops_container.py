"""The Dockerfile and docker-compose.yml agree with the daemon and with each other, and the
compose configuration works as written. No Docker engine runs here: the environment is built
from the two files alone (the image's ENV, then the service's environment; only the hosts,
ports and data directory swapped for this machine's), the command is the image's, and both
health checks (the image's HEALTHCHECK, the compose service's) run as the files say."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.container import (
    compose_healthcheck,
    compose_here,
    compose_list,
    compose_mapping,
    dockerfile_command,
    dockerfile_env,
    dockerfile_exposed,
    dockerfile_healthcheck,
)
from tests.support.drop import District
from tests.support.process import Relay, cli, environment
from tests.support.site import Site, upload

ADMIN = "admin@acme.example.org"


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


def test_config_check_accepts_the_container_configuration() -> None:
    env = {**dockerfile_env(), **compose_mapping("rosterdrop", "environment")}
    result = cli(env, "config", "check")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "every variable names a setting"
    shown = json.loads(result.stdout)
    assert shown["data_dir"] == "/var/lib/rosterdrop"
    assert (shown["smtp"]["host"], shown["smtp"]["port"], shown["smtp"]["tls"]) == (
        "mailpit", 1025, "none",
    )  # fmt: skip
    assert shown["database_url"] == (
        "postgresql+psycopg://rosterdrop:********@postgres:5432/rosterdrop"
    )
    assert shown["log"]["format"] == "json"


def test_the_image_exposes_and_compose_publishes_the_ports_it_listens_on() -> None:
    env = dockerfile_env()
    sftp, http = int(env["ROSTERDROP_SFTP_PORT"]), int(env["ROSTERDROP_HTTP_PORT"])
    web = int(env["ROSTERDROP_WEB_PORT"])
    assert dockerfile_exposed() == {sftp, http, web}
    hosts = (env["ROSTERDROP_SFTP_HOST"], env["ROSTERDROP_HTTP_HOST"], env["ROSTERDROP_WEB_HOST"])
    assert hosts == ("0.0.0.0", "0.0.0.0", "0.0.0.0")
    published = compose_list("rosterdrop", "ports")
    assert f"{sftp}:{sftp}" in published
    assert f"127.0.0.1:{http}:{http}" in published, "metrics stay on the host's loopback"
    assert f"127.0.0.1:{web}:{web}" in published, "the web pages too, for a TLS proxy"
    volume = compose_list("rosterdrop", "volumes")
    assert volume == [f"rosterdrop-data:{env['ROSTERDROP_DATA_DIR']}"]


def _healthy(command: list[str], env: dict[str, str]) -> bool:
    return subprocess.run(command, env=environment(env), timeout=10, check=False).returncode == 0


@pytest.mark.slow
@pytest.mark.postgres
def test_the_compose_configuration_as_written_is_healthy_and_imports(
    tmp_path: Path, host_keys: Path, postgres_url: str, relay: Relay
) -> None:
    assert dockerfile_command() == ["rosterdrop", "serve"]  # what Daemon runs (python -m daemon)
    env = compose_here(postgres_url, relay.port)
    site = Site.create(tmp_path, host_keys, env, quick=False)  # the files' timings, not QUICK
    try:
        site.add_tenant("acme", ADMIN)
        with site.daemon() as daemon:
            daemon.ready()
            # The container's environment, its HTTP port the one this daemon listens on.
            here = {**site.env, "ROSTERDROP_HTTP_PORT": str(daemon.http_port)}
            http = dockerfile_env()["ROSTERDROP_HTTP_PORT"]
            compose_check = compose_healthcheck("rosterdrop")
            assert f"127.0.0.1:{http}/readyz" in " ".join(compose_check)
            compose_check = [a.replace(f":{http}/", f":{daemon.http_port}/") for a in compose_check]
            assert _healthy(dockerfile_healthcheck(), here), "the image's HEALTHCHECK"
            assert _healthy(compose_check, here), "the compose service's healthcheck"

            files = District("acme").files()
            closed = time.time()
            upload(daemon.sftp_port, "acme", files)
            # The default settle time (30 s): the compose file keeps it.
            results = relay.wait_for("Import Results: acme import #1", seconds=90)
            assert results["Subject"] == "Import Results: acme import #1 — imported"
            assert results["From"] == env["ROSTERDROP_SMTP_FROM"]
            [row] = site.imports("acme")
            assert row["received_at"].timestamp() - closed >= 30

            assert daemon.stop() == 0
        assert not _healthy(dockerfile_healthcheck(), here), "a stopped daemon is unhealthy"
        assert not _healthy(compose_check, here)
    finally:
        site.close()
