"""How client paths map onto a tenant's root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from asyncssh import SFTPError

from daemon.sftp.jail import Jail


@pytest.mark.parametrize(
    ("client_path", "normalised"),
    [
        (b"", "/upload"),
        (b".", "/upload"),
        (b"students.csv", "/upload/students.csv"),
        (b"/", "/"),
        (b"//upload//x", "/upload/x"),
        (b"/../../etc/passwd", "/etc/passwd"),
        (b"../../..", "/"),
        (b"/upload/./a/../b", "/upload/b"),
    ],
)
def test_normalize_clamps_at_the_tenant_root(client_path: bytes, normalised: str) -> None:
    assert Jail.normalize(client_path) == normalised


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(SFTPError):
        Jail.normalize(b"/upload/a\x00b")


def test_locate_and_writable(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "tenant")
    jail.ensure_upload_dir()
    real_root = Path(os.path.realpath(tmp_path / "tenant"))
    assert jail.locate(b"/upload/a.csv").host == real_root / "upload" / "a.csv"
    assert jail.writable(b"a.csv").vpath == "/upload/a.csv"
    for path in (b"/a.csv", b"/upload", b"/", b"/upload/sub/a.csv", b"/../x"):
        with pytest.raises(SFTPError):
            jail.writable(path)
    with pytest.raises(SFTPError):
        jail.locate(b"/upload/.rosterdrop-partial-0123-a.csv")


def test_a_link_to_outside_is_never_followed(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "tenant")
    jail.ensure_upload_dir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "tenant" / "upload" / "out")
    with pytest.raises(SFTPError):
        jail.locate(b"/upload/out/x")
    with pytest.raises(SFTPError):
        jail.follow(jail.locate(b"/upload/out"))
