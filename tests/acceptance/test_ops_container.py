"""The Dockerfile and docker-compose.yml agree with the daemon and with each other (read, since
no Docker engine runs here; test_ops_email runs the same configuration for real)."""

from __future__ import annotations

import json

from tests.support.container import (
    compose_list,
    compose_mapping,
    dockerfile_env,
    dockerfile_exposed,
)
from tests.support.process import cli


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
    assert dockerfile_exposed() == {sftp, http}
    assert (env["ROSTERDROP_SFTP_HOST"], env["ROSTERDROP_HTTP_HOST"]) == ("0.0.0.0", "0.0.0.0")
    published = compose_list("rosterdrop", "ports")
    assert f"{sftp}:{sftp}" in published
    assert f"127.0.0.1:{http}:{http}" in published, "metrics stay on the host's loopback"
    volume = compose_list("rosterdrop", "volumes")
    assert volume == [f"rosterdrop-data:{env['ROSTERDROP_DATA_DIR']}"]
