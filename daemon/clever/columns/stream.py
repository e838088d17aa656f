"""enrollments.csv a block at a time: its rules need no whole-file view, so its 700,000
rows are never held as columns at once (they were the import's memory peak).

The same checks as `parse.read`, made as the blocks go by: a block the careful reader must
read instead (a parse error, a field over the csv module's limit) ends the stream, as do
the end of the file without the end row (a quote left open) and lines that do not add up;
then `readable` is False and the caller undoes what it staged from the blocks.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from daemon.clever.columns.lines import Refused, RunningLines
from daemon.clever.columns.parse import DECODED, END, options, refused_rows, within_field_limit
from daemon.clever.reader import CsvFile, line_breaks

# pyarrow reads (and the engine checks and stages) this many bytes of the file at a time:
# about 70,000 enrollments, a few MB of columns (1-4 MB: the same peak and speed).
STREAM_BLOCK_BYTES = 2 << 20
# Reads pyarrow may make ahead of the blocks the engine has taken while the engine is busy
# (waiting for a block, it lets pyarrow read as far as that block needs).
READ_AHEAD_BLOCKS = 2


class Source:
    """What `parse.buffered` holds (the file as UTF-8, then the end row), read as pyarrow
    asks for it, so the file is never in memory whole; its lines counted on the way."""

    def __init__(self, f: CsvFile) -> None:
        end = ",".join([END] * f.width).encode()
        self._handle = f.path.open("rb")
        size = f.path.stat().st_size
        last = b""
        if size:
            self._handle.seek(size - 1)
            last = self._handle.read(1)
            self._handle.seek(0)
        # A last row of its own when the file ends cleanly; swallowed into the last value
        # when a quote is left open at the end, which the careful reader reports.
        self._tail: bytes | None = end if last and last in b"\r\n" else b"\n" + end
        self._decoder = (
            None if f.encoding == "utf-8-sig" else codecs.getincrementaldecoder(f.encoding)()
        )
        self._breaks = 0
        self._last = last
        self._cr = False  # the text read so far ends with CR
        # Whether the text read so far (pyarrow reads ahead of the records it gives) holds
        # a quote: until one comes, no value can hold a line break.
        self.quoted = False
        self.closed = False
        # pyarrow reads on a thread of its own, as far ahead as it can (the whole file before
        # the first block is out): held to READ_AHEAD_BLOCKS reads beyond the blocks taken,
        # except while the engine waits for the next block (a record may span more reads).
        self._turn = threading.Condition()
        self._reads = 0
        self._taken = 0
        self._waiting = False

    @contextmanager
    def awaited(self) -> Iterator[None]:
        """Around the engine's wait for the next block: pyarrow reads freely meanwhile."""
        with self._turn:
            self._waiting = True
            self._turn.notify_all()
        try:
            yield
        finally:
            with self._turn:
                self._waiting = False

    def took(self) -> None:
        """The engine has taken a block: pyarrow may read one more."""
        with self._turn:
            self._taken += 1
            self._turn.notify_all()

    @property
    def lines(self) -> int:
        """The file's lines, once it is read through (as `lines.physical_lines`)."""
        return self._breaks + (0 if self._last and self._last in b"\r\n" else 1)

    def read(self, size: int = -1) -> bytes:
        with self._turn:
            # Never a deadlock: the engine either takes a block (one more read) or waits
            # for one (any read); a closed stream waits for nothing.
            self._turn.wait_for(
                lambda: (
                    self._waiting or self.closed or self._reads - self._taken < READ_AHEAD_BLOCKS
                )
            )
            self._reads += 1
        data = self._handle.read(size)
        if self._decoder is not None:  # one byte a character: any cut decodes alike
            data = self._decoder.decode(data, final=not data).encode("utf-8")
        if data:
            crlf = data.count(b"\r\n") + (1 if self._cr and data[:1] == b"\n" else 0)
            self._breaks += data.count(b"\n") + data.count(b"\r") - crlf
            self._cr = data[-1:] == b"\r"
            self.quoted = self.quoted or b'"' in data
            return data
        tail, self._tail = self._tail or b"", None
        return tail

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        with self._turn:  # a read held back goes on, and finds the file closed
            self.closed = True
            self._turn.notify_all()
        self._handle.close()


