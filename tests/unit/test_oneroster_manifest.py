"""manifest.csv as OneRoster writes it: properties and values, each file's mode, and its bound."""

from __future__ import annotations

from daemon.oneroster.files import MAX_MANIFEST_BYTES, read_manifest

HEADER = b'"propertyName","value"\r\n'


def test_each_files_mode_and_the_version_are_read() -> None:
    manifest = read_manifest(
        b"\xef\xbb\xbf"
        + HEADER
        + b'"oneroster.version","1.2"\r\n"file.academicSessions","BULK"\r\n'
        b'"file.userProfiles","absent"\r\n"source.systemName","SIS"\r\n'
    )
    assert manifest.unreadable is None
    assert manifest.version == "1.2"
    assert manifest.modes == {"academicSessions.csv": "bulk", "userProfiles.csv": "absent"}
    assert manifest.provided() == ["academicSessions.csv"]


def test_the_manifest_bound_holds_at_its_edge() -> None:
    line = b'"source.note","' + b"x" * 80 + b'"\r\n'
    body = HEADER + b'"oneroster.version","1.1"\r\n'
    body += line * ((MAX_MANIFEST_BYTES - len(body)) // len(line))
    body += b" " * (MAX_MANIFEST_BYTES - len(body))
    assert len(body) == MAX_MANIFEST_BYTES
    assert read_manifest(body).unreadable is None
    refused = read_manifest(body + b" ")
    assert (
        refused.unreadable
        == f"it is {MAX_MANIFEST_BYTES + 1:,} bytes (a manifest is at most {MAX_MANIFEST_BYTES:,})"
    )


def test_a_manifest_that_is_not_one_says_why() -> None:
    assert read_manifest(b"name,value\r\n").unreadable == "its header must be propertyName,value"
    assert read_manifest(b"\xff\xfe").unreadable is not None
    assert read_manifest(b"").unreadable == "its header must be propertyName,value"
