"""The upload folders and the spool: naming of partial uploads, watching, claiming complete sets."""

from __future__ import annotations

import secrets

# A file being uploaded lives under this hidden name until the client closes it; it is never
# one of the five names, so the watcher ignores it, and a restart removes abandoned ones.
PARTIAL_PREFIX = ".rosterdrop-partial-"


def partial_name(final_name: str) -> str:
    return f"{PARTIAL_PREFIX}{secrets.token_hex(6)}-{final_name}"


def is_partial(name: str) -> bool:
    return name.startswith(PARTIAL_PREFIX)
