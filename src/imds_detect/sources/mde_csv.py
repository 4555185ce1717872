"""Defender/Sentinel CSV exports: the rows of the file, to events (the row mapping is :func:`.mde.event_from_row`).

The reference reading is ``csv.reader(strict=True)`` over the file's lines (UTF-8, a BOM at the start dropped,
bad bytes replaced), one row at a time: blank lines pass, the first row is the header, a row of another width or
one csv.reader refuses is reported with its first line, and - unless the scan is exhaustive - a row whose text
cannot mention metadata (the detections' own necessary condition, :func:`.could_mention_metadata`) is counted
without being parsed.

The fast reading gives exactly the same events, skips, numbers and counts without csv.reader on every row. It
works on blocks of bytes: the C splitter (:mod:`.csv_records`) cuts them into the records csv.reader would read,
as long as they are plain; one scan of the block (:func:`.mention_ends`) marks the records that could mention
metadata; only those are decoded, gated exactly as above and parsed. The header, any record that is not plain,
not whole in the data read, or longer than csv.reader's field limit, goes through the reference step, one row,
and the cut resumes after it. It is used when the C extensions are built. When a relative --since/--until needs
the time of every row, the first column of the rows cleared unread is read too (Defender and Sentinel exports
put the time first); with the time in another column, every row goes through the reference step.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..engine.lines import newlines_before
from ..knowledge.indicators import could_mention_metadata, mention_ends
from ..model import Event
from .base import ReadCounts, Skip, SkipSink
from .csv_records import NATIVE_RECORDS
from .mde import RAW_LIMIT, _column_name, _NewestTime, _short, event_from_row

READ_BYTES = 4 << 20  # bytes read at a time by the fast reading
_CSV_COLUMNS = frozenset(("Timestamp", "TimeGenerated", "ActionType", "DeviceName", "DeviceId", "Type"))
_STOP = object()  # the header is not a Defender one: the file is not read further


class _Chain(io.RawIOBase):
    """A readable raw stream: bytes already read, then the rest of another stream (left open)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head.nbytes:
            count = min(len(view), self._head.nbytes)
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _noting(lines: Iterable[str], pending: list[str]) -> Iterator[str]:
    """`lines`, each appended to `pending` as it is given (csv.reader takes as many as its row needs)."""
    for line in lines:
        pending.append(line)
        yield line


@dataclass
class _Rows:
    """What reading the rows has established so far, and the reference step for one row."""

    file: str
    on_skip: SkipSink
    counts: ReadCounts | None
    header: list[str] | None = None
    width: int = 0
    time_columns: list[int] = field(default_factory=list)
    next_line: int = 1  # of the next row's first line
    record: int = 0  # rows (not blank lines, not the header) before the next one
    times: _NewestTime = field(default_factory=_NewestTime)

    @property
    def gate(self) -> bool:
        return self.counts is not None and not self.counts.exhaustive

    def step(self, lines: Iterable[str]) -> Event | object | None:
        """Read one row from `lines` (the file's next physical lines, consumed only as far as the row goes) as
        csv.reader does, and settle it (see :meth:`settle`); StopIteration at the end of the lines."""
        pending: list[str] = []
        return self.settle(csv.reader(_noting(lines, pending), strict=True), pending)

    def settle(self, reader: Iterator[list[str]], pending: list[str]) -> Event | object | None:
        """The next row of `reader`, whose lines it appends to `pending` (cleared here): its event; None (a blank
        line, the header, a skip, a row cleared by the gate); _STOP; or StopIteration at the end."""
        first = self.next_line
        try:
            row = next(reader)
        except csv.Error as exc:
            self.next_line += max(len(pending), 1)
            pending.clear()
            if "unexpected end of data" in str(exc):
                self.on_skip(Skip("truncated-csv", self.file, first, "unterminated quoted field at end of file"))
            else:
                self.on_skip(Skip("csv-error", self.file, first, _short(exc)))
            if self.header is not None:
                self.record += 1
            return None
        self.next_line += len(pending)
        text = "".join(pending)
        pending.clear()
        if not row:  # blank line
            return None
        if self.header is None:
            self.header = [_column_name(cell) for cell in row]
            self.width = len(self.header)
            self.time_columns = [self.header.index(name) for name in ("Timestamp", "TimeGenerated")
                                 if name in self.header]
            if not _CSV_COLUMNS.intersection(self.header):  # (only when forced: detection checks the columns)
                self.on_skip(Skip("not-defender-csv", self.file, first, "the header row names none of the Defender "
                                  "columns (Timestamp, ActionType, DeviceName ...): the file was not read as CSV rows"))
                return _STOP
            return None
        if len(row) != self.width:
            self.on_skip(Skip("csv-field-count", self.file, first, f"{len(row)} fields, header has {self.width}"))
            self.record += 1
            return None
        return self.take(row, text, first)

    @staticmethod
    def read_one(step: Callable[[], Event | object | None]) -> tuple[bool, Event | None]:
        """`step` (:meth:`step` or :meth:`settle`) as (whether there may be more rows, the row's event if any)."""
        try:
            outcome = step()
        except StopIteration:
            return False, None
        return outcome is not _STOP, outcome if isinstance(outcome, Event) else None

    def take(self, row: list[str], text: str, first: int) -> Event | None:
        """A row of the header's width, read from `text` (its lines) starting at line `first`: gated or parsed."""
        record = self.record
        self.record += 1
        if self.gate and not could_mention_metadata(text):
            assert self.counts is not None
            self.counts.records += 1
            for column in self.time_columns[:1]:
                self.times.see(row[column])
            return None
        assert self.header is not None
        event = event_from_row(dict(zip(self.header, row, strict=True)), self.file, first, record, self.on_skip)
        if event is not None:
            event.raw = text.rstrip("\r\n")[:RAW_LIMIT]
        return event


