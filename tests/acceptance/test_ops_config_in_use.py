"""An operator can always tell which settings, data directory and database a command uses:
`-v` says so on stderr, `config check` names the file, and a command run from the wrong
directory says where it would create a brand-new database instead of doing it silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.process import environment


def rosterdrop(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_verbose_names_the_settings_file_data_directory_and_database(tmp_path: Path) -> None:
    config = tmp_path / "rosterdrop.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    env = {"ROSTERDROP_CONFIG": str(config)}
    first = rosterdrop(tmp_path, env, "-v", "tenant", "list")
    assert first.returncode == 0, first.stderr
    database = tmp_path / "data" / "rosterdrop.db"
    assert (
        f"settings from {config}; data directory {tmp_path / 'data'};"
        f" database sqlite:///{database} (does not exist yet)"
    ) in first.stderr
    assert f"creating a new database at {database}" in first.stderr

    checked = rosterdrop(tmp_path, env, "config", "check")
    assert checked.returncode == 0, checked.stderr
    shown = json.loads(checked.stdout)
    assert (shown["config_file"], shown["data_dir"]) == (str(config), str(tmp_path / "data"))
    assert shown["database_url"] == f"sqlite:///{database}"


def test_a_command_run_elsewhere_says_where_it_creates_a_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    result = rosterdrop(elsewhere, {}, "imports", "list")
    assert result.returncode == 0, result.stderr
    assert f"creating a new database at {elsewhere / 'var' / 'rosterdrop.db'}" in result.stderr
    shown = json.loads(rosterdrop(elsewhere, {}, "config", "check").stdout)
    assert shown["config_file"] is None


def test_the_sample_district_script_runs_as_the_readme_says(tmp_path: Path) -> None:
    repo = Path(__file__).parents[2]
    result = subprocess.run(
        ["bench/district.py", str(tmp_path / "sample"), "--students", "40"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "sample").glob("*.csv"))) == 5
