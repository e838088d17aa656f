"""The columnar engine: the careful rules as masks over whole columns (polars, pyarrow).

Rows that every mask passes are plain: their records are built column by column, exactly as
the careful path would build them. Every other row goes down the careful path, in line
order, as does every file the engine cannot read exactly (`parse`). polars and pyarrow are
imported only here and in the store's table loader.
"""

import ctypes
import ctypes.util
import os
import sys

# Set before polars loads (the package is imported before any of its modules):
# two cores per machine, shared with the daemon, so polars must not take them all (its pool
# starts on first use, never in the fork server); and its allocator gives freed pages back
# at once, so an import process keeps within its memory budget rather than every file's peak.
os.environ.setdefault("POLARS_MAX_THREADS", "2")
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:2,dirty_decay_ms:0,muzzy_decay_ms:0")
# polars' import-time CPU-feature probe writes machine code and makes it executable, which
# systemd's MemoryDenyWriteExecute=yes (our unit's) refuses: the import would fail. Skipped,
# a CPU without the wheel's features (AVX2 …) would fault instead of being warned; such a
# machine needs the `polars[rtcompat]` build (README, Installing).
os.environ.setdefault("POLARS_SKIP_CPU_CHECK", "1")

import pyarrow

# glibc's malloc raises its mmap threshold to the largest block freed so far (up to 32 MB):
# after the first big file, blocks of a parse come from the heap and stay in the process's
# RSS once freed. Fixed at its default, every block this big is mapped on its own and given
# back when freed (an import's peak: 382 -> 343 MB, no slower). Set in the fork server, it
# holds in each import process it forks.
MALLOC_MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
if sys.platform == "linux":
    _mallopt = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt", None)
    if _mallopt is not None:  # glibc (musl has none, and no such threshold to raise)
        _mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES)

# pyarrow's own allocator keeps what a parse used; the C library's gives most of it back.
pyarrow.set_memory_pool(pyarrow.system_memory_pool())
