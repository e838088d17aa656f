"""What one tenant can make the server hold: open handles across its sessions, disk by allocated
blocks wherever its files are (upload folder, spool, archive), files, sets an hour; and the SFTP
requests the server does not offer (copy-data), or bounds (reads)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import paramiko
import pytest
from asyncssh.constants import FXP_READ
from asyncssh.packet import String, UInt32, UInt64
from sftp_fixtures import PASSWORD, TENANT, ServerFactory, SftpEnv, connect, sftp_client

from daemon.folders import MANIFEST
from daemon.sftp.tenantfs import MAX_READ_BYTES


@contextlib.asynccontextmanager
async def asyncssh_sftp(port: int) -> AsyncIterator[asyncssh.SFTPClient]:
    async with (
        asyncssh.connect(
            "127.0.0.1",
            port,
            username=TENANT,
            password=PASSWORD,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
        ) as conn,  # fmt: skip
        conn.start_sftp_client() as sftp,
    ):
        yield sftp


def refused(sftp: paramiko.SFTPClient, name: str, data: bytes = b"") -> str:
    with pytest.raises(OSError) as caught, sftp.open(name, "wb") as handle:  # noqa: PT011
        handle.write(data)
    return str(caught.value)


def import_folder(env: SftpEnv, where: str, number: int, size: int, age: float = 0.0) -> Path:
    """An import's folder as the pipeline leaves it in the spool or the archive."""
    folder = env.data / where / TENANT / str(number)
    folder.mkdir(parents=True)
    (folder / "students.csv").write_bytes(b"s" * size)
    manifest = folder / MANIFEST
    manifest.write_text("{}")
    then = time.time() - age
    os.utime(manifest, (then, then))
    return folder


async def test_open_handles_are_capped_per_tenant_across_its_sessions(
    start_sftp: ServerFactory,
) -> None:
    async with start_sftp(max_open_files_per_tenant=6) as env:
        env.upload_dir().mkdir(parents=True)
        (env.upload_dir() / "schools.csv").write_bytes(b"school_id,school_name\n")

        def hold() -> str:
            with sftp_client(env.port) as first, sftp_client(env.port) as second:
                handles = [s.open("schools.csv", "rb") for s in (first, second) * 3]
                with pytest.raises(OSError, match="too many open files for this account"):
                    second.open("schools.csv", "rb")
                handles.pop().close()
                handles.append(first.open("schools.csv", "rb"))  # one freed: one more
                with pytest.raises(OSError, match=r"at most 6"):
                    first.open("students.csv", "wb")
                for handle in handles:
                    handle.close()
                return first.open("schools.csv", "rb").read().decode()

        assert await asyncio.to_thread(hold) == "school_id,school_name\n"


async def test_copy_data_and_other_unadvertised_extensions_are_refused(
    sftp_env: SftpEnv,
) -> None:
    sftp_env.upload_dir().mkdir(parents=True)
    (sftp_env.upload_dir() / "big.csv").write_bytes(b"x" * (1 << 20))
    async with asyncssh_sftp(sftp_env.port) as sftp:
        handler = sftp._handler  # the raw protocol: a hostile client sends what it likes
        src = await handler.open(b"/upload/big.csv", os.O_RDONLY, asyncssh.SFTPAttrs())
        dst = await handler.open(
            b"/upload/copy.csv", 0x1A, asyncssh.SFTPAttrs()
        )  # write|creat|trunc
        copy = (String(src), UInt64(0), UInt64(0), String(dst), UInt64(0))
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await handler._make_request(b"copy-data", *copy)
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await handler._make_request(b"ranges@asyncssh.com", String(src), UInt64(0), UInt64(0))
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await handler._make_request(
                b"hardlink@openssh.com", String(b"/upload/big.csv"), String(b"/upload/l.csv")
            )
        # A read asking for far more than the server answers gets at most MAX_READ_BYTES.
        data, _ = await handler._make_request(FXP_READ, String(src), UInt64(0), UInt32(4 << 20))
        assert len(data) == MAX_READ_BYTES
        await handler.close(src)
        await handler.close(dst)
    assert (sftp_env.upload_dir() / "copy.csv").read_bytes() == b""


async def test_statvfs_shows_the_tenants_quota_and_what_is_left_of_it(
    start_sftp: ServerFactory,
) -> None:
    async with start_sftp(tenant_quota_bytes=8 << 20, max_files_per_tenant=20) as env:
        env.upload_dir().mkdir(parents=True)
        (env.upload_dir() / "students.csv").write_bytes(b"s" * (1 << 20))
        async with asyncssh_sftp(env.port) as sftp:
            vfs = await sftp.statvfs("/upload")
    assert vfs.frsize * vfs.blocks == 8 << 20
    assert vfs.frsize * vfs.bavail == (8 << 20) - (1 << 20)
    assert (vfs.files, vfs.ffree) == (20, 19)


