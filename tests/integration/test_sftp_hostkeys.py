"""Host keys: generated once with private permissions, the same keys after a restart."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import asyncssh
import pytest
from sftp_fixtures import Directory

from daemon import hostkeyfiles
from daemon.config import SftpSettings
from daemon.sftp import SftpError, SftpServer, host_key_fingerprints, load_or_create_host_keys
from daemon.sftp.hostkeys import HOST_KEY_SPECS
from tests.support import drop


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_keys_are_created_private_and_reused_across_restarts(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "hostkeys"
    seen = []
    for _ in range(2):
        server = SftpServer(SftpSettings(host="127.0.0.1", port=0), directory, Directory())
        await server.start()
        try:
            seen.append(await asyncio.to_thread(drop.server_fingerprint, server.port))
        finally:
            await server.close(timeout=1)
    assert seen[0] == seen[1]
    assert seen[0].startswith("ssh-ed25519 SHA256:")
    assert _mode(directory) == 0o700
    names = sorted(p.name for p in directory.iterdir())
    assert names == [
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
        "ssh_host_rsa_key",
        "ssh_host_rsa_key.pub",
    ]
    for name in ("ssh_host_ed25519_key", "ssh_host_rsa_key"):
        assert _mode(directory / name) == 0o600


async def test_a_port_in_use_is_a_clean_error(tmp_path: Path) -> None:
    first = SftpServer(SftpSettings(host="127.0.0.1", port=0), tmp_path, Directory())
    await first.start()
    try:
        taken = SftpSettings(host="127.0.0.1", port=first.port)
        with pytest.raises(SftpError, match=r"cannot listen on 127\.0\.0\.1"):
            await SftpServer(taken, tmp_path, Directory()).start()
    finally:
        await first.close(timeout=1)


def test_fingerprints_name_each_key(tmp_path: Path) -> None:
    lines = host_key_fingerprints(tmp_path / "keys")  # creates the keys when missing
    assert [line.split()[0] for line in lines] == ["ED25519", "RSA"]
    keys = load_or_create_host_keys(tmp_path / "keys")
    fingerprints = [key.get_fingerprint("sha256") for key in keys]
    assert lines == [f"ED25519 {fingerprints[0]}", f"RSA {fingerprints[1]}"]
    rsa = asyncssh.read_public_key(tmp_path / "keys" / "ssh_host_rsa_key.pub")
    assert rsa.pyca_key.key_size == 3072
    assert lines == host_key_fingerprints(tmp_path / "keys")
    # the web's Setup page reads the same public halves, without asyncssh
    assert lines == hostkeyfiles.host_key_fingerprints(tmp_path / "keys")
    assert [n for n, *_ in HOST_KEY_SPECS] == [n for n, _ in hostkeyfiles.HOST_KEY_FILES]


def test_loose_permissions_are_tightened(tmp_path: Path) -> None:
    load_or_create_host_keys(tmp_path)
    (tmp_path / "ssh_host_rsa_key").chmod(0o644)
    tmp_path.chmod(0o755)
    load_or_create_host_keys(tmp_path)
    assert _mode(tmp_path / "ssh_host_rsa_key") == 0o600
    assert _mode(tmp_path) == 0o700
