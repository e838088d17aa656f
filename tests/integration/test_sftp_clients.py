"""Real SFTP clients against the server: paramiko, OpenSSH's sftp in batch mode, curl/libssh2."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import stat
from pathlib import Path

import paramiko
from sftp_fixtures import PASSWORD, SSH_OPTIONS, TENANT, ClientKey, SftpEnv, sftp_client


async def test_paramiko_put_is_published_whole_and_stat_matches(
    sftp_env: SftpEnv, tmp_path: Path
) -> None:
    local = tmp_path / "students.csv"
    local.write_bytes(b"school_id,student_id\n" + b"1,2\n" * 50_000)

    def put() -> paramiko.SFTPAttributes:
        with sftp_client(sftp_env.port) as sftp:
            # put() stats the file after closing it and checks the size: the final name must be
            # there, complete, the moment the close is answered.
            return sftp.put(str(local), "/upload/students.csv")

    attrs = await asyncio.to_thread(put)
    assert attrs.st_size == local.stat().st_size
    assert sftp_env.disk() == {"students.csv": local.read_bytes()}
    assert sftp_env.kinds() == ["started", "published"]
    assert sftp_env.events[-1].path == sftp_env.upload_dir() / "students.csv"
    assert sftp_env.events[-1].tenant == TENANT
    assert stat.S_IMODE((sftp_env.upload_dir() / "students.csv").stat().st_mode) == 0o640


async def test_overwrite_replaces_the_file(sftp_env: SftpEnv) -> None:
    def upload_twice() -> None:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"old content that is longer"), "students.csv")
            sftp.putfo(io.BytesIO(b"new"), "students.csv")

    await asyncio.to_thread(upload_twice)
    assert sftp_env.disk() == {"students.csv": b"new"}
    assert sftp_env.kinds() == ["started", "published"] * 2


async def test_winscp_style_filepart_then_rename_over_existing(sftp_env: SftpEnv) -> None:
    def winscp() -> tuple[list[str], list[str]]:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"version 1"), "/upload/teachers.csv")
            sftp.putfo(io.BytesIO(b"version 2"), "/upload/teachers.csv.filepart")
            sftp.posix_rename("/upload/teachers.csv.filepart", "/upload/teachers.csv")
            after_posix = sftp.listdir("/upload")
            # Plain SFTPv3 rename (what WinSCP sends) replaces an existing name as well.
            sftp.putfo(io.BytesIO(b"version 3"), "/upload/teachers.csv.filepart")
            sftp.rename("/upload/teachers.csv.filepart", "/upload/teachers.csv")
            return after_posix, sftp.listdir("/upload")

    after_posix, after_rename = await asyncio.to_thread(winscp)
    assert after_posix == after_rename == ["teachers.csv"]
    assert sftp_env.disk() == {"teachers.csv": b"version 3"}
    renamed = [e for e in sftp_env.events if e.kind == "renamed"]
    assert [e.path for e in renamed] == [sftp_env.upload_dir() / "teachers.csv"] * 2


async def test_listing_hides_uploads_in_progress(sftp_env: SftpEnv) -> None:
    def list_during_upload() -> tuple[list[str], list[str], list[str], str]:
        with sftp_client(sftp_env.port) as sftp:
            top = sftp.listdir("/")
            sftp.putfo(io.BytesIO(b"done"), "schools.csv")
            with sftp.open("/upload/sections.csv", "wb") as handle:
                handle.write(b"half of it")
                handle.flush()
                during = sftp.listdir("/upload")
                longname = sftp.listdir_attr("/upload")[0].longname
            return top, during, sftp.listdir("."), longname

    top, during, after, longname = await asyncio.to_thread(list_during_upload)
    assert sorted(top) == ["check", "upload"]
    assert during == ["schools.csv"]  # the hidden partial file is on disk but not listed
    assert sorted(after) == ["schools.csv", "sections.csv"]
    assert TENANT in longname  # owner shown as the tenant, not the daemon's own account


async def test_paths_resolve_from_upload_and_clamp_at_root(sftp_env: SftpEnv) -> None:
    def resolve() -> list[str]:
        with sftp_client(sftp_env.port) as sftp:
            return [sftp.normalize(p) for p in (".", "..", "../../..", "/upload/../upload/x")]

    assert await asyncio.to_thread(resolve) == ["/upload", "/", "/", "/upload/x"]


async def test_setstat_keeps_times_but_never_permissions(sftp_env: SftpEnv) -> None:
    def setstat() -> tuple[paramiko.SFTPAttributes, paramiko.SFTPAttributes]:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"data"), "enrollments.csv")
            sftp.utime("enrollments.csv", (1_600_000_000, 1_600_000_000))
            sftp.chmod("enrollments.csv", 0o777)
            with sftp.open("fsetstat.csv", "wb") as handle:
                handle.write(b"x")
                handle.chmod(0o755)
                handle.utime((1_500_000_000, 1_500_000_000))
            return sftp.stat("enrollments.csv"), sftp.lstat("fsetstat.csv")

    first, second = await asyncio.to_thread(setstat)
    assert first.st_mtime == 1_600_000_000
    assert second.st_mtime == 1_500_000_000
    for attrs in (first, second):
        assert attrs.st_mode is not None
        assert stat.S_IMODE(attrs.st_mode) == 0o640
    on_disk = (sftp_env.upload_dir() / "fsetstat.csv").stat()
    assert on_disk.st_mtime == 1_500_000_000
    assert stat.S_IMODE(on_disk.st_mode) == 0o640


async def test_resume_and_append_keep_existing_content(sftp_env: SftpEnv) -> None:
    def resume() -> bytes:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"abcdef"), "schools.csv")
            with sftp.open("schools.csv", "r+") as handle:  # no truncate: a resumed upload
                handle.seek(2)
                handle.write(b"XY")
            with sftp.open("schools.csv", "a") as handle:
                handle.write(b"+tail")
            with sftp.open("schools.csv", "rb") as handle:
                return bytes(handle.read())

    assert await asyncio.to_thread(resume) == b"abXYef+tail"
    assert sftp_env.disk() == {"schools.csv": b"abXYef+tail"}


async def test_remove_reports_the_file(sftp_env: SftpEnv) -> None:
    def remove() -> list[str]:
        with sftp_client(sftp_env.port) as sftp:
            sftp.putfo(io.BytesIO(b"x"), "old.csv")
            sftp.remove("old.csv")
            return sftp.listdir()

    assert await asyncio.to_thread(remove) == []
    assert sftp_env.kinds() == ["started", "published", "removed"]


async def test_paramiko_key_login(sftp_env: SftpEnv, sftp_client_key: ClientKey) -> None:
    account = sftp_env.directory.accounts[TENANT]
    sftp_env.directory.accounts[TENANT] = dataclasses.replace(
        account,
        password_hash=None,
        authorized_keys=f"# the district's SIS\n{sftp_client_key.public}\n",
    )
    key = paramiko.Ed25519Key.from_private_key_file(str(sftp_client_key.private))

    def upload() -> list[str]:
        with sftp_client(sftp_env.port, password=None, key=key) as sftp:
            sftp.putfo(io.BytesIO(b"k"), "keyed.csv")
            return sftp.listdir()

    assert await asyncio.to_thread(upload) == ["keyed.csv"]


async def _run(*command: str, stdin: bytes = b"", seconds: float = 20) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(seconds):
        output, _ = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_openssh_sftp_batch(
    sftp_env: SftpEnv, sftp_client_key: ClientKey, tmp_path: Path
) -> None:
    sftp_env.add_tenant(TENANT, authorized_keys=sftp_client_key.public)
    local = tmp_path / "students.csv"
    local.write_bytes(os.urandom(300_000))  # several write requests, pipelined by the client
    batch = (
        f"put {local} /upload/students.csv\n"
        f"put {local} staging.tmp\n"
        "rename staging.tmp sections.csv\n"
        "ls -la /upload\n"
        "ls /\n"
        f"get /upload/students.csv {tmp_path / 'back.csv'}\n"
    )
    code, output = await _run(
        "sftp", "-b", "-", "-P", str(sftp_env.port), *SSH_OPTIONS,
        "-i", str(sftp_client_key.private), f"{TENANT}@127.0.0.1",
        stdin=batch.encode(),
    )  # fmt: skip
    assert code == 0, output
    assert sftp_env.disk() == {
        "students.csv": local.read_bytes(),
        "sections.csv": local.read_bytes(),
    }
    assert (tmp_path / "back.csv").read_bytes() == local.read_bytes()
    assert "students.csv" in output
    assert ".rosterdrop-partial" not in output
    assert sftp_env.kinds("sections.csv") == ["renamed"]


async def test_curl_upload_and_download(sftp_env: SftpEnv, tmp_path: Path) -> None:
    local = tmp_path / "teachers.csv"
    local.write_bytes(b"school_id,teacher_id\n" + b"9,8\n" * 40_000)
    url = f"sftp://127.0.0.1:{sftp_env.port}/upload/"
    code, output = await _run(
        "curl", "--silent", "--show-error", "--insecure", "--user", f"{TENANT}:{PASSWORD}",
        "--upload-file", str(local), url,
    )  # fmt: skip
    assert code == 0, output
    assert sftp_env.disk() == {"teachers.csv": local.read_bytes()}
    assert sftp_env.kinds() == ["started", "published"]

    code, output = await _run(
        "curl", "--silent", "--show-error", "--insecure", "--user", f"{TENANT}:{PASSWORD}",
        "--output", str(tmp_path / "back.csv"), url + "teachers.csv",
    )  # fmt: skip
    assert code == 0, output
    assert (tmp_path / "back.csv").read_bytes() == local.read_bytes()


def check_disk(sftp_env: SftpEnv) -> dict[str, bytes]:
    """Every file in the tenant's /check (its results folder apart)."""
    folder = sftp_env.root() / "check"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


