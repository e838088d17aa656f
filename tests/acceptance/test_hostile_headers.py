"""Files built to hurt the importer: an absurd header costs one fatal problem and bounded
memory, whatever its size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.clever import minimal_files, write_upload

pytestmark = pytest.mark.slow
MAX_RSS_MB = 300
# `rosterdrop validate` in a process of its own, reporting its peak memory as it exits. Its
# own: VmHWM, not ru_maxrss, which Linux carries over exec from the forking process (a pytest
# worker grown to 370 MB by earlier tests made this test fail without any fault of its own).
MEASURED = (
    "import atexit, re, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('maxrss_kb', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "from daemon.cli import main\n"
    "sys.argv = ['rosterdrop', 'validate', '--json', sys.argv[1]]\n"
    "main()\n"
)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("school_id,school_name," + "x," * 1_000_000, id="a-million-repeated-names"),
        pytest.param(
            "school_id,school_name," + ",".join(f"c{n}" for n in range(700_000)),
            id="700k-extra-columns",
        ),
    ],
)
def test_an_absurd_header_is_one_fatal_problem_in_bounded_memory(
    tmp_path: Path, header: str
) -> None:
    folder = write_upload(tmp_path / "upload", minimal_files())
    (folder / "schools.csv").write_text(f"{header}\nSCH1,Lincoln\n")

    result = subprocess.run(
        [sys.executable, "-c", MEASURED, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["problem_totals"] == {"fatal": 1, "error": 0, "warning": 0}
    assert [p["code"] for p in report["problems"]] == ["too_many_columns"]
    assert len(result.stdout) < 10_000
    [peak] = [int(line.split()[1]) for line in result.stderr.splitlines() if "maxrss_kb" in line]
    assert peak / 1024 <= MAX_RSS_MB