async def test_the_quota_counts_the_spool_and_the_archive_by_allocated_blocks(
    start_sftp: ServerFactory,
) -> None:
    async with start_sftp(tenant_quota_bytes=4 << 20, max_file_bytes=4 << 20) as env:
        import_folder(env, "archive", 1, 3 << 20, age=7200)
        spooled = import_folder(env, "spool", 2, 1 << 20, age=7200)
        sparse = env.data / "archive" / TENANT / "1" / "sparse.csv"
        with sparse.open("wb") as handle:  # 15 GiB by its size, nothing by its blocks
            handle.truncate(15 << 30)

        def upload() -> tuple[str, str]:
            with sftp_client(env.port) as sftp:
                full = refused(sftp, "/upload/teachers.csv")  # 4 MiB and two manifests held
                shutil.rmtree(spooled)  # the import ended: 3 MiB and a manifest left
                sftp.putfo(_bytes(512 << 10), "/upload/schools.csv")
                over = refused(sftp, "/upload/students.csv", b"s" * (1 << 20))
                return full, over

        full, over = await asyncio.to_thread(upload)
    assert "your folder is over its storage quota (archived uploads count)" in full
    assert "your folder is over its storage quota" in over
    assert sorted(p.name for p in env.upload_dir().iterdir()) == ["schools.csv"]


async def test_empty_files_count_toward_the_file_limit(start_sftp: ServerFactory) -> None:
    async with start_sftp(max_files_per_tenant=3) as env:

        def upload() -> str:
            with sftp_client(env.port) as sftp:
                for name in ("a.csv", "b.csv", "c.csv"):
                    sftp.putfo(_bytes(0), f"/upload/{name}")
                message = refused(sftp, "/upload/d.csv")
                sftp.putfo(_bytes(10), "/upload/c.csv")  # replacing a file adds none
                return message

        message = await asyncio.to_thread(upload)
    assert "too many files in your folder (at most 3)" in message
    assert sorted(p.name for p in env.upload_dir().iterdir()) == ["a.csv", "b.csv", "c.csv"]


async def test_sets_handed_in_within_the_hour_are_bounded(start_sftp: ServerFactory) -> None:
    async with start_sftp(max_sets_per_hour=2) as env:
        import_folder(env, "archive", 1, 100, age=3700)  # over an hour ago: not counted
        import_folder(env, "archive", 2, 100, age=1800)

        def upload() -> None:
            with sftp_client(env.port) as sftp:
                sftp.putfo(_bytes(10), "/upload/schools.csv")

        await asyncio.to_thread(upload)  # one set this hour: a second one may come
        import_folder(env, "spool", 3, 100)
        with pytest.raises(
            OSError, match=r"too many sets handed in within the last hour \(2, at most 2\)"
        ):
            await asyncio.to_thread(upload)


def _bytes(size: int) -> io.BytesIO:
    return io.BytesIO(b"r" * size)


async def test_only_connections_not_logged_in_count_toward_the_per_source_bound(
    start_sftp: ServerFactory,
) -> None:
    async with start_sftp(max_startups_per_source=2, max_sessions_per_tenant=4) as env:

        def sessions() -> None:
            # Three logged-in sessions at once from one address: past the bound of 2, and fine.
            with sftp_client(env.port), sftp_client(env.port), sftp_client(env.port) as third:
                third.listdir("/upload")

        await asyncio.to_thread(sessions)
        silent = [socket.create_connection(("127.0.0.1", env.port)) for _ in range(2)]
        try:
            with pytest.raises((OSError, EOFError, paramiko.SSHException)):
                await asyncio.to_thread(sessions)  # its first login is the third one pending
            assert await asyncio.to_thread(_login_from, env.port, "127.0.0.3")  # another address
        finally:
            for sock in silent:
                sock.close()
        # The silent ones gone (the server notices the close), the address may log in again.
        async with asyncio.timeout(10):
            while not await asyncio.to_thread(_logs_in, env.port):  # noqa: ASYNC110
                await asyncio.sleep(0.05)


def _login_from(port: int, source: str) -> bool:
    transport = connect(port, source=source)
    transport.close()
    return True


def _logs_in(port: int) -> bool:
    try:
        return _login_from(port, "127.0.0.1")
    except (OSError, EOFError, paramiko.SSHException):
        return False


async def test_a_few_addresses_filling_max_startups_do_not_lock_out_a_district(
    start_sftp: ServerFactory,
) -> None:
    """Past the bound, the connection that goes is the oldest of the address holding the
    most: the district, holding none, gets in; the flood loses one of its own."""
    async with start_sftp(max_startups_begin=4, max_startups=4, max_startups_per_source=3) as env:
        flood = [_silent(env.port, "127.0.0.2") for _ in range(3)]
        flood.append(_silent(env.port, "127.0.0.3"))
        try:
            await env.wait_for(lambda: env.server.logins_pending() == 4)
            assert await asyncio.to_thread(_login_from, env.port, "127.0.0.1")
            closed = await asyncio.to_thread(_closed_by_server, flood)
            assert closed == [True, False, False, False]  # the oldest of 127.0.0.2
            # Two left on .2, one on .3: a newcomer from .3 holds as many as .2 would after an
            # eviction, so it is the one refused.
            await env.wait_for(lambda: env.server.logins_pending() == 3)
            flood.append(_silent(env.port, "127.0.0.4"))
            await env.wait_for(lambda: env.server.logins_pending() == 4)
            late = _silent(env.port, "127.0.0.3")
            assert await asyncio.to_thread(_closed_by_server, [late]) == [True]
            late.close()
        finally:
            for sock in flood:
                sock.close()


def _silent(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def _closed_by_server(socks: list[socket.socket]) -> list[bool]:
    """Whether the server closed each connection (each admitted one has sent its banner)."""
    closed = []
    for sock in socks:
        sock.settimeout(0.5)
        try:
            while sock.recv(4096):
                pass
            closed.append(True)
        except TimeoutError:
            closed.append(False)
        except ConnectionResetError:
            closed.append(True)
    return closed