def parse_csv(head: bytes, stream: BinaryIO, file: str, on_skip: SkipSink,
              counts: ReadCounts | None = None) -> Iterator[Event]:
    """The rows of a CSV export. With `counts` (not exhaustive), a row whose text cannot mention metadata is counted
    and not parsed; the fast reading is used when it can be (see the module's docstring)."""
    rows = _Rows(file, on_skip, counts)
    if rows.gate and counts is not None and NATIVE_RECORDS is not None and mention_ends(b"") is not None:
        yield from _FastReading(head, stream, rows, counts.needs_newest).events()
    else:
        yield from _reference_reading(head, stream, rows)
    if counts is not None:
        counts.newest = rows.times.newest()


def _reference_reading(head: bytes, stream: BinaryIO, rows: _Rows) -> Iterator[Event]:
    text = io.TextIOWrapper(
        io.BufferedReader(_Chain(head, stream)), encoding="utf-8-sig", errors="replace", newline="\n"
    )
    pending: list[str] = []  # the lines of the row being read (one csv.reader for the whole file)
    reader = csv.reader(_noting(text, pending), strict=True)
    while True:
        going_on, event = rows.read_one(lambda: rows.settle(reader, pending))
        if event is not None:
            yield event
        if not going_on:
            return


class _FastReading:
    """The fast reading over the bytes of `head` and then of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO, rows: _Rows, needs_newest: bool) -> None:
        self.needs_newest = needs_newest  # the time of every row is needed (read from the first column)
        self.data = head
        self.position = 0  # of the next row in `data`
        self.stream = stream
        self.ended = False
        self.rows = rows
        self.field_limit = csv.field_size_limit()
        while len(self.data) < len(codecs.BOM_UTF8) and codecs.BOM_UTF8.startswith(self.data) and self._read():
            pass  # (a file that is only the start of a BOM decodes to nothing)
        if codecs.BOM_UTF8.startswith(self.data) or self.data.startswith(codecs.BOM_UTF8):
            self.data = self.data[len(codecs.BOM_UTF8):]

    def events(self) -> Iterator[Event]:
        rows = self.rows
        while True:
            if rows.header is not None and (not self.needs_newest or rows.time_columns[:1] in ([], [0])):
                taken = yield from self._plain_rows()
                if taken:
                    continue
                if not self.ended and len(self.data) - self.position < READ_BYTES and self._read():
                    continue  # the row at `position` may only be cut short: with more bytes, it may be plain
            going_on, event = rows.read_one(lambda: rows.step(self._lines()))
            if event is not None:
                yield event
            if not going_on:
                return

    def _read(self) -> bool:
        """Read more bytes after those not yet taken; False at the end of the stream."""
        chunk = self.stream.read(READ_BYTES)
        if not chunk:
            self.ended = True
            return False
        self.data = self.data[self.position:] + chunk
        self.position = 0
        return True

    def _lines(self) -> Iterator[str]:
        """The physical lines from `position` on, decoded as the reference reading decodes them; `position` is after
        each line given."""
        while True:
            newline = self.data.find(b"\n", self.position)
            while newline < 0:
                searched = len(self.data) - self.position
                if self.ended or not self._read():
                    if self.position < len(self.data):
                        line = self.data[self.position:]
                        self.position = len(self.data)
                        yield line.decode("utf-8", "replace")
                    return
                newline = self.data.find(b"\n", self.position + searched)
            line = self.data[self.position: newline + 1]
            self.position = newline + 1
            yield line.decode("utf-8", "replace")

    def _plain_rows(self) -> Generator[Event, None, int]:
        """Take the plain records from `position` on (up to the last whole line read); returns how many."""
        data, start, rows = self.data, self.position, self.rows
        assert NATIVE_RECORDS is not None
        ends, blanks, _ = NATIVE_RECORDS(data, start, data.rfind(b"\n", start) + 1 or start, rows.width)
        ends = self._within_field_limit(start, ends)
        if not ends:
            return 0
        blanks = blanks[: bisect_left(blanks, len(ends))]
        stop = ends[-1]
        segment = data[start:stop]
        marks = mention_ends(segment)
        assert marks is not None
        relative = [end - start for end in ends]
        candidates = sorted({bisect_right(relative, mark - 1) for mark in marks if mark > 0})
        candidates = [index for index in candidates if index < len(ends)]
        starts = [relative[index - 1] if index else 0 for index in candidates]
        lines_before, lines = newlines_before(segment, starts)
        first_line, first_record = rows.next_line, rows.record
        for index, offset, before in zip(candidates, starts, lines_before, strict=True):
            blank_before = bisect_left(blanks, index)
            if blank_before < len(blanks) and blanks[blank_before] == index:
                continue
            text = segment[offset: relative[index]].decode("utf-8", "replace")
            rows.record = first_record + index - blank_before
            row = next(csv.reader((text,), strict=True))
            event = rows.take(row, text, first_line + before)
            if event is not None:
                yield event
        rows.record = first_record + len(ends) - len(blanks)
        rows.next_line = first_line + lines
        blank_set = set(blanks)
        parsed_or_gated = sum(1 for index in candidates if index not in blank_set)
        if self.needs_newest and rows.time_columns:  # the rows cleared unread still count for the newest time
            skipped = blank_set.union(candidates)
            see = rows.times.see
            for index, end in enumerate(ends):
                if index not in skipped:
                    see(_first_field(data, ends[index - 1] if index else start, end))
        if rows.counts is not None:
            rows.counts.records += len(ends) - len(blanks) - parsed_or_gated  # (the others counted themselves)
        self.position = stop
        return len(ends)

    def _within_field_limit(self, start: int, ends: list[int]) -> list[int]:
        """`ends` up to the first record longer than csv.reader's field limit (that one is read by the reference
        step, which reports it as csv.reader does)."""
        if not ends or max(map(operator.sub, ends, [start, *ends[:-1]])) <= self.field_limit:
            return ends
        previous = start
        for index, end in enumerate(ends):
            if end - previous > self.field_limit:
                return ends[:index]
            previous = end
        return ends


def _first_field(data: bytes, start: int, end: int) -> str:
    """The first field of the plain record ``data[start:end]``, as csv.reader gives it."""
    if data[start] == 0x22:  # quoted: up to the quote that is not doubled
        close = data.find(b'"', start + 1)
        while data[close + 1] == 0x22:
            close = data.find(b'"', close + 2)
        return data[start + 1: close].replace(b'""', b'"').decode("utf-8", "replace")
    stop = data.find(b",", start, end)
    if stop < 0:  # one field: up to the line ending
        stop = end - 2 if data[end - 2] == 0x0D else end - 1
    return data[start: stop].decode("utf-8", "replace")