async def test_openssh_sftp_batch_into_check_and_back_from_results(
    sftp_env: SftpEnv, sftp_client_key: ClientKey, tmp_path: Path
) -> None:
    sftp_env.add_tenant(TENANT, authorized_keys=sftp_client_key.public)
    local = tmp_path / "students.csv"
    local.write_bytes(os.urandom(300_000))
    answer = sftp_env.root() / "check" / "results" / "x-report.txt"
    batch = (
        f"put {local} /check/students.csv\n"
        "cd /check\n"
        f"put {local} staging.tmp\n"
        "rename staging.tmp sections.csv\n"
        "ls -la /check\n"
        "ls /check/results\n"
        f"get /check/results/x-report.txt {tmp_path / 'answer.txt'}\n"
        "rm /check/results/x-report.txt\n"
    )

    def answered() -> None:
        answer.parent.mkdir(parents=True, exist_ok=True)
        answer.write_bytes(b"what an import would do\n")

    await asyncio.to_thread(answered)
    code, output = await _run(
        "sftp", "-b", "-", "-P", str(sftp_env.port), *SSH_OPTIONS,
        "-i", str(sftp_client_key.private), f"{TENANT}@127.0.0.1",
        stdin=batch.encode(),
    )  # fmt: skip
    assert code == 0, output
    assert check_disk(sftp_env) == {
        "sections.csv": local.read_bytes(),
        "students.csv": local.read_bytes(),
    }
    assert sftp_env.disk() == {}  # nothing in /upload
    assert (tmp_path / "answer.txt").read_bytes() == b"what an import would do\n"
    assert not answer.exists()
    assert ".rosterdrop-partial" not in output
    published = [e.path for e in sftp_env.events if e.kind in ("published", "renamed")]
    assert {p.parent.name for p in published} == {"check"}
    assert [e.path.parent.name for e in sftp_env.events if e.kind == "removed"] == ["results"]


async def test_curl_upload_into_check_and_download(sftp_env: SftpEnv, tmp_path: Path) -> None:
    local = tmp_path / "teachers.csv"
    local.write_bytes(b"school_id,teacher_id\n" + b"9,8\n" * 40_000)
    url = f"sftp://127.0.0.1:{sftp_env.port}/check/"

    async def curl(*args: str) -> tuple[int, str]:
        login = ("--silent", "--show-error", "--insecure", "--user", f"{TENANT}:{PASSWORD}")
        return await _run("curl", *login, *args)

    code, output = await curl("--upload-file", str(local), url)
    assert code == 0, output
    assert check_disk(sftp_env) == {"teachers.csv": local.read_bytes()}
    assert sftp_env.disk() == {}
    code, _ = await curl("--upload-file", str(local), url + "results/")
    assert code != 0  # the results folder is rosterdrop's to write
    code, output = await curl("--output", str(tmp_path / "back.csv"), url + "teachers.csv")
    assert code == 0, output
    assert (tmp_path / "back.csv").read_bytes() == local.read_bytes()
