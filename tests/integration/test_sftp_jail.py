"""Attempts to reach outside a tenant's root: every one refused, nothing outside touched."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import paramiko
import pytest
from sftp_fixtures import SftpEnv, files_outside, sftp_client

SECRET = b"not for tenants\n"


@pytest.fixture
def outside(sftp_env: SftpEnv) -> Path:
    """A file next to the tenant roots, where an escape would read or write."""
    path = sftp_env.data / "secret.txt"
    path.write_bytes(SECRET)
    sftp_env.upload_dir().mkdir(parents=True, exist_ok=True)
    return path


def refused(action: object) -> OSError:
    """Run a client call that must fail; the failure is what the client sees."""
    assert callable(action)
    with pytest.raises(OSError) as caught:  # noqa: PT011 - any refusal; callers check messages
        action()
    return caught.value


async def test_dot_dot_and_absolute_paths_stay_inside(sftp_env: SftpEnv, outside: Path) -> None:
    before = files_outside(sftp_env.data, sftp_env.root())

    def escape() -> None:
        with sftp_client(sftp_env.port) as sftp:
            for path in ("../../secret.txt", "/../../secret.txt", "/etc/passwd", "../../../etc"):
                refused(lambda p=path: sftp.open(p).read())
                refused(lambda p=path: sftp.stat(p))
            for path in ("../../owned.txt", "/../../../tmp/owned.txt", "/etc/owned", "/owned"):
                refused(lambda p=path: sftp.putfo(io.BytesIO(b"x"), p))
            assert sorted(sftp.listdir("/../../..")) == ["check", "upload"]  # ".." stops at "/"

    await asyncio.to_thread(escape)
    assert files_outside(sftp_env.data, sftp_env.root()) == before
    assert await asyncio.to_thread(outside.read_bytes) == SECRET
    assert sftp_env.disk() == {}


async def test_writes_outside_the_upload_folder_are_refused(
    sftp_env: SftpEnv, outside: Path
) -> None:
    before = files_outside(sftp_env.data, sftp_env.root())

    def write_elsewhere() -> list[str]:
        with sftp_client(sftp_env.port) as sftp:
            messages = [
                str(refused(lambda: sftp.putfo(io.BytesIO(b"x"), "/root-level.csv"))),
                str(refused(lambda: sftp.mkdir("/newdir"))),
                str(refused(lambda: sftp.mkdir("/upload/sub"))),
                str(refused(lambda: sftp.mkdir("/upload"))),  # exists: a different answer
                str(refused(lambda: sftp.rmdir("/upload"))),
                str(refused(lambda: sftp.remove("/upload"))),
            ]
            sftp.putfo(io.BytesIO(b"ok"), "/upload/a.csv")
            messages.append(str(refused(lambda: sftp.rename("/upload/a.csv", "/a.csv"))))
            messages.append(str(refused(lambda: sftp.rename("/upload", "/up2"))))
            return messages

    messages = await asyncio.to_thread(write_elsewhere)
    assert "only be written directly in /upload" in messages[0]
    assert "folders cannot be created" in messages[1]
    assert "folders cannot be created" in messages[2]
    assert "folders cannot be created" not in messages[3]
    assert sorted(p.name for p in sftp_env.root().iterdir()) == ["check", "upload"]
    assert sftp_env.disk() == {"a.csv": b"ok"}
    assert files_outside(sftp_env.data, sftp_env.root()) == before


async def test_links_cannot_be_created(sftp_env: SftpEnv, outside: Path) -> None:
    def link() -> None:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"data"), "a.csv")
            refused(lambda: sftp.symlink(str(outside), "/upload/s1"))
            refused(lambda: sftp.symlink("/upload/a.csv", "/upload/s2"))
            refused(lambda: sftp.readlink("/upload/a.csv"))
            # Hard links: asyncssh handles the extension even though the server no longer
            # offers it, so send the raw request as OpenSSH's `ln` would.
            refused(
                lambda: sftp._request(
                    paramiko.sftp.CMD_EXTENDED, "hardlink@openssh.com", "/upload/a.csv", "/upload/h"
                )
            )
            refused(lambda: sftp.rename("/upload/a.csv", "/../../stolen.csv"))
            refused(lambda: sftp.posix_rename("/upload/a.csv", "../../../stolen.csv"))

    await asyncio.to_thread(link)
    assert sftp_env.disk() == {"a.csv": b"data"}
    assert (sftp_env.upload_dir() / "a.csv").stat().st_nlink == 1
    assert not (sftp_env.data / "stolen.csv").exists()


async def test_symlinks_planted_on_disk_are_not_followed_out(
    sftp_env: SftpEnv, outside: Path
) -> None:
    upload = sftp_env.upload_dir()
    (upload / "real.csv").write_bytes(b"inside")
    os.symlink(outside, upload / "secret.csv")
    os.symlink(outside.parent, upload / "data")
    os.symlink(upload / "real.csv", upload / "alias.csv")

    def probe() -> tuple[bytes, int]:
        with sftp_client(sftp_env.port) as sftp:
            refused(lambda: sftp.open("secret.csv").read())
            refused(lambda: sftp.stat("secret.csv"))
            refused(lambda: sftp.listdir("data"))
            refused(lambda: sftp.open("data/secret.txt").read())
            refused(lambda: sftp.putfo(io.BytesIO(b"x"), "data/owned.txt"))
            refused(lambda: sftp.utime("secret.csv", (1, 1)))
            link_attrs = sftp.lstat("secret.csv")  # the link itself may be seen, not its target
            assert link_attrs.st_mode is not None
            with sftp.open("alias.csv") as handle:  # a link that stays inside is fine
                inside = bytes(handle.read())
            # Uploading onto a planted link replaces the link; it never writes through it.
            sftp.putfo(io.BytesIO(b"replaced"), "secret.csv")
            return inside, link_attrs.st_mode

    inside, link_mode = await asyncio.to_thread(probe)
    assert inside == b"inside"
    assert link_mode & 0o170000 == 0o120000  # S_IFLNK
    assert await asyncio.to_thread(outside.read_bytes) == SECRET
    assert not (outside.parent / "owned.txt").exists()
    assert not (upload / "secret.csv").is_symlink()
    assert (upload / "secret.csv").read_bytes() == b"replaced"


async def test_upload_folder_that_is_a_link_outside_is_refused(
    sftp_env: SftpEnv, outside: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = sftp_env.root("district2")
    root.mkdir(parents=True)
    os.symlink(elsewhere, root / "upload")
    sftp_env.add_tenant("district2")

    def probe() -> None:
        with sftp_client(sftp_env.port, username="district2") as sftp:
            refused(lambda: sftp.listdir("/upload"))
            refused(lambda: sftp.putfo(io.BytesIO(b"x"), "/upload/students.csv"))

    await asyncio.to_thread(probe)
    assert list(elsewhere.iterdir()) == []


async def test_tenants_do_not_see_each_other(sftp_env: SftpEnv) -> None:
    sftp_env.add_tenant("district2")

    def cross() -> None:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"mine"), "students.csv")
        with sftp_client(sftp_env.port, username="district2") as sftp:
            assert sftp.listdir("/upload") == []
            refused(lambda: sftp.stat("../../district1/upload/students.csv"))
            refused(lambda: sftp.stat("/../district1/upload/students.csv"))

    await asyncio.to_thread(cross)


async def test_hidden_partial_names_are_reserved(sftp_env: SftpEnv) -> None:
    def touch_partials() -> None:
        with sftp_client(sftp_env.port) as sftp, sftp.open("students.csv", "wb") as handle:
            handle.write(b"in progress")
            handle.flush()
            [partial] = [p.name for p in sftp_env.upload_dir().iterdir()]
            refused(lambda: sftp.stat(partial))
            refused(lambda: sftp.open(partial).read())
            refused(lambda: sftp.remove(partial))
            refused(lambda: sftp.rename(partial, "stolen.csv"))
            refused(lambda: sftp.putfo(io.BytesIO(b"x"), ".rosterdrop-partial-mine"))

    await asyncio.to_thread(touch_partials)
    assert sftp_env.disk() == {"students.csv": b"in progress"}


async def test_check_is_jailed_as_upload_and_its_results_are_read_only(
    sftp_env: SftpEnv, outside: Path
) -> None:
    before = files_outside(sftp_env.data, sftp_env.root())
    check = sftp_env.root() / "check"

    def probe() -> list[str]:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"ok"), "/check/a.csv")
            (check / "results" / "old-report.txt").write_bytes(b"an answer")  # as rosterdrop
            os.symlink(outside, check / "secret.csv")
            for path in ("/check/../../secret.txt", "/check/../../../etc/passwd"):
                refused(lambda p=path: sftp.open(p).read())
            refused(lambda: sftp.open("/check/secret.csv").read())
            refused(lambda: sftp.putfo(io.BytesIO(b"x"), "/check/../../owned.txt"))
            with sftp.open("/check/results/old-report.txt") as handle:
                answer = bytes(handle.read())
            assert answer == b"an answer"
            messages = [
                str(refused(lambda: sftp.putfo(io.BytesIO(b"x"), "/check/results/mine.csv"))),
                str(refused(lambda: sftp.putfo(io.BytesIO(b"x"), "/check/results"))),
                str(refused(lambda: sftp.mkdir("/check/sub"))),
                str(refused(lambda: sftp.rmdir("/check/results"))),
                str(refused(lambda: sftp.remove("/check/results"))),
                str(refused(lambda: sftp.rename("/check/a.csv", "/check/results/a.csv"))),
                str(refused(lambda: sftp.rename("/check/results/old-report.txt", "/check/b"))),
                str(refused(lambda: sftp.utime("/check/results/old-report.txt", (1, 1)))),
            ]
            sftp.remove("/check/results/old-report.txt")  # fetched: the client may delete it
            return messages

    messages = await asyncio.to_thread(probe)
    assert "only be written directly in /upload or /check" in messages[0]
    assert "folders cannot be created" in messages[2]
    assert sorted(p.name for p in check.iterdir()) == ["a.csv", "results", "secret.csv"]
    assert list((check / "results").iterdir()) == []
    assert await asyncio.to_thread(outside.read_bytes) == SECRET
    assert files_outside(sftp_env.data, sftp_env.root()) == before
