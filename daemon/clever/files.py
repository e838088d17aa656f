"""The five Clever files: their columns, finding them in a folder, fingerprinting them."""

from __future__ import annotations

import codecs
import hashlib
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from daemon.roster.entities import FILES

CHUNK = 1 << 20
# Windows-1252 leaves these five bytes undefined: a file holding them is not Windows-1252 either.
CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
# teacher_2_id … teacher_999_id: a wider number is no teacher column (and no position a
# database integer holds), so it is an extra column like any other.
CO_TEACHER = re.compile(r"teacher_([1-9]\d{0,2})_id")


@dataclass(frozen=True)
class FileSpec:
    filename: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    def known(self, column: str) -> bool:
        if column in self.required or column in self.optional:
            return True
        match = CO_TEACHER.fullmatch(column)
        return self.filename == "sections.csv" and match is not None and int(match[1]) >= 2


SPECS: dict[str, FileSpec] = {
    spec.filename: spec
    for spec in (
        FileSpec("schools.csv", ("school_id", "school_name")),
        FileSpec(
            "students.csv",
            ("school_id", "student_id", "first_name", "last_name"),
            ("student_email", "username", "grade"),
        ),
        FileSpec(
            "teachers.csv", ("school_id", "teacher_id", "first_name", "last_name", "teacher_email")
        ),
        FileSpec(
            "sections.csv",
            ("school_id", "section_id", "teacher_id"),
            ("course_name", "term_start", "term_end"),
        ),
        FileSpec("enrollments.csv", ("school_id", "section_id", "student_id")),
    )
}


@dataclass(frozen=True)
class FileFingerprint:
    """What one pass over the bytes tells: size, digest, and whether it is UTF-8."""

    size: int
    sha256: str
    utf8: bool
    bad_offset: int | None = None  # first byte that is not UTF-8
    bad_line: int | None = None
    cp1252_ok: bool = True  # a file not UTF-8: false when it is not Windows-1252 either
    has_nul: bool = False
    utf16: bool = False  # starts with a UTF-16 byte order mark (Excel's "Unicode Text")
    # Also holds valid UTF-8 beyond ASCII: a file pieced together from two sources, which
    # neither decoding reads right.
    utf8_mixed: bool = False


@dataclass
class FoundFiles:
    """The files of one upload folder, matched to the five names case-insensitively (or, when
    `format` is "oneroster", to a OneRoster set: see daemon/oneroster/files.py)."""

    files: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    ignored_twins: list[tuple[Path, Path]] = field(default_factory=list)  # (used, ignored)
    format: str = "clever"


def find_files(folder: Path) -> FoundFiles:
    """Match the folder's files to the five names; when two differ only by case, the newest wins."""
    found = FoundFiles()
    candidates: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        key = path.name.lower()
        if key in FILES:
            candidates.setdefault(key, []).append(path)
        else:
            found.others.append(path.name)
    for name in FILES:
        paths = sorted(candidates.get(name, []), key=lambda p: p.stat().st_mtime, reverse=True)
        if not paths:
            found.missing.append(name)
            continue
        found.files[name] = paths[0]
        found.ignored_twins.extend((paths[0], p) for p in paths[1:])
    return found


def fingerprint(path: Path) -> FileFingerprint:
    """Hash the file and check its encoding in one streaming pass (memory stays flat). What
    only a file that is not UTF-8 needs (the line of its first bad byte, whether it is
    Windows-1252) takes a second pass, then: a third of the first's time on every upload."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = 0
    bad_offset: int | None = None
    has_nul = False
    utf8_text = False  # valid UTF-8 beyond ASCII seen
    utf16 = False
    # SHA-256 lets go of the GIL: a thread hashes each chunk while this one reads the next
    # (an identical re-upload of 31 MB: 30 ms, not 50, most of what it costs).
    with path.open("rb") as handle, ThreadPoolExecutor(1) as hashing:
        hashed: Future[None] | None = None
        while chunk := handle.read(CHUNK):
            if hashed is not None:
                hashed.result()
            hashed = hashing.submit(digest.update, chunk)
            utf16 = utf16 or (size == 0 and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"))
            has_nul = has_nul or b"\x00" in chunk
            begun = decoder.getstate()[0]  # a character's first bytes, at the last chunk's end
            if chunk.isascii() and not begun:
                pass  # valid UTF-8 on its own
            elif bad_offset is None:
                try:
                    utf8_text = utf8_text or _beyond_ascii(decoder.decode(chunk))
                except UnicodeDecodeError as exc:  # counted from the begun character's start
                    bad_offset = size - len(begun) + exc.start
                    utf8_text = utf8_text or _beyond_ascii(chunk.decode("utf-8", "ignore"))
            elif not utf8_text:
                utf8_text = _beyond_ascii(chunk.decode("utf-8", "ignore"))
            size += len(chunk)
        if hashed is not None:
            hashed.result()
    if bad_offset is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            bad_offset = size
    bad_line, cp1252_ok = (None, True) if bad_offset is None else _not_utf8(path, bad_offset)
    return FileFingerprint(
        size=size,
        sha256=digest.hexdigest(),
        utf8=bad_offset is None,
        bad_offset=bad_offset,
        bad_line=bad_line,
        cp1252_ok=cp1252_ok,
        has_nul=has_nul,
        utf16=utf16,
        utf8_mixed=bad_offset is not None and utf8_text,
    )


def _not_utf8(path: Path, bad_offset: int) -> tuple[int, bool]:
    """The line of the first byte that is not UTF-8, and whether the file is Windows-1252."""
    newlines, offset, cp1252_ok = 0, 0, True
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if offset < bad_offset:
                newlines += chunk.count(b"\n", 0, bad_offset - offset)
            cp1252_ok = cp1252_ok and not any(byte in chunk for byte in CP1252_UNDEFINED)
            offset += len(chunk)
    return newlines + 1, cp1252_ok


def _beyond_ascii(text: str) -> bool:
    """Whether decoded text holds characters beyond ASCII other than a byte order mark (some
    tools put one before Windows-1252 text)."""
    return not text.isascii() and not text.replace("\ufeff", "").isascii()
