"""What the SFTP server tells the rest of the daemon about files in a tenant's upload folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

UploadKind = Literal["started", "published", "aborted", "removed", "renamed"]


@dataclass(frozen=True)
class UploadEvent:
    tenant: str
    kind: UploadKind
    path: Path  # host path of the final file name inside the tenant's upload dir


# Called on the event loop thread: it must be cheap and must not raise.
EventSink = Callable[[UploadEvent], None]
