"""polars and pyarrow load only when the columnar engine runs: the daemon, the CLI and an
identical upload (found before validation) never pay for them; the fork server preloads them."""

from __future__ import annotations

import os
import subprocess
import sys


def _probe(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "POLARS_MAX_THREADS"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def test_the_daemon_and_the_pipeline_import_without_polars_or_pyarrow() -> None:
    loaded = _probe(
        "import sys, daemon.cli, daemon.service, daemon.pipeline, daemon.clever.validate;"
        " print(sorted(m for m in ('polars', 'pyarrow') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_the_fork_server_preloads_them_with_polars_capped_at_two_threads() -> None:
    """And PostgreSQL's driver, which an import process would otherwise import to connect."""
    loaded = _probe(
        "import os, sys, daemon.runner;"
        " [__import__(m) for m in daemon.runner.PRELOAD];"
        " print('polars' in sys.modules, 'pyarrow' in sys.modules, 'psycopg' in sys.modules,"
        " os.environ['POLARS_MAX_THREADS'])"
    )
    assert loaded.split() == ["True", "True", "True", "2"]
