"""Background tasks outlive a shortage of file descriptors instead of stopping the service."""

from __future__ import annotations

import errno

import pytest

from daemon import tasks
from daemon.tasks import resilient


async def test_a_task_out_of_descriptors_backs_off_and_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "RESOURCE_RETRY_SECONDS", 0.01)
    failures = [errno.EMFILE, errno.ENFILE]

    async def scan() -> str:
        if failures:
            raise OSError(failures.pop(0), "Too many open files")
        return "scanned"

    assert await resilient("uploads", scan) == "scanned"
    assert failures == []


async def test_other_errors_still_end_the_task() -> None:
    async def scan() -> None:
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):
        await resilient("uploads", scan)
