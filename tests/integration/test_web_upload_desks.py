"""Choose Files' "one check per tenant" between the processes that share a data directory
(`rosterdrop serve` and `rosterdrop web`): two UploadDesks on one folder, and a second real
process, as the two listeners are."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.errors import UploadRefused
from daemon.web.uploads import FILES_DIR, UploadDesk

NOW = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)
# Another process takes north's check slot with the same code, says so, and holds it until
# its standard input closes.
HOLDER = """
import sys
from datetime import datetime, UTC
from pathlib import Path
from daemon.web.uploads import CheckSlots
slots = CheckSlots(Path(sys.argv[1]))
slots.take("north", "web-host-admin", datetime(2026, 9, 7, 6, 1, tzinfo=UTC))
print("held", flush=True)
sys.stdin.read()
"""


def desk(settings: Settings) -> UploadDesk:
    return UploadDesk(settings.paths, settings.web, DryRunner(settings), lambda _t, _i: None)


def test_a_check_running_in_one_desk_is_refused_and_kept_by_the_other(settings: Settings) -> None:
    serve, web = desk(settings), desk(settings)  # rosterdrop serve and rosterdrop web
    serve.slots.take("north", "north-admin", NOW)
    incoming = serve.incoming("north")  # a 100,000-student check takes ~27 s
    with pytest.raises(UploadRefused) as refused:
        web.slots.take("north", "other-admin", NOW)
    assert refused.value.status == 409
    assert str(refused.value).startswith(
        "north-admin is already uploading or processing north's files (since 06:00:00 UTC)"
    )
    web.slots.take("south", "south-admin", NOW)  # another tenant is not held up
    web.slots.give_back("south")
    web.sweep()
    assert (incoming / FILES_DIR).is_dir()  # the other process's sweep leaves it alone
    serve.slots.give_back("north")
    web.sweep()
    assert not incoming.exists()  # its check is over (a restart cut it short): swept
    web.slots.take("north", "other-admin", NOW)  # and the slot is free again
    web.slots.give_back("north")


def test_a_second_process_holds_the_tenant_until_it_ends(settings: Settings) -> None:
    root = settings.paths.web_uploads
    here = desk(settings)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdin is not None
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UploadRefused, match=r"^web-host-admin is already uploading") as busy:
            here.slots.take("north", "north-admin", NOW)
        assert "(since 06:01:00 UTC)" in str(busy.value)
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    here.slots.take("north", "north-admin", NOW)  # a process that ended holds nothing
    here.slots.give_back("north")
