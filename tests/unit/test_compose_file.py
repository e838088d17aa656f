"""docker-compose.yml is YAML that Compose reads as meant (no Docker engine runs here): a real
YAML parser agrees with the line-based readers the container tests use, and the Import
Manager is published on the host's loopback with the address emails link to."""

from __future__ import annotations

import yaml

from tests.support.container import COMPOSE, compose_list, compose_mapping, dockerfile_env

KNOWN_SERVICE_KEYS = {
    "build", "image", "init", "restart", "depends_on", "environment", "ports", "volumes",
    "stop_grace_period", "healthcheck",
}  # fmt: skip


def test_the_compose_file_parses_and_says_what_the_tests_read() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert set(compose) == {"name", "services", "volumes"}
    services = compose["services"]
    assert set(services) == {"rosterdrop", "postgres", "mailpit"}
    for name, service in services.items():
        assert set(service) <= KNOWN_SERVICE_KEYS, name
    rosterdrop = services["rosterdrop"]
    environment = {k: str(v) for k, v in rosterdrop["environment"].items()}
    assert environment == compose_mapping("rosterdrop", "environment")
    assert rosterdrop["ports"] == compose_list("rosterdrop", "ports")
    assert set(rosterdrop["depends_on"]) == {"postgres", "mailpit"}
    assert all(v["condition"] == "service_healthy" for v in rosterdrop["depends_on"].values())
    assert set(compose["volumes"]) == {"rosterdrop-data", "postgres-data"}


def test_the_import_manager_is_published_on_loopback_where_the_emails_point() -> None:
    web = dockerfile_env()["ROSTERDROP_WEB_PORT"]
    rosterdrop = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["rosterdrop"]
    assert f"127.0.0.1:{web}:{web}" in rosterdrop["ports"]
    assert rosterdrop["environment"]["ROSTERDROP_WEB_PUBLIC_URL"] == f"http://localhost:{web}"
