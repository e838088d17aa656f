"""An import process that cannot finish says so in one JSON log line, and exits for a retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon import worker
from daemon.config import load_settings
from tests.support.process import free_port


@pytest.mark.usefixtures("own_logging")
def test_a_database_that_went_away_is_one_json_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        None,
        {
            "ROSTERDROP_DATA_DIR": str(tmp_path),
            # Nothing listens there: the server stopped between the claim and this process.
            "ROSTERDROP_DATABASE_URL": f"postgresql+psycopg://rd@127.0.0.1:{free_port()}/rd",
            "ROSTERDROP_LOG_FORMAT": "json",
        },
    )

    with pytest.raises(SystemExit) as exited:
        worker.run_import(settings, 7)

    assert exited.value.code == 1
    [line] = [json.loads(raw) for raw in capsys.readouterr().err.splitlines()]
    assert (line["event"], line["level"]) == ("import process failed", "error")
    assert line["import_id"] == 7
    assert "exception" not in line, "a known failure needs no traceback"
