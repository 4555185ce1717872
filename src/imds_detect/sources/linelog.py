"""A base for one-record-per-line text logs (access, proxy and load-balancer logs): line formats tried in order,
records turned into HTTP events, unreadable lines reported with their reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

from ..model import Event, SourceRef
from .base import Skip, SkipSink
from .httplog import HttpRecord, http_event, raw_text

SNIFF_LINES = 20
# Numeric host spellings count after a character that can precede a host in a URL or a field, never at the
# start of a line (where access logs write the client address, an address field the detections do not read).
NUMERIC_AFTER = rb"[^\n\r0-9A-Za-z._\-]"
NUMERIC_AFTER_OR_LINE_START = rb"(?:^|[^\n\r0-9A-Za-z._\-])"


class LineFormat(Protocol):
    """One way a line can be written."""

    @property
    def starts_with_scanned(self) -> bool:
        """Whether a field the detections read (request, Host ...) can start the line."""
        ...

    @property
    def first_edge(self) -> bytes | None:
        """The characters every line starts with (None: any)."""
        ...

    @property
    def last_edge(self) -> bytes | None:
        """The characters every line ends with (None: any)."""
        ...

    def parse(self, text: str) -> HttpRecord | None:
        """The record of a line, None when the line is not in this format; ValueError on a bad value."""
        ...


def head_lines(head: bytes, limit: int = SNIFF_LINES) -> list[str]:
    """The first complete, non-blank, non-comment lines of a file head, decoded."""
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    lines = body.split(b"\n")
    if len(lines) > 1 and not body.endswith(b"\n"):
        lines = lines[:-1]  # the last one may be cut by the head size
    texts = [line.rstrip(b"\r").decode("utf-8", "replace") for line in lines]
    return [text for text in texts if text.strip() and not text.startswith("#")][:limit]


def _union(edges: list[bytes | None]) -> bytes | None:
    """The characters any of the formats' lines may start (or end) with; None when one of them is unknown."""
    known = [edge for edge in edges if edge is not None]
    if not edges or len(known) != len(edges):
        return None
    return bytes(sorted(set(b"".join(known))))


class LineLogAdapter:
    """An adapter for a text log with one record per line in one of `formats`."""

    name = ""
    table = ""  # what kind of log, kept on the events (e.g. "web-access")
    direction = ""  # INBOUND (a server's own log) or OUTBOUND (a proxy's)
    decode_percent = True

    def __init__(self, formats: tuple[LineFormat, ...]) -> None:
        self.formats = formats
        scanned_first = any(fmt.starts_with_scanned for fmt in formats)
        self.numeric_after = NUMERIC_AFTER_OR_LINE_START if scanned_first else NUMERIC_AFTER
        first = _union([fmt.first_edge for fmt in formats])
        last = _union([fmt.last_edge for fmt in formats])
        self.record_edges: tuple[bytes | None, bytes | None] | None = (first, last) if first or last else None

    # -- recognising ---------------------------------------------------------------------------
    def sniff(self, head: bytes) -> bool:
        """Whether most of the first lines of `head` read in one of the formats."""
        lines = head_lines(head)
        if not lines:
            return False
        matched = sum(1 for line in lines if self._record(line) is not None)
        return matched >= max(1, (len(lines) * 3 + 4) // 5)

    def is_line_oriented(self, head: bytes) -> bool:
        return True

    # -- reading -------------------------------------------------------------------------------
    def _record(self, text: str) -> HttpRecord | None:
        return self._read(text)[0]

    def _read(self, text: str) -> tuple[HttpRecord | None, str]:
        """The record in the first format that reads the line, or None and the last problem met."""
        problem = ""
        for fmt in self.formats:
            try:
                record = fmt.parse(text)
            except ValueError as error:
                problem = str(error)[:120]
                continue
            if record is not None:
                return record, ""
        return None, problem

    def parse_line(self, line: bytes, file: str, line_number: int, record: int, on_skip: SkipSink) -> Event | None:
        """The event of one line, or None after reporting why it could not be read."""
        text = line.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():  # spaces, tabs, U+001D ...: a record (the engine counts it), but nothing to read
            on_skip(Skip("blank-line", file, line_number, "whitespace only"))
            return None
        if text.startswith("#"):
            on_skip(Skip("comment-line", file, line_number, text[:80]))
            return None
        parsed, problem = self._read(text)
        if parsed is None:
            reason = "bad-timestamp" if problem else "malformed-line"
            on_skip(Skip(reason, file, line_number, problem or f"not a {self.name} line: {text[:80]!r}"))
            return None
        source = SourceRef(self.name, file, line_number, record)
        return http_event(parsed, source, self.direction, raw_text(line), self.table)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file, in order (the engine's line path does the same with a prefilter)."""
        record = 0
        for number, line in enumerate(stream, start=1):
            stripped = line.rstrip(b"\n")
            if not stripped.strip():
                continue
            event = self.parse_line(stripped, file, number, record, on_skip)
            record += 1
            if event is not None:
                yield event
