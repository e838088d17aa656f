"""What the first look at an uploaded file tells the district: whether it is UTF-8 and, when
not, the line of its first other byte and whether it reads as Windows-1252."""

from __future__ import annotations

from pathlib import Path

from daemon.clever.files import CHUNK, fingerprint


def test_a_utf8_file_is_utf8_whatever_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    path.write_bytes("school_id,first_name\r\nS1,日本\r\nS1,Zoë\r\n".encode())
    fp = fingerprint(path)
    assert (fp.utf8, fp.bad_offset, fp.bad_line, fp.utf8_mixed) == (True, None, None, False)


def test_a_windows_1252_byte_past_the_first_chunk_is_placed_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    head = b"school_id,first_name\r\n" + b"S1,Ann\r\n" * (CHUNK // 8 + 10)
    path.write_bytes(head + "S1,Zoë\r\n".encode("cp1252"))
    fp = fingerprint(path)
    assert not fp.utf8
    assert fp.bad_offset == len(head) + len(b"S1,Zo")
    assert fp.bad_line == head.count(b"\n") + 1
    assert fp.cp1252_ok
    assert not fp.utf8_mixed


def test_bytes_windows_1252_leaves_undefined_are_neither_encoding(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    path.write_bytes(b"school_id,first_name\nS1,Zo\xeb\nS1,\x81\n")
    fp = fingerprint(path)
    assert (fp.utf8, fp.bad_line, fp.cp1252_ok) == (False, 2, False)


def test_utf8_and_windows_1252_mixed_in_one_file_is_said_so(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    path.write_bytes("school_id,first_name\nS1,Zoë\n".encode() + "S1,Zoë\n".encode("cp1252"))
    fp = fingerprint(path)
    assert (fp.utf8, fp.bad_line, fp.utf8_mixed) == (False, 3, True)


def test_a_file_cut_inside_a_character_is_not_utf8_on_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    path.write_bytes(b"school_id,first_name\nS1,Zo" + "ë".encode()[:1])
    fp = fingerprint(path)
    assert (fp.utf8, fp.bad_offset, fp.bad_line) == (False, path.stat().st_size, 2)


def test_a_character_split_by_a_chunk_boundary_before_plain_text_is_utf8(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    head = b"school_id,first_name\n" + b"x" * (CHUNK - 1 - len(b"school_id,first_name\n"))
    path.write_bytes(head + "ë".encode() + b"\nS1,Ann\n" * 10)  # ë's second byte opens chunk 2
    fp = fingerprint(path)
    assert (fp.utf8, fp.bad_offset, fp.utf8_mixed) == (True, None, False)


def test_a_character_cut_at_a_chunk_boundary_by_plain_text_is_placed_there(
    tmp_path: Path,
) -> None:
    path = tmp_path / "students.csv"
    head = b"school_id,first_name\n" + b"x" * (CHUNK - 1 - len(b"school_id,first_name\n"))
    path.write_bytes(head + "ë".encode()[:1] + b"\nS1,Ann\n" * 10)  # chunk 2 is plain ASCII
    fp = fingerprint(path)
    assert (fp.utf8, fp.bad_offset, fp.bad_line) == (False, CHUNK - 1, 2)
