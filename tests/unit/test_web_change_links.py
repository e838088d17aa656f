"""Where the import's page and the confirmation link into the change browser (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from daemon.roster.outcome import ImportState
from daemon.roster.plan import EntityChanges
from daemon.store.imports import ImportRecord
from daemon.web.views.changes import approval_lists, figure_href

WHEN = datetime(2026, 9, 7, tzinfo=UTC)


def test_each_count_of_the_per_file_table_links_to_its_entity_and_kind() -> None:
    assert figure_href(4, "students.csv", "deactivated") == (
        "/imports/4/changes?entity=students&kind=deactivate#records"
    )
    assert figure_href(4, "sections.csv", "updated") == (
        "/imports/4/changes?entity=sections&kind=update#records"
    )
    assert figure_href(4, "sections.csv (section teacher assignments)", "added") == (
        "/imports/4/changes?entity=section_teachers&kind=add#records"
    )
    assert figure_href(4, "students.csv", "held").endswith("kind=held#records")
    assert figure_href(4, "students.csv", "unchanged") is None  # no list of those
    assert figure_href(4, "students.csv", "errors") is None
    assert figure_href(4, "notes.txt", "added") is None


def test_the_confirmation_names_every_list_an_approval_applies_destructive_first() -> None:
    counts = {
        "students": EntityChanges(deactivated=600, added=1, held=1).as_dict(),
        "enrollments": EntityChanges(deactivated=4200, held=2).as_dict(),
    }
    record = ImportRecord(7, 1, "acme", ImportState.PAUSED, "sftp", WHEN, WHEN, counts=counts)
    assert [text for text, _ in approval_lists(record)] == [
        "600 students to deactivate",
        "4,200 enrollments to deactivate",
        "1 student to add",
        "1 student held as it is",
        "2 enrollments held as they are",
    ]
    assert approval_lists(record)[0][1] == (
        "/imports/7/changes?entity=students&kind=deactivate#records"
    )
