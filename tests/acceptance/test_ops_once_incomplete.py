"""`rosterdrop serve --once` from cron warns a district whose upload has waited too long for the
rest of its set, exactly as the running daemon does (once per set)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from tests.support.drop import District
from tests.support.site import Site


def test_once_sends_the_incomplete_upload_email_once(make_site: Callable[..., Site]) -> None:
    site = make_site(ROSTERDROP_SPOOL_STALE_HOURS="1")
    site.add_tenant("acme", "admin@acme.example.org")
    upload = site.settings.paths.upload_dir("acme")
    files = District("acme", students=3).files()
    two_hours_ago = time.time() - 2 * 3600
    for name in ("schools.csv", "students.csv", "teachers.csv"):  # two files never came
        (upload / name).write_bytes(files[name])
        os.utime(upload / name, (two_hours_ago, two_hours_ago))

    for _ in range(2):  # cron runs it again: one email per set, not one per run
        done = site.cli("serve", "--once")
        assert done.returncode == 0, done.stderr
    [email] = site.emails("incomplete_upload")
    assert email["state"] == "sent"  # the run delivered it (.eml files: no SMTP host here)
    assert site.imports("acme") == []
