"""Fixtures for the `serve` tests: the whole daemon (Service) in this process, on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sftp_fixtures import PASSWORD

from daemon.config import Settings
from daemon.service import Service
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.roster import active_roster
from daemon.store.tenants import Tenant
from tests.support import drop

T = TypeVar("T")
STARTUP_SECONDS = 20.0


@dataclass
class Served:
    """A running daemon, its database, and ways to feed it and look at what it did."""

    service: Service
    db: Database
    settings: Settings
    password_hash: str

    @property
    def port(self) -> int:
        return self.service.sftp.port

    def add_tenant(self, name: str) -> str:
        return add_tenant(self.db, self.settings, name, self.password_hash).name

    def upload(self, tenant: str, files: dict[str, bytes]) -> float:
        return drop.upload_set(self.port, tenant, PASSWORD, files)

    def roster(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        with self.db.read() as conn:
            return active_roster(conn, tenants.get(conn, tenant).id)

    def upload_dir(self, tenant: str) -> Path:
        return self.settings.paths.upload_dir(tenant)

    async def wait(self, check: Callable[[], T | None], what: str, seconds: float = 30) -> T:
        return await asyncio.to_thread(drop.poll, check, seconds, what)

    async def imports_ended(
        self, tenant: str, count: int = 1, seconds: float = 30
    ) -> list[dict[str, Any]]:
        return await self.wait(
            lambda: drop.ended_imports(self.db, tenant, count),
            f"{count} import(s) of {tenant} to end",
            seconds,
        )


def add_tenant(db: Database, settings: Settings, name: str, password_hash: str) -> Tenant:
    """A tenant that logs in with PASSWORD, and its upload folder."""
    with db.write() as conn:
        tenant = tenants.add(
            conn, name, emails=[f"admin@{name}.example.org"], now=datetime.now(UTC),
            password_hash=password_hash,
        )  # fmt: skip
    settings.paths.upload_dir(name).mkdir(parents=True, exist_ok=True)
    return tenant


@contextlib.asynccontextmanager
async def serving(settings: Settings, db: Database, password_hash: str) -> AsyncIterator[Served]:
    """Service.serve() in a task until the block ends; then a graceful stop, which must work."""
    service = Service(settings, db)
    task = asyncio.create_task(service.serve(), name="serve")
    ready = asyncio.create_task(service.ready.wait())
    await asyncio.wait([task, ready], timeout=STARTUP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    if not service.ready.is_set():
        ready.cancel()
        await task  # raises what stopped the start
        raise AssertionError("the service ended before it was ready")
    try:
        yield Served(service, db, settings, password_hash)
    finally:
        service.stop()
        assert await asyncio.wait_for(task, STARTUP_SECONDS) == 0


@pytest.fixture
def serve_settings_with(
    make_settings: Callable[..., Settings], database_url: str, sftp_host_keys: Path
) -> Callable[..., Settings]:
    """Test settings changed by ROSTERDROP_* variables, with the session's host keys (RSA keys
    take long to generate)."""

    def make(**env: str) -> Settings:
        settings: Settings = make_settings(database_url, **env)
        shutil.copytree(sftp_host_keys, settings.paths.host_keys, dirs_exist_ok=True)
        return settings

    return make


@pytest.fixture
def serve_settings(serve_settings_with: Callable[..., Settings]) -> Settings:
    return serve_settings_with()


@pytest.fixture
async def served(
    serve_settings: Settings, db: Database, sftp_password_hash: str
) -> AsyncIterator[Served]:
    async with serving(serve_settings, db, sftp_password_hash) as env:
        yield env
