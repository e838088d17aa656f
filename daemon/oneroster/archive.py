"""A OneRoster set sent as one .zip: its bounds, and unpacking it safely.

A zip is untrusted input: it may name paths outside the folder (`../x`, `/etc/x`), hold
thousands of members, or expand a few kilobytes into terabytes. Every bound below is checked
before a byte is written, and again while writing (a member's declared size can lie).
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from daemon.oneroster.files import BY_LOWER

# Bounds (docs/oneroster.md, "A zip"): a zip larger than the largest file SFTP accepts by
# default; far more members than a OneRoster set has (about 20 kinds of file); what the set may
# unpack to; and how much a member may expand (CSV compresses 5-20 times, a zip bomb 1000s).
MAX_ZIP_BYTES = 1 << 30
MAX_ZIP_MEMBERS = 100
MAX_UNZIPPED_BYTES = 8 << 30
MAX_COMPRESSION_RATIO = 200
# A member this small never counts as a bomb, whatever its ratio (a 1 KB manifest of spaces).
RATIO_FLOOR_BYTES = 1 << 20
CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    max_zip_bytes: int = MAX_ZIP_BYTES
    max_members: int = MAX_ZIP_MEMBERS
    max_unzipped_bytes: int = MAX_UNZIPPED_BYTES
    max_ratio: int = MAX_COMPRESSION_RATIO


class ZipRefused(Exception):
    """The zip cannot be unpacked; its message says why (and is the problem's message)."""

    def __init__(self, code: str, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.member = member


DEFAULT_LIMITS = ZipLimits()


def unpack(archive: Path, target: Path, limits: ZipLimits = DEFAULT_LIMITS) -> dict[str, Path]:
    """Unpack the OneRoster files of `archive` into `target`, by their canonical names.

    Members may sit at the top or in one folder (some exports zip a folder); other members
    (not a OneRoster file name) are not unpacked. Raises ZipRefused.
    """
    size = archive.stat().st_size
    if size > limits.max_zip_bytes:
        raise ZipRefused(
            "zip_too_large",
            f"the zip is {size:,} bytes (at most {limits.max_zip_bytes:,})",
        )
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipRefused("bad_zip", f"the file is not a readable zip ({exc})") from exc
    with zf:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise ZipRefused(
                "zip_too_many_members",
                f"the zip holds {len(members):,} members (at most {limits.max_members:,})",
            )
        chosen = _choose(members)
        declared = sum(info.file_size for info in chosen.values())
        if declared > limits.max_unzipped_bytes:
            raise ZipRefused(
                "zip_too_large_unpacked",
                f"the zip's files would unpack to {declared:,} bytes"
                f" (at most {limits.max_unzipped_bytes:,})",
            )
        for name, info in chosen.items():
            _check_ratio(name, info.file_size, info.compress_size, limits)
        target.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        total = 0
        for name, info in chosen.items():
            path = target / name
            total = _copy(zf, info, name, path, total, limits)
            written[name] = path
    return written


def _choose(members: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The members that are OneRoster files, by canonical name; refuses unsafe paths."""
    chosen: dict[str, zipfile.ZipInfo] = {}
    for info in members:
        raw = info.filename.replace("\\", "/")
        path = PurePosixPath(raw)
        if raw.startswith("/") or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise ZipRefused(
                "zip_unsafe_path",
                f"the zip names a path outside its own folder ({info.filename!r}):"
                " nothing of it was unpacked",
                info.filename[:200],
            )
        if info.is_dir() or len(path.parts) > 2 or path.name.startswith("."):
            continue  # a folder, or deeper than one folder (macOS's __MACOSX/…): not read
        if path.parts[0] == "__MACOSX":
            continue
        canonical = BY_LOWER.get(path.name.lower())
        if canonical is None:
            continue
        if canonical in chosen:
            raise ZipRefused(
                "zip_duplicate_member",
                f"the zip holds {canonical} twice ({chosen[canonical].filename!r} and"
                f" {info.filename!r}): which one is the roster?",
                info.filename[:200],
            )
        if info.flag_bits & 0x1:
            raise ZipRefused(
                "zip_encrypted", f"{info.filename} is encrypted: send the zip without a password"
            )
        chosen[canonical] = info
    return chosen


def _check_ratio(name: str, size: int, packed: int, limits: ZipLimits) -> None:
    if size >= RATIO_FLOOR_BYTES and size > limits.max_ratio * max(packed, 1):
        raise ZipRefused(
            "zip_bomb",
            f"{name} would expand {size // max(packed, 1):,} times (at most"
            f" {limits.max_ratio:,}): this looks like a zip bomb, nothing was unpacked",
            name,
        )


def _copy(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path: Path, total: int, limits: ZipLimits
) -> int:
    """Write one member, counting real bytes against the bounds (declared sizes can lie)."""
    written = 0
    try:
        with zf.open(info) as source, path.open("wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                total += len(chunk)
                if written > info.file_size or total > limits.max_unzipped_bytes:
                    raise ZipRefused(
                        "zip_too_large_unpacked",
                        f"{name} unpacks to more bytes than the zip declares: nothing was imported",
                        name,
                    )
                _check_ratio(name, written, info.compress_size, limits)
                out.write(chunk)
    except ZipRefused:
        path.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        path.unlink(missing_ok=True)
        raise ZipRefused("bad_zip", f"{name} cannot be unpacked ({exc})", name) from exc
    return total


def remove(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
