"""A OneRoster set sent as one zip is untrusted: each bound holds at its edge, and a path out
of the folder, a bomb, a member twice or an encrypted one unpacks nothing."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import pytest

from daemon.oneroster import archive
from daemon.oneroster.archive import RATIO_FLOOR_BYTES, ZipLimits, ZipRefused, unpack

MANIFEST = b'"propertyName","value"\r\n"oneroster.version","1.1"\r\n'


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def refused(path: Path, target: Path, limits: ZipLimits = archive.DEFAULT_LIMITS) -> ZipRefused:
    with pytest.raises(ZipRefused) as caught:
        unpack(path, target, limits)
    assert not target.exists() or list(target.iterdir()) == []  # nothing of it unpacked
    return caught.value


def test_the_defaults_are_the_documented_bounds() -> None:
    limits = ZipLimits()
    assert (limits.max_zip_bytes, limits.max_members) == (1 << 30, 100)
    assert (limits.max_unzipped_bytes, limits.max_ratio) == (8 << 30, 200)


def test_the_zip_size_bound_holds_at_its_edge(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "set.zip", {"manifest.csv": MANIFEST})
    size = path.stat().st_size
    assert set(unpack(path, tmp_path / "ok", ZipLimits(max_zip_bytes=size))) == {"manifest.csv"}
    error = refused(path, tmp_path / "no", ZipLimits(max_zip_bytes=size - 1))
    assert error.code == "zip_too_large"
    assert str(error) == f"the zip is {size:,} bytes (at most {size - 1:,})"


def test_the_member_count_bound_holds_at_its_edge(tmp_path: Path) -> None:
    members = {"manifest.csv": MANIFEST, **{f"notes/{n}.txt": b"x" for n in range(4)}}
    path = make_zip(tmp_path / "set.zip", members)
    assert unpack(path, tmp_path / "ok", ZipLimits(max_members=5))
    assert refused(path, tmp_path / "no", ZipLimits(max_members=4)).code == "zip_too_many_members"


def test_the_unpacked_size_bound_holds_at_its_edge(tmp_path: Path) -> None:
    orgs = b'"sourcedId","name","type"\r\n' * 10
    path = make_zip(tmp_path / "set.zip", {"manifest.csv": MANIFEST, "orgs.csv": orgs})
    total = len(MANIFEST) + len(orgs)
    assert unpack(path, tmp_path / "ok", ZipLimits(max_unzipped_bytes=total))
    error = refused(path, tmp_path / "no", ZipLimits(max_unzipped_bytes=total - 1))
    assert error.code == "zip_too_large_unpacked"


def test_the_compression_ratio_bound_holds_at_its_edge(tmp_path: Path) -> None:
    users = b"0" * RATIO_FLOOR_BYTES  # compresses about a thousand times
    path = make_zip(tmp_path / "set.zip", {"manifest.csv": MANIFEST, "users.csv": users})
    with zipfile.ZipFile(path) as zf:
        packed = zf.getinfo("users.csv").compress_size
    ratio = math.ceil(len(users) / packed)
    assert unpack(path, tmp_path / "ok", ZipLimits(max_ratio=ratio))[
        "users.csv"
    ].stat().st_size == len(users)
    error = refused(path, tmp_path / "no", ZipLimits(max_ratio=ratio - 1))
    assert error.code == "zip_bomb"
    assert "looks like a zip bomb" in str(error)
    assert refused(path, tmp_path / "default").code == "zip_bomb"  # 200 by default


def test_a_small_member_is_never_a_bomb(tmp_path: Path) -> None:
    users = b" " * (RATIO_FLOOR_BYTES - 1)
    path = make_zip(tmp_path / "set.zip", {"manifest.csv": MANIFEST, "users.csv": users})
    assert "users.csv" in unpack(path, tmp_path / "ok")


@pytest.mark.parametrize(
    "name", ["../orgs.csv", "/etc/orgs.csv", "export/../../orgs.csv", "C:/orgs.csv", "..\\orgs.csv"]
)
def test_a_path_out_of_the_folder_unpacks_nothing(tmp_path: Path, name: str) -> None:
    path = make_zip(tmp_path / "set.zip", {"manifest.csv": MANIFEST, name: b"x"})
    error = refused(path, tmp_path / "out" / "in")
    assert error.code == "zip_unsafe_path"
    assert not (tmp_path / "out" / "orgs.csv").exists()
    assert not (tmp_path / "orgs.csv").exists()


def test_one_folder_deep_is_read_and_other_members_are_not(tmp_path: Path) -> None:
    members = {
        "export/Manifest.CSV": MANIFEST, "export/orgs.csv": b"o",
        "__MACOSX/export/._orgs.csv": b"junk", "export/deeper/users.csv": b"u",
        "export/readme.txt": b"r",
    }  # fmt: skip
    written = unpack(make_zip(tmp_path / "set.zip", members), tmp_path / "ok")
    assert sorted(written) == ["manifest.csv", "orgs.csv"]
    assert written["orgs.csv"].read_bytes() == b"o"


def test_a_file_twice_or_a_broken_zip_is_refused(tmp_path: Path) -> None:
    twice = make_zip(tmp_path / "twice.zip", {"orgs.csv": b"a", "export/ORGS.csv": b"b"})
    assert refused(twice, tmp_path / "a").code == "zip_duplicate_member"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK not really a zip")
    assert refused(junk, tmp_path / "b").code == "bad_zip"


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "set.zip", {"orgs.csv": b"a"}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    # Set the "encrypted" flag bit in the local header and in the central directory.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    path.write_bytes(bytes(data))
    assert refused(path, tmp_path / "a").code == "zip_encrypted"
