"""Loading a whole pyarrow table of staged records at once (the columnar engine's output).

PostgreSQL takes it as CSV through `COPY … FROM STDIN` in big chunks: CSV is what pyarrow
writes in C, and COPY's CSV format tells NULL (nothing) from '' (`""`), as the tuples of the
careful path do. SQLite takes it through `executemany` in key order, on the pipeline's own
`sqlite3` connection: one SQLite library per process, one transaction for the whole import.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Rows per COPY write (a few MB of CSV) and per executemany batch (as Python objects: kept
# small, a batch costs memory while it is inserted).
LOAD_CHUNK_ROWS = 50_000
SQLITE_CHUNK_ROWS = 10_000


def load(conn: Connection, table: sa.Table, records: pa.Table, key: tuple[str, ...]) -> None:
    """Append `records` (columns named as the table's) to the staging table `table`."""
    if records.num_rows == 0:
        return
    names = [
        c.name for c in table.columns if c.name in key or not _left_out(table, records, c.name)
    ]
    records = records.select(names)
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)"
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for batch in records.to_batches(LOAD_CHUNK_ROWS):
                out = io.BytesIO()
                pacsv.write_csv(batch, out, options)
                copy.write(out.getbuffer())
        return
    # In key order each row lands at the end of the index built on the stage later.
    records = records.sort_by([(k, "ascending") for k in key])
    marks = ", ".join("?" * len(names))
    insert = f"INSERT INTO temp.{table.name} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
    for batch in records.to_batches(SQLITE_CHUNK_ROWS):
        raw.executemany(insert, zip(*(column.to_pylist() for column in batch.columns), strict=True))


def _left_out(table: sa.Table, records: pa.Table, name: str) -> bool:
    """Whether every record's value of `name` is what the table gives a row without it: null
    in a column without a default (a plain record's `kept`), false in `held` (its default).
    Binding those values took 40 % of SQLite's inserts."""
    values, default = records.column(name), table.c[name].server_default
    if values.null_count == len(values):
        return default is None
    held = name == "held" and default is not None  # its default: false
    # true_count, not pyarrow.compute: that module alone weighs 9 MB in every process
    return held and values.null_count == 0 and not any(c.true_count for c in values.chunks)
