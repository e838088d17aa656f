"""Fixtures and helpers for the SFTP server tests: a real server on port 0, real client peers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest
from argon2 import PasswordHasher

from daemon.config import SftpSettings
from daemon.metrics import REGISTRY
from daemon.sftp import Account, SftpServer, UploadEvent, load_or_create_host_keys

TENANT = "district1"
PASSWORD = "correct-horse-battery"
SSH_OPTIONS = (
    "-F", "/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "IdentitiesOnly=yes",
    "-o", "LogLevel=ERROR",
)  # fmt: skip

# Small limits and timeouts so that every behaviour shows up within a test's time.
TEST_SETTINGS = SftpSettings(
    host="127.0.0.1",
    port=0,
    max_file_bytes=4 << 20,
    tenant_quota_bytes=16 << 20,
    max_sessions_per_tenant=4,
    login_timeout=5.0,
    idle_timeout=30.0,
    max_auth_failures=100,
    auth_failure_window=60.0,
    ban_seconds=60.0,
)


@dataclass(frozen=True)
class ClientKey:
    private: Path  # OpenSSH format, mode 0600
    public: str  # one authorized_keys line


@dataclass
class Directory:
    """An AccountDirectory over a dict that tests may change while the server runs."""

    accounts: dict[str, Account] = field(default_factory=dict)
    down: bool = False  # the database behind it is unreachable

    def lookup(self, username: str) -> Account | None:
        if self.down:
            raise ConnectionError("account database unreachable")
        return self.accounts.get(username)

    lifts: list[str] = field(default_factory=list)  # ban lifts an operator asked for

    def lifts_after(self, cursor: int | None) -> tuple[int, list[str]]:
        if cursor is None:
            return len(self.lifts), []
        return len(self.lifts), self.lifts[cursor:]


@dataclass
class SftpEnv:
    server: SftpServer
    data: Path
    directory: Directory
    events: list[UploadEvent]
    password_hash: str

    @property
    def port(self) -> int:
        return self.server.port

    def root(self, tenant: str = TENANT) -> Path:
        return self.data / "tenants" / tenant

    def upload_dir(self, tenant: str = TENANT) -> Path:
        return self.root(tenant) / "upload"

    def add_tenant(self, name: str, **changes: Any) -> Account:
        account = Account(name, self.root(name), self.password_hash, "", False)
        account = dataclasses.replace(account, **changes)
        self.directory.accounts[name] = account
        return account

    def disable(self, name: str) -> None:
        account = self.directory.accounts[name]
        self.directory.accounts[name] = dataclasses.replace(account, disabled=True)

    def kinds(self, name: str | None = None) -> list[str]:
        return [e.kind for e in self.events if name is None or e.path.name == name]

    def disk(self, tenant: str = TENANT) -> dict[str, bytes]:
        """Every file in the tenant's upload folder (hidden partial uploads included)."""
        folder = self.upload_dir(tenant)
        if not folder.exists():
            return {}
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 5.0) -> None:
        """Poll state that client threads and the server change, until it holds."""
        async with asyncio.timeout(seconds):
            while not predicate():  # noqa: ASYNC110 - no event to wait on: any state will do
                await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def sftp_host_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Host keys generated once per test run: RSA-3072 takes a while to make."""
    directory = tmp_path_factory.mktemp("hostkeys")
    load_or_create_host_keys(directory)
    return directory


@pytest.fixture(scope="session")
def sftp_password_hash() -> str:
    """A real argon2id hash of PASSWORD, made cheap to verify so that logins stay fast here."""
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)


@pytest.fixture(scope="session")
def sftp_client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="test@rosterdrop")
    path = tmp_path_factory.mktemp("clientkey") / "id_ed25519"
    key.write_private_key(path)
    path.chmod(0o600)
    return ClientKey(path, key.export_public_key().decode().strip())


@contextlib.asynccontextmanager
async def running_server(
    data: Path, host_keys: Path, password_hash: str, **settings: Any
) -> AsyncIterator[SftpEnv]:
    """A started SftpServer with one tenant (TENANT/PASSWORD), closed on the way out."""
    shutil.copytree(host_keys, data / "hostkeys", dirs_exist_ok=True)
    directory = Directory()
    events: list[UploadEvent] = []
    server = SftpServer(
        dataclasses.replace(TEST_SETTINGS, **settings),
        data / "hostkeys",
        directory,
        events.append,
        holdings=lambda name: (data / "spool" / name, data / "archive" / name),  # as the Service
    )
    env = SftpEnv(server, data, directory, events, password_hash)
    env.add_tenant(TENANT)
    await server.start()
    try:
        yield env
    finally:
        await server.close(timeout=1.0)


ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[SftpEnv]]


@pytest.fixture
def start_sftp(tmp_path: Path, sftp_host_keys: Path, sftp_password_hash: str) -> ServerFactory:
    """running_server() for this test, given only the settings it changes."""
    return functools.partial(running_server, tmp_path, sftp_host_keys, sftp_password_hash)


@pytest.fixture
async def sftp_env(
    tmp_path: Path, sftp_host_keys: Path, sftp_password_hash: str
) -> AsyncIterator[SftpEnv]:
    async with running_server(tmp_path, sftp_host_keys, sftp_password_hash) as env:
        yield env


def connect(
    port: int,
    username: str = TENANT,
    password: str | None = PASSWORD,
    key: paramiko.PKey | None = None,
    source: str = "127.0.0.1",
) -> paramiko.Transport:
    """A logged-in paramiko transport (blocking: call it in a thread)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username=username, password=password, pkey=key)
    except BaseException:
        transport.close()
        raise
    return transport


async def login(port: int, **login: Any) -> None:
    """Log in and out again; raises what the client saw when the login is refused."""
    transport = await asyncio.to_thread(connect, port, **login)
    transport.close()


@contextlib.contextmanager
def sftp_client(port: int, **login: Any) -> Iterator[paramiko.SFTPClient]:
    """A paramiko SFTP client, closed afterwards (blocking: use it in a thread)."""
    transport = connect(port, **login)
    try:
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        with client:
            yield client
    finally:
        transport.close()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def files_outside(top: Path, root: Path) -> set[str]:
    """Every path under top that is not inside root: what a jail escape would have changed."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path != root and root not in path.parents:
                found.add(str(path.relative_to(top)))
    return found
