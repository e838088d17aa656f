"""The columnar engine: the careful rules as masks over whole columns (polars, pyarrow).

Rows that every mask passes are plain: their records are built column by column, exactly as
the careful path would build them. Every other row goes down the careful path, in line
order, as does every file the engine cannot read exactly (`parse`). polars and pyarrow are
imported only here and in the store's table loader.
"""

import os

# Set before polars loads (the package is imported before any of its modules):
# two cores per machine, shared with the daemon, so polars must not take them all (its pool
# starts on first use, never in the fork server); and its allocator gives freed pages back
# at once, so an import process keeps within its memory budget rather than every file's peak.
os.environ.setdefault("POLARS_MAX_THREADS", "2")
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:2,dirty_decay_ms:0,muzzy_decay_ms:0")

import pyarrow

# pyarrow's own allocator keeps what a parse used; the C library's gives most of it back.
pyarrow.set_memory_pool(pyarrow.system_memory_pool())
