"""IIS (and other W3C extended) access logs: `#Fields:` says which space-separated fields each line has.

`date time` are UTC; `c-ip` is the client, `cs-uri-stem` and `cs-uri-query` the target, `cs-host` the Host
header, `sc-status` and `sc-bytes` the response; `s-computername`, `s-sitename` or `s-ip` the server. IIS
writes `-` for an empty field and `+` for a space inside the user agent. A file may hold several headers
(IIS writes one each time it starts); each applies to the lines after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from ..engine.prefilter import Prefilter
from ..model import INBOUND, Event, SourceRef
from .base import CountingSource, ReadCounts, Skip, SkipSink
from .headed import read_lines
from .httplog import HttpRecord, http_event, raw_text, to_int
from .linelog import NUMERIC_AFTER
from .timeparse import parse_timestamp

_SERVER_FIELDS = ("s-computername", "s-sitename", "s-ip")


class IisAdapter:
    """W3C extended logs with request fields (IIS, Azure App Service HTTP logs)."""

    name = "iis"
    shortcut = "line prefilter"  # the summary's name for what clears lines unparsed

    def __init__(self) -> None:
        self._prefilter: Prefilter | None = None

    def sniff(self, head: bytes) -> bool:
        """An IIS `#Software:` line, or a `#Fields:` line with request fields."""
        lowered = head[:8192].lower()
        if b"#software: microsoft internet information services" in lowered:
            return True
        return any(line.startswith(b"#fields:") and b"cs-uri-stem" in line for line in lowered.split(b"\n")[:12])

    def parse_counted(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        """Every event of the file; lines the prefilter clears are counted, not parsed."""
        fields: list[str] = []
        def oversized(number: int, limit: int) -> None:
            on_skip(Skip("oversized-record", file, number, f"line longer than {limit} bytes: not read "
                         "([limits] max_line_bytes)"))

        def prefilter() -> Prefilter | None:
            return self._line_prefilter() if fields else None  # before any #Fields: line, every line is reported

        for line in read_lines(stream, prefilter, counts, oversized):
            text = line.text.decode("utf-8", "replace")
            if line.directive:
                if text.lower().startswith("#fields:"):
                    fields[:] = text[len("#fields:"):].split()  # (in place: the prefilter callback reads it)
                continue
            if not fields:
                on_skip(Skip("no-header", file, line.number, "a record before any #Fields: line"))
                continue
            event = self._event(fields, text, line.text, SourceRef(self.name, file, line.number, line.record),
                                on_skip)
            if event is not None:
                yield event

    def _line_prefilter(self) -> Prefilter:
        if self._prefilter is None:
            self._prefilter = Prefilter(numeric_after=NUMERIC_AFTER, decode_percent=True)
        return self._prefilter

    def _event(self, fields: list[str], text: str, raw: bytes, source: SourceRef, on_skip: SkipSink) -> Event | None:
        values = text.split(" ")
        if len(values) != len(fields):
            on_skip(Skip("field-count", source.file, source.line, f"{len(values)} fields, #Fields has {len(fields)}"))
            return None
        row = {name.lower(): ("" if value == "-" else value) for name, value in zip(fields, values, strict=True)}
        try:
            moment = parse_timestamp(f"{row.get('date', '')} {row.get('time', '')}".strip())
        except ValueError as error:
            on_skip(Skip("bad-timestamp", source.file, source.line, str(error)[:120]))
            return None
        stem, query = row.get("cs-uri-stem", ""), row.get("cs-uri-query", "")
        record = HttpRecord(
            time=moment,
            client=row.get("c-ip", ""),
            method=row.get("cs-method", ""),
            target=stem + ("?" + query if query else ""),
            host=row.get("cs-host", ""),
            status=to_int(row.get("sc-status")),
            response_bytes=to_int(row.get("sc-bytes")),
            user_agent=row.get("cs(user-agent)", "").replace("+", " "),
            server=next((row[name] for name in _SERVER_FIELDS if row.get(name)), ""),
        )
        return http_event(record, source, INBOUND, raw_text(raw), "web-access")

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file (every record parsed)."""
        yield from self.parse_counted(stream, file, on_skip, ReadCounts(exhaustive=True))


IIS_ADAPTER = IisAdapter()
_CHECK: CountingSource = IIS_ADAPTER
