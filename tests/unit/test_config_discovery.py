"""Which settings file a command reads: --config, else $ROSTERDROP_CONFIG, else the packaged
/etc/rosterdrop/rosterdrop.toml when it exists (what the daemon's unit reads), else none."""

from __future__ import annotations

from pathlib import Path

from daemon.config import CONFIG_ENV, DEFAULT_CONFIG_FILE, config_file_in_use, load_settings


def test_the_lookup_order(tmp_path: Path) -> None:
    packaged = tmp_path / "etc" / "rosterdrop.toml"
    named = tmp_path / "named.toml"
    given = tmp_path / "given.toml"
    env = {CONFIG_ENV: str(named)}
    assert config_file_in_use(None, {}, packaged) is None  # not there: embedded defaults
    packaged.parent.mkdir()
    packaged.write_text('data_dir = "/srv/roster"\n')
    assert config_file_in_use(None, {}, packaged) == packaged
    assert config_file_in_use(None, env, packaged) == named
    assert config_file_in_use(given, env, packaged) == given
    assert load_settings(None, {}, packaged).data_dir == Path("/srv/roster")
    assert Path("/etc/rosterdrop/rosterdrop.toml") == DEFAULT_CONFIG_FILE
