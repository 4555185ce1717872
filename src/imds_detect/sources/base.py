"""What every source adapter provides, and how it reports records it could not use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from ..model import Event


@dataclass(slots=True)
class Skip:
    """A record that was read but not used, and why. Nothing is dropped without one."""

    reason: str  # short, stable category: "malformed-json", "bad-timestamp", "unknown-table", ...
    file: str
    line: int  # 1-based
    detail: str = ""

    def message(self) -> str:
        """One line for stderr; a long detail (it may quote hostile input) is cut to DETAIL_CHARS."""
        text = self.detail
        if len(text) > DETAIL_CHARS:
            text = f"{text[:DETAIL_CHARS]}... ({len(text)} chars)"
        detail = f": {text}" if text else ""
        return f"{self.file}:{self.line}: skipped ({self.reason}){detail}"


DETAIL_CHARS = 200  # of a skip's detail shown in a message


SkipSink = Callable[[Skip], None]


class SourceAdapter(Protocol):
    """A log format: recognises itself from the first bytes of a file and parses it into events."""

    name: str  # the value of --format, e.g. "mde"

    def sniff(self, head: bytes) -> bool:
        """Whether a file starting with `head` (up to 64 KiB, already decompressed) is in this format."""
        ...

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file, in file order. Unusable records go to `on_skip`, never silently away."""
        ...


@dataclass(slots=True)
class ReadCounts:
    """What a multi-line format read: its own records (e.g. audit record lines), most of which build no
    event. Skipped records are among them."""

    exhaustive: bool = False  # set by the caller: build every event, no shortcut (--no-prefilter)
    needs_newest: bool = True  # set by the caller: `newest` is needed (a relative --since/--until)
    records: int = 0
    newest: datetime | None = None  # the newest time of events the adapter judged harmless without building them


class CountingSource(SourceAdapter, Protocol):
    """A format whose records are not one event each (auditd: many lines make one event, most events are
    of no interest): it counts what it read so that the summary does not call a busy log empty."""

    def parse_counted(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        """As :meth:`SourceAdapter.parse`, adding every record read to `counts`."""
        ...


class LineSource(SourceAdapter, Protocol):
    """A format with one record per line: the engine may prefilter raw lines and parse only candidates.

    Optional attributes the engine uses when present: `record_edges` (bytes every record starts and
    ends with, so that lines which may be malformed are parsed and reported even when the prefilter
    would clear them), `newest_in_block(block)` (the newest time in a block, for relative windows), and
    the prefilter tuning of text logs, `numeric_after` and `decode_percent` (see `engine.prefilter.for_adapter`).
    """

    def parse_line(self, line: bytes, file: str, line_number: int, record: int, on_skip: SkipSink) -> Event | None:
        """The event of one raw line (without its newline), or None after reporting a skip."""
        ...

    def is_line_oriented(self, head: bytes) -> bool:
        """Whether a file with this head has exactly one record per line (e.g. JSON lines, not CSV)."""
        ...