class Blocks:
    """The file's records of the header's width, a frame per block (columns `c{i}`, `line`,
    `blank` as `parse.Parsed`); once read through, what `Parsed` says of the rest."""

    def __init__(self, f: CsvFile, source: Source) -> None:
        self.f = f
        self._source: Source | None = source
        self.readable = False
        self.rows = 0  # data rows, blank ones left out
        self.refused: list[tuple[int, list[str]]] = []  # (line, values), not blank
        self.blank_rows = 0
        self.first_blank_line: int | None = None
        # Rows of another width, as pyarrow's threads hand them over (under the lock).
        self._odd: list[object] = []
        self._odd_lock = threading.Lock()
        self._set_aside: list[tuple[int, list[str]]] = []  # (record, values)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        if self._source is None:
            return
        source, self._source = self._source, None
        end = (END,) * self.f.width
        lines, ended = RunningLines(), False
        try:
            with source.awaited():  # opening reads the first block
                reader = pacsv.open_csv(
                    source,
                    **options(
                        self.f.width, self._wrong_width, threads=False, block=STREAM_BLOCK_BYTES
                    ),
                )
            while True:
                with source.awaited():
                    batch = next(reader, None)
                if batch is None:
                    break
                source.took()
                frame = pl.from_arrow(batch)
                del batch
                assert isinstance(frame, pl.DataFrame)
                if ended:  # rows after the end row: not a file pyarrow reads as csv does
                    return
                if frame.height and frame.row(-1) == end:
                    frame, ended = frame.slice(0, frame.height - 1), True
                refused = self._refused()
                if refused is None or not within_field_limit(frame, []):
                    return
                at = lines.block(frame, refused, quoted=source.quoted)
                block = self._blanks_marked(frame.with_columns(at))
                self.rows += block.height - int(block.get_column("blank").sum())
                yield block
        except (pa.ArrowException, ValueError):  # UnicodeDecodeError too
            return
        finally:
            source.close()
        refused = self._refused()
        if not ended or refused is None:
            return
        placed = lines.finish(refused, source.lines)
        if placed is None or not within_field_limit(pl.DataFrame(), self._set_aside):
            return
        for line, (_, fields) in zip(placed, self._set_aside, strict=True):
            if any(fields):
                self.refused.append((line, fields))
            else:
                self._blank(line)
        self.rows += len(self.refused)
        self.readable = True

    def _wrong_width(self, row: object) -> str:
        """pyarrow's invalid-row handler: called on pyarrow's threads, while the engine reads
        the rows set aside before."""
        with self._odd_lock:
            self._odd.append(row)
        return "skip"

    def _refused(self) -> list[Refused] | None:
        """Every row set aside so far (pyarrow's reader is single-threaded: it knows their
        numbers), or None when one cannot be placed."""
        with self._odd_lock:
            odd, self._odd = self._odd, []
        if odd:
            more = refused_rows(odd)
            if more is None:
                return None
            self._set_aside += more
        return [Refused(n, line_breaks(v)) for n, v in self._set_aside]

    def _blanks_marked(self, frame: pl.DataFrame) -> pl.DataFrame:
        blank = frame.select(pl.all_horizontal(pl.exclude("line") == "").alias("blank"))
        blank_lines = frame.get_column("line").filter(blank.to_series())
        if blank_lines.len():
            self._blank(int(blank_lines.min()))  # type: ignore[arg-type]
            self.blank_rows += blank_lines.len() - 1
        return frame.with_columns(blank.to_series())

    def _blank(self, line: int) -> None:
        self.blank_rows += 1
        if self.first_blank_line is None or line < self.first_blank_line:
            self.first_blank_line = line


def stream(f: CsvFile) -> Blocks | None:
    """The file's blocks, or None when the careful reader must read it (before any block)."""
    if f.header_line != 1 or f.encoding not in DECODED:
        return None
    try:
        source = Source(f)
    except OSError:  # the careful reader says what is wrong
        return None
    return Blocks(f, source)
