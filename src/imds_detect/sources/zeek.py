"""Zeek `conn.log`, `http.log` and `dns.log`, as TSV with `#fields` headers or as JSON lines.

- http: a request from `id.orig_h` to `id.resp_h:id.resp_p` with its method, Host, URI (absolute-form
  for proxy requests), user agent, status and response size: the HTTP detections (a request to a metadata
  endpoint, or carrying a metadata URL: an SSRF attempt against `id.resp_h`).
- dns: `query` and `answers` (a name that resolves to a metadata address is seen by its answer). The
  resolver (`id.resp_h`, often 169.254.169.254:53 on GCP) is not the metadata API.
- conn: a connection to `id.resp_h:id.resp_p` (GCP's DNS and NTP on the metadata address, AWS's resolver
  and time service and Azure's WireServer never alert).

Events are attributed to the originator (`id.orig_h`), the host that made the request. Other Zeek logs are
skipped record by record (`unsupported-log`), not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, cast

import orjson

from ..engine.prefilter import Prefilter
from ..model import Event, EventKind, SourceRef
from .base import CountingSource, LineSource, ReadCounts, Skip, SkipSink
from .headed import read_lines
from .httplog import HttpRecord, epoch_time, http_event, raw_text, to_int, unescape
from .linelog import NUMERIC_AFTER
from .timeparse import parse_timestamp

SUPPORTED = ("http", "dns", "conn")
_HTTP_KEYS = frozenset({"method", "uri"})
_DNS_KEYS = frozenset({"query", "qtype_name", "rcode_name", "answers"})
_CONN_KEYS = frozenset({"proto", "conn_state"})
# JSON keys whose values the detections read as text (numeric host spellings are looked for only there).
FREE_TEXT_KEYS = ("host", "uri", "query")


def log_kind(keys: frozenset[str] | set[str], path: str = "") -> str:
    """'http', 'dns', 'conn' or '' from a `#path` (or `_path`) or, failing that, the fields present."""
    if path:
        return path if path in SUPPORTED else ""
    if keys >= _HTTP_KEYS:
        return "http"
    if "query" in keys and keys & _DNS_KEYS - {"query"}:
        return "dns"
    if keys >= _CONN_KEYS:
        return "conn"
    return ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _time(value: Any) -> datetime:
    if isinstance(value, str) and "-" in value[:10]:
        return parse_timestamp(value)
    return epoch_time(value)


def event_from_fields(kind: str, get: Callable[[str], Any], source: SourceRef, raw: str) -> Event:
    """The event of one Zeek record of `kind` (values by field name); ValueError on a bad `ts`."""
    moment = _time(get("ts"))
    client = _text(get("id.orig_h"))
    server, port = _text(get("id.resp_h")), to_int(get("id.resp_p"))
    if kind == "http":
        record = HttpRecord(time=moment, client=client, method=_text(get("method")), target=_text(get("uri")),
                            host=_text(get("host")), status=to_int(get("status_code")),
                            response_bytes=to_int(get("response_body_len")), user_agent=_text(get("user_agent")))
        event = http_event(record, source, "", raw, "zeek-http")
        event.remote_ip, event.remote_port = server, port
        return event
    if kind == "dns":
        answers = get("answers")
        values = tuple(_text(a) for a in answers) if isinstance(answers, list) else tuple(
            a for a in _text(answers).split(",") if a)
        return Event(EventKind.DNS, moment, source, host=client, table="zeek-dns", remote_ip=server,
                     remote_port=port, protocol=_text(get("proto")), dns_query=_text(get("query")), raw=raw,
                     client_ip=client, dns_answers=values)
    return Event(EventKind.NETWORK, moment, source, host=client, action=_text(get("conn_state")), table="zeek-conn",
                 remote_ip=server, remote_port=port, protocol=_text(get("proto")), raw=raw, client_ip=client)


@dataclass
class _TsvHeader:
    """What the directives of a Zeek TSV file said so far."""

    separator: str = "\t"
    empty: str = "(empty)"
    unset: str = "-"
    path: str = ""
    fields: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def directive(self, text: str) -> None:
        name, _, value = text[1:].partition(self.separator if not text.startswith("#separator") else " ")
        if name == "separator":
            self.separator = unescape(value.strip()) or "\t"
        elif name == "empty_field":
            self.empty = value
        elif name == "unset_field":
            self.unset = value
        elif name == "path":
            self.path = value.strip()
        elif name == "fields":
            self.fields = value.split(self.separator)
            self.index = {name: position for position, name in enumerate(self.fields)}


class ZeekAdapter:
    """Zeek logs: TSV (read whole, directives first) or JSON lines (line by line)."""

    name = "zeek"
    shortcut = "line prefilter"  # TSV files; the summary's name for what clears lines unparsed
    record_edges = (b"{", b"}")  # JSON lines
    free_text_keys = FREE_TEXT_KEYS
    decode_percent = True
    json_lines = True  # read line by line only as JSON lines (limits.max_json_record_bytes)

    def __init__(self) -> None:
        self._text_prefilter: Prefilter | None = None
        self._address_prefilter: Prefilter | None = None

    def sniff(self, head: bytes) -> bool:
        """A TSV header (`#separator`, `#fields` with `ts`) or JSON lines with `ts`, `uid` and `id.orig_h`."""
        body = head.lstrip()
        if body.startswith(b"#separator") or (body.startswith(b"#") and b"#fields\tts" in head):
            return True
        if not body.startswith(b"{"):
            return False
        first = body.split(b"\n", 1)[0]
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return isinstance(obj, dict) and "ts" in obj and "id.orig_h" in obj

    def is_line_oriented(self, head: bytes) -> bool:
        """JSON lines are; TSV is not (its `#fields` header says how every later line reads)."""
        return head.lstrip().startswith(b"{")

    # -- JSON lines ----------------------------------------------------------------------------
    def parse_line(self, line: bytes, file: str, line_number: int, record: int, on_skip: SkipSink) -> Event | None:
        """The event of one JSON line, or None after reporting why not."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            on_skip(Skip("malformed-json", file, line_number, str(error)[:120]))
            return None
        if not isinstance(obj, dict):
            on_skip(Skip("not-an-object", file, line_number, type(obj).__name__))
            return None
        kind = log_kind(set(obj), _text(obj.get("_path")))
        if not kind:
            on_skip(Skip("unsupported-log", file, line_number, _text(obj.get("_path")) or "unknown Zeek log"))
            return None
        return self._event(kind, obj.get, SourceRef(self.name, file, line_number, record), raw_text(line),
                           file, line_number, on_skip)

    def _event(self, kind: str, get: Callable[[str], Any], source: SourceRef, raw: str, file: str,
               line_number: int, on_skip: SkipSink) -> Event | None:
        try:
            return event_from_fields(kind, get, source, raw)
        except ValueError as error:
            on_skip(Skip("bad-timestamp", file, line_number, str(error)[:120]))
            return None

    # -- TSV -------------------------------------------------------------------------------------
    def parse_counted(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        """Every event of a Zeek file; TSV records the prefilter clears are counted, not parsed."""
        head = stream.read(1)
        if head == b"{":  # JSON lines read whole (e.g. by a library caller)
            yield from self._json_lines(head + stream.read(), file, on_skip, counts)
            return
        header = _TsvHeader()

        def prefilter() -> Prefilter | None:
            if not header.fields:
                return None  # every record line is read, to be reported (no #fields line yet)
            return self._prefilter(log_kind(set(header.fields), header.path))

        def oversized(number: int, limit: int) -> None:
            on_skip(Skip("oversized-record", file, number, f"line longer than {limit} bytes: not read "
                         "([limits] max_line_bytes)"))

        for line in read_lines(cast(BinaryIO, _Rejoined(head, stream)), prefilter, counts, oversized):
            text = line.text.decode("utf-8", "replace")
            if line.directive:
                header.directive(text)
                continue
            event = self._tsv_event(header, text, line.text, file, line.number, line.record, on_skip)
            if event is not None:
                yield event

    def _tsv_event(self, header: _TsvHeader, text: str, raw: bytes, file: str, number: int, record: int,
                   on_skip: SkipSink) -> Event | None:
        kind = log_kind(set(header.fields), header.path)
        if not header.fields:
            on_skip(Skip("no-header", file, number, "a record before any #fields line"))
            return None
        if not kind:  # each record skipped, as in JSON lines (a directive line is not a record to report)
            on_skip(Skip("unsupported-log", file, number, header.path or "unknown Zeek log"))
            return None
        values = text.split(header.separator)
        if len(values) != len(header.fields):
            on_skip(Skip("field-count", file, number, f"{len(values)} fields, #fields has {len(header.fields)}"))
            return None

        def get(name: str) -> Any:
            position = header.index.get(name)
            if position is None:
                return None
            value = values[position]
            return "" if value in (header.unset, header.empty) else unescape(value)

        return self._event(kind, get, SourceRef(self.name, file, number, record), raw_text(raw), file, number, on_skip)

    def _json_lines(self, data: bytes, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        record = 0
        for number, line in enumerate(data.split(b"\n"), start=1):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            counts.records += 1
            event = self.parse_line(line, file, number, record, on_skip)
            record += 1
            if event is not None:
                yield event

    def _prefilter(self, kind: str) -> Prefilter:
        """http and dns logs carry text (Host, URI, query); conn and other logs only addresses."""
        if kind in ("http", "dns"):
            if self._text_prefilter is None:
                self._text_prefilter = Prefilter(numeric_after=NUMERIC_AFTER, decode_percent=True)
            return self._text_prefilter
        if self._address_prefilter is None:
            self._address_prefilter = Prefilter(numeric_after=b"")
        return self._address_prefilter

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file (every record parsed)."""
        yield from self.parse_counted(stream, file, on_skip, ReadCounts(exhaustive=True))


class _Rejoined:
    """A stream with its first bytes put back."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head = head
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return head + self.stream.read(size - len(head) if size > 0 else -1)
        return self.stream.read(size)


ZEEK_ADAPTER = ZeekAdapter()
_LINES: LineSource = ZEEK_ADAPTER
_COUNTED: CountingSource = ZEEK_ADAPTER
