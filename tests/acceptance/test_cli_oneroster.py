"""`rosterdrop validate` and `rosterdrop import` take a OneRoster folder or its zip, as the
real command, and `tenant set --input-format` pins a tenant to a format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.support.oneroster import FIXTURES, zip_folder
from tests.support.site import Site

EXIT_REFUSED = 1


def test_validate_reads_a_folder_and_a_zip_alike_with_no_database(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    loose = site.cli("validate", str(FIXTURES / "v1.1"), "--json")
    zipped = site.cli(
        "validate", str(zip_folder(FIXTURES / "v1.1", tmp_path / "set.zip")), "--json"
    )
    assert (loose.returncode, zipped.returncode) == (0, 0), loose.stderr + zipped.stderr
    assert json.loads(loose.stdout) == json.loads(zipped.stdout)
    report = json.loads(loose.stdout)
    assert report["ok"] is True
    assert report["files"]["users.csv (students)"] == {"rows": 4, "errors": 0, "warnings": 0}
    readable = site.cli("validate", str(FIXTURES / "v1.2"))
    assert readable.returncode == 0
    assert "OK: the upload is valid" in readable.stdout
    assert "enrollments.csv (teachers)" in readable.stdout


def test_validate_names_the_broken_sets_rows_and_refuses(make_site: Callable[..., Site]) -> None:
    done = make_site().cli("validate", str(FIXTURES / "broken"))
    assert done.returncode == EXIT_REFUSED
    assert "12 error(s): those rows would be skipped" in done.stdout
    assert (
        "error: enrollments.csv:11 column primary: a second primary teacher for class 'CL1'"
        in done.stdout
    )


def test_import_takes_a_zip_and_the_listing_says_oneroster(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    site.add_tenant("sakura", "admin@sakura.example")
    zipped = zip_folder(FIXTURES / "v1.2", tmp_path / "sakura.zip")
    done = site.cli("import", str(zipped), "--tenant", "sakura")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("import #1 for sakura: imported\n  format: OneRoster CSV\n")
    listed = site.cli("imports", "list", "--json")
    assert [r["source_format"] for r in json.loads(listed.stdout)] == ["oneroster"]
    assert zipped.exists()  # the CLI copies what it imports


def test_a_tenant_pinned_to_clever_refuses_a_oneroster_zip(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    site.add_tenant("pinned", "admin@pinned.example")
    changed = site.cli("tenant", "set", "pinned", "--input-format", "clever")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["settings"]["input_format"] == "clever"
    zipped = zip_folder(FIXTURES / "v1.1", tmp_path / "set.zip")
    done = site.cli("import", str(zipped), "--tenant", "pinned")
    assert done.returncode == 2
    assert "is a file: give a folder" in done.stderr
    done = site.cli("import", str(FIXTURES / "v1.1"), "--tenant", "pinned")
    assert done.returncode == EXIT_REFUSED
    assert "schools.csv is missing: all five files are required" in done.stdout
    bad = site.cli("tenant", "set", "pinned", "--input-format", "excel")
    assert bad.returncode == 2
