"""Windows event records (and Sysmon for Linux) from EVTX files, XML exports, syslog lines and JSON lines.

Shared by the ``sysmon`` and ``winsec`` adapters: this module turns any of the containers below into
:class:`WinRecord` (provider, event id, System fields, named EventData values) and hands each one to the
adapter's converter. Variants, recognised from content (never from the file name):

- ``evtx``: a binary ``.evtx`` log (``ElfFile\\0`` magic). Read chunk by chunk (64 KiB each, so memory stays
  bounded and pipes/gzip work) with the ``evtx`` package. A chunk the parser cannot read, a record it
  rejects, records the chunk header announces but the parser did not return, and a file cut inside a
  chunk are all reported as skips naming the chunk's byte offset; the scan goes on with the next chunk.
  For EVTX, ``SourceRef.line`` is the record's EventRecordID (what Event Viewer shows) and skips use the
  record id they concern (or the next expected one).
- ``xml``: ``<Event>`` elements one after another, with or without an ``<Events>`` root and an XML
  declaration (Event Viewer "Save as XML", ``wevtutil qe /f:xml`` with or without ``/e:Events``,
  ``Get-WinEvent`` ``ToXml()``, ``evtx_dump`` XML output with its ``Record N`` lines). Each event is parsed
  on its own, so one damaged event costs only itself. UTF-8, or UTF-16 with a byte-order mark.
- ``syslog``: one ``<Event>`` per line after a syslog prefix, as Sysmon for Linux writes through
  syslog/journald (``Mar 14 10:11:12 host sysmon: <Event>...``, ``sysmon[1234]:`` on RHEL/Fedora, RFC 3339
  timestamps of rsyslog, a leading ``<PRI>`` as forwarded syslog keeps it, ``journalctl -o short*`` output).
  Lines without an event (other programs' syslog lines) are ``no-event`` skips, events cut short
  ``truncated-xml`` skips, each with its line.
- ``jsonl``: one JSON object per line, in any of these shapes:
  the ``evtx`` package / ``evtx_dump -o jsonl`` shape ``{"Event": {"System": {...}, "EventData": {...}}}``
  (attributes under ``#attributes``, or ``<name>_attributes`` with separate attributes, or xmltodict's
  ``@Name`` / ``#text``); the Winlogbeat / Elastic Agent shape ``{"winlog": {"event_id": ..,
  "provider_name": .., "event_data": {...}}, "@timestamp": ..}``; and ``journalctl -o json`` lines whose
  ``MESSAGE`` holds a Sysmon for Linux ``<Event>`` element.

Invalid UTF-8 is decoded with replacement characters and the record is still analysed (dropping it would let
one bad byte in a command line hide the record). XML is parsed without DTDs or entity declarations.
Nothing here raises for bad input: every unusable record goes to ``on_skip``.
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import warnings
import xml.parsers.expat
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from .. import limits as _limits
from ..model import Event
from .base import Skip, SkipSink

__all__ = [
    "RAW_LIMIT",
    "SECURITY",
    "SYSMON",
    "WinRecord",
    "field_text",
    "iter_events",
    "provider_kind",
    "record_from_json",
    "record_from_xml",
    "sniff_kinds",
    "variant",
]

RAW_LIMIT = 4096
BLOCK = 1 << 20
# An event or line longer than this is reported and passed over. The default: the scan's limits decide
# (limits.max_event_bytes).
MAX_RECORD = _limits.Limits().max_event_bytes
EVTX_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
EVTX_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
_BOM = b"\xef\xbb\xbf"

SYSMON = "sysmon"
SECURITY = "winsec"
_PROVIDERS = {
    "microsoft-windows-sysmon": SYSMON,
    "linux-sysmon": SYSMON,
    "microsoft-windows-security-auditing": SECURITY,
}
_CHANNELS = {
    "microsoft-windows-sysmon/operational": SYSMON,
    "linux-sysmon/operational": SYSMON,
    "security": SECURITY,
}
# How each provider's name looks inside an EVTX chunk (UTF-16LE), for sniffing.
_EVTX_MARKERS = (
    ("Microsoft-Windows-Sysmon".encode("utf-16-le"), SYSMON),
    ("Linux-Sysmon".encode("utf-16-le"), SYSMON),
    ("Microsoft-Windows-Security-Auditing".encode("utf-16-le"), SECURITY),
)


def provider_kind(provider: str, channel: str = "") -> str:
    """``sysmon``, ``winsec`` or ``""`` for a provider name (the channel when the provider is missing)."""
    kind = _PROVIDERS.get(provider.strip().lower())
    if kind is None and not provider:
        kind = _CHANNELS.get(channel.strip().lower())
    return kind or ""


@dataclass(slots=True)
class WinRecord:
    """The parts of one Windows event record the adapters use."""

    provider: str = ""
    event_id: int | None = None
    channel: str = ""
    computer: str = ""
    system_time: str = ""  # System/TimeCreated/@SystemTime (or the shipper's timestamp)
    record_id: int | None = None
    user_sid: str = ""
    data: dict[str, str] = field(default_factory=dict)  # EventData (or flattened UserData): name -> text
    raw: str = ""

    @property
    def kind(self) -> str:
        return provider_kind(self.provider, self.channel)


# The converter an adapter supplies: one record in, an event (or None after a skip) out.
Converter = Callable[[WinRecord, str, int, int, SkipSink], "Event | None"]


# --------------------------------------------------------------------------- value helpers


def field_text(value: Any) -> str:
    """Text of a JSON value as the XML rendering would show it (``true``, ``80``, ``0x1a2c``)."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        for key in ("#text", "text", "$"):
            if key in value:
                return field_text(value[key])
        return ""
    if isinstance(value, list):
        return "\n".join(field_text(item) for item in value)
    return str(value)


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = field_text(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:  # (int() refuses 4300 digits)
        return int(text)
    return None


# --------------------------------------------------------------------------- XML


class _XmlRecord:
    """Expat handlers that collect a WinRecord from one ``<Event>`` element."""

    _TEXT_FIELDS = frozenset(("EventID", "Channel", "Computer", "EventRecordID"))

    def __init__(self) -> None:
        self.record = WinRecord()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.data_name: str | None = None
        self.collecting = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        parent = self.stack[-1] if self.stack else ""
        self.stack.append(name)
        depth = len(self.stack)
        record = self.record
        if parent == "System":
            if name == "Provider":
                record.provider = attrs.get("Name", "") or attrs.get("EventSourceName", "")
            elif name == "TimeCreated":
                record.system_time = attrs.get("SystemTime", "")
            elif name == "Security":
                record.user_sid = attrs.get("UserID", "")
            elif name in self._TEXT_FIELDS:
                self.collecting, self.text = True, []
        elif parent == "EventData" and name == "Data":
            self.data_name = attrs.get("Name")
            self.collecting, self.text = True, []
        elif depth == 4 and self.stack[1] == "UserData":  # Event/UserData/<Name>/<Field>
            self.data_name = name
            self.collecting, self.text = True, []

    def chars(self, data: str) -> None:
        if self.collecting:
            self.text.append(data)

    def end(self, name: str) -> None:
        self.stack.pop()
        if not self.collecting:
            return
        self.collecting = False
        value = "".join(self.text)
        record = self.record
        if self.data_name is not None:
            record.data.setdefault(self.data_name, value)
            self.data_name = None
        elif name == "EventID":
            record.event_id = _to_int(value)
        elif name == "EventRecordID":
            record.record_id = _to_int(value)
        elif name == "Channel":
            record.channel = value.strip()
        elif name == "Computer":
            record.computer = value.strip()


def _refuse_dtd(*_args: Any) -> None:
    raise ValueError("DTDs and entity declarations are not accepted")


def record_from_xml(text: str) -> WinRecord:
    """The record of one ``<Event>`` element; raises ValueError (with the position) when it is not XML."""
    handler = _XmlRecord()
    parser = xml.parsers.expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = handler.start
    parser.EndElementHandler = handler.end
    parser.CharacterDataHandler = handler.chars
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as error:
        raise ValueError(f"line {error.lineno} column {error.offset}: "
                         f"{xml.parsers.expat.ErrorString(error.code)}") from None
    if not handler.record.provider and not handler.record.channel and handler.record.event_id is None:
        raise ValueError("no System section (Provider, EventID or Channel)")
    return handler.record


# --------------------------------------------------------------------------- JSON


def _attr(node: Any, name: str, parent: Mapping[str, Any] | None = None, key: str = "") -> str:
    """An XML attribute in the JSON renderings: ``#attributes``, ``<key>_attributes`` or ``@name``."""
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        if isinstance(attributes, dict) and name in attributes:
            return field_text(attributes[name])
        if "@" + name in node:
            return field_text(node["@" + name])
        if name in node and not isinstance(node[name], (dict, list)):
            return field_text(node[name])
    if parent is not None and key:
        separate = parent.get(key + "_attributes")
        if isinstance(separate, dict):
            return field_text(separate.get(name))
    return ""


def _event_data(node: Any) -> dict[str, str]:
    """Named values of an EventData (or UserData) object in the evtx / xmltodict JSON shapes."""
    if not isinstance(node, dict):
        return {}
    data: dict[str, str] = {}
    items = node.get("Data")
    if isinstance(items, (list, dict)) and not any(key not in ("Data", "#attributes", "@xmlns") for key in node):
        # xmltodict: {"Data": [{"@Name": "Image", "#text": "..."}, ...]}
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict):
                name = item.get("@Name", item.get("Name"))
                if isinstance(name, str):
                    data[name] = field_text(item.get("#text", ""))
        return data
    for key, value in node.items():
        if key.startswith(("#", "@")) or key.endswith("_attributes"):
            continue
        if isinstance(value, dict) and "#text" not in value and "#attributes" not in value:
            data.update(_event_data(value))  # UserData/<Name>/{fields}
        else:
            data[key] = field_text(value)
    return data


def record_from_json(obj: Mapping[str, Any]) -> WinRecord | None:
    """The record of one JSON object in a known shape (see the module docstring), else None."""
    event = obj.get("Event")
    if isinstance(event, dict) and isinstance(event.get("System"), dict):
        return _record_from_evtx_json(event)
    winlog = obj.get("winlog")
    if isinstance(winlog, dict) and ("event_id" in winlog or "provider_name" in winlog):
        return _record_from_winlog(obj, winlog)
    message = obj.get("MESSAGE")
    if isinstance(message, str) and "<Event" in message:
        start = message.find("<Event")
        try:
            record = record_from_xml(message[start:])
        except ValueError:
            return None
        record.raw = message
        if not record.computer:
            record.computer = field_text(obj.get("_HOSTNAME"))
        return record
    return None


def _record_from_evtx_json(event: Mapping[str, Any]) -> WinRecord:
    system = event["System"]
    provider = system.get("Provider")
    time_created = system.get("TimeCreated")
    security = system.get("Security")
    data = _event_data(event.get("EventData"))
    if not data and "UserData" in event:
        data = _event_data(event.get("UserData"))
    return WinRecord(
        provider=_attr(provider, "Name", system, "Provider"),
        event_id=_to_int(system.get("EventID")),
        channel=field_text(system.get("Channel")),
        computer=field_text(system.get("Computer")),
        system_time=_attr(time_created, "SystemTime", system, "TimeCreated"),
        record_id=_to_int(system.get("EventRecordID")),
        user_sid=_attr(security, "UserID", system, "Security"),
        data=data,
    )


def _record_from_winlog(obj: Mapping[str, Any], winlog: Mapping[str, Any]) -> WinRecord:
    event_data = winlog.get("event_data")
    user = winlog.get("user")
    return WinRecord(
        provider=field_text(winlog.get("provider_name")),
        event_id=_to_int(winlog.get("event_id")),
        channel=field_text(winlog.get("channel")),
        computer=field_text(winlog.get("computer_name")),
        system_time=field_text(obj.get("@timestamp")),
        record_id=_to_int(winlog.get("record_id")),
        user_sid=field_text(user.get("identifier")) if isinstance(user, dict) else "",
        data={key: field_text(value) for key, value in event_data.items()} if isinstance(event_data, dict) else {},
    )


# --------------------------------------------------------------------------- sniffing

_EVENT_START = re.compile(rb"<Event[\s>]")
_EVENT_END = b"</Event>"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SYSLOG_PRI = re.compile(rb"<\d{1,3}>")
_EVTX_DUMP_RECORD = re.compile(rb"Record \d+\r?\n\s*<")  # evtx_dump's XML output


def _strip(head: bytes) -> bytes:
    if head.startswith(_BOM):
        head = head[3:]
    return head.lstrip()


def _utf16_to_utf8(head: bytes) -> bytes:
    return head.decode("utf-16", "replace").encode("utf-8")


def variant(head: bytes) -> str | None:
    """``evtx``, ``xml``, ``syslog``, ``jsonl`` (structural only; providers are not checked), None if empty."""
    if head.startswith(EVTX_MAGIC):
        return "evtx"
    if head.startswith(_UTF16_BOMS):
        head = _utf16_to_utf8(head)
    body = _strip(head)
    if not body:
        return None
    if _EVTX_DUMP_RECORD.match(body):
        return "xml"
    if body[:1] == b"<":
        return "syslog" if _SYSLOG_PRI.match(body) else "xml"  # "<134>Aug 22 ..." is a syslog priority
    if body[:1] == b"{":
        return "jsonl"
    return "syslog"


def sniff_kinds(head: bytes) -> frozenset[str]:
    """The providers (``sysmon``, ``winsec``, ``other``) of the Windows event records in a file head.

    Empty when the head holds no Windows event record in a supported container. Both adapters decide from
    this one answer, so they never both claim a file: ``sysmon`` takes files with Sysmon records and no
    Security-Auditing ones, ``winsec`` takes files with Security-Auditing records (mixed ones included).
    """
    shape = variant(head)
    if shape is None:
        return frozenset()
    if shape == "evtx":
        return frozenset(kind for marker, kind in _EVTX_MARKERS if marker in head)
    if head.startswith(_UTF16_BOMS):
        head = _utf16_to_utf8(head)
    if shape == "xml":
        return _xml_kinds(head)
    if shape == "syslog":
        return _syslog_kinds(head)
    kinds: set[str] = set()
    lines = _strip(head).split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut by the head size
    for line in lines[:200]:
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            record = record_from_json(obj)
            if record is not None:
                kinds.add(record.kind or "other")
    return frozenset(kinds)


SNIFF_RECORDS = 50  # records parsed from a head to learn its providers


def _kind_of_span(span: bytes) -> str:
    try:
        record = record_from_xml(_decode(span))
    except ValueError:
        return ""
    return record.kind or "other"


def _xml_kinds(head: bytes) -> frozenset[str]:
    """Providers of the first complete ``<Event>`` elements of an XML export."""
    kinds: set[str] = set()
    pos = 0
    for _ in range(SNIFF_RECORDS):
        start = _EVENT_START.search(head, pos)
        end = head.find(_EVENT_END, start.end()) if start else -1
        if start is None or end == -1:
            break
        kind = _kind_of_span(head[start.start():end + len(_EVENT_END)])
        if kind:
            kinds.add(kind)
        pos = end + len(_EVENT_END)
    return frozenset(kinds)


def _syslog_kinds(head: bytes) -> frozenset[str]:
    """Providers of syslog lines that end with a whole ``<Event>`` element after a ``tag:`` prefix.

    Requiring the element to end the line and to follow a syslog tag keeps logs that merely quote such
    text (a web request line, a command line) from being taken for Sysmon.
    """
    kinds: set[str] = set()
    found = 0
    lines = head.split(b"\n")
    for line in lines[:-1] if len(lines) > 1 else lines:
        line = line.rstrip()
        start = _EVENT_START.search(line)
        if start is None or not line.endswith(_EVENT_END) or not line[:start.start()].rstrip().endswith(b":"):
            continue
        kind = _kind_of_span(line[start.start():])
        if kind:
            kinds.add(kind)
            found += 1
            if found >= SNIFF_RECORDS:
                break
    return frozenset(kinds)


# --------------------------------------------------------------------------- reading


def _raw(text: str) -> str:
    return text[:RAW_LIMIT]


def _read_blocks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        data = stream.read(BLOCK)
        if not data:
            return
        yield data


def _start(stream: BinaryIO) -> tuple[bytes, Iterator[bytes]]:
    """The first bytes (enough to tell the variant) and the blocks that follow them."""
    blocks = _read_blocks(stream)
    first = b""
    for data in blocks:
        first += data
        if len(first) >= len(EVTX_MAGIC) and _strip(first):
            break
    return first, blocks


def _utf16_blocks(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    decoder = codecs.getincrementaldecoder("utf-16")("replace")
    yield decoder.decode(first).encode("utf-8")
    for data in rest:
        yield decoder.decode(data).encode("utf-8")
    yield decoder.decode(b"", final=True).encode("utf-8")


def iter_events(stream: BinaryIO, file: str, on_skip: SkipSink, convert: Converter) -> Iterator[Event]:
    """Every event of the file, in file order; the container comes from the content (see module docstring)."""
    first, rest = _start(stream)
    shape = variant(first)
    if shape is None:
        return
    if shape == "evtx":
        yield from _evtx_events(first, rest, file, on_skip, convert)
        return
    blocks: Iterator[bytes] = _chain(first, rest)
    if first.startswith(_UTF16_BOMS):
        blocks = _utf16_blocks(first, rest)
    if shape == "xml":
        yield from _xml_events(blocks, file, on_skip, convert)
    else:
        yield from _line_events(blocks, shape, file, on_skip, convert)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _convert(record: WinRecord, file: str, line: int, index: int, on_skip: SkipSink,
             convert: Converter) -> Event | None:
    event = convert(record, file, line, index, on_skip)
    if event is not None and not event.raw:
        event.raw = _raw(record.raw)
    return event


# -- lines (syslog and JSON lines)


def _lines(blocks: Iterator[bytes], file: str, on_skip: SkipSink) -> Iterator[tuple[bytes, int]]:
    """Lines without their newline (CR stripped) and their 1-based numbers; over-long lines become skips."""
    number = 1
    pending = b""
    oversized = False
    first = True
    limit = _limits.active().max_event_bytes
    for data in blocks:
        if first:
            first = False
            if data.startswith(_BOM):
                data = data[3:]
        pending += data
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end == -1:
                break
            if oversized:
                oversized = False
            else:
                yield pending[start:end].rstrip(b"\r"), number
            number += 1
            start = end + 1
        pending = pending[start:]
        if len(pending) > limit and not oversized:
            on_skip(Skip("oversized-record", file, number,
                         f"line longer than {limit} bytes ([limits] max_event_bytes)"))
            _limits.hit("max_event_bytes")
            oversized = True
        if oversized:
            pending = b""
    if pending and not oversized:
        yield pending.rstrip(b"\r"), number


def _line_events(blocks: Iterator[bytes], shape: str, file: str, on_skip: SkipSink,
                 convert: Converter) -> Iterator[Event]:
    index = 0
    for line, number in _lines(blocks, file, on_skip):
        if not line.strip():
            continue
        record = _json_line(line, file, number, on_skip) if shape == "jsonl" else _syslog_line(
            line, file, number, on_skip)
        if record is not None:
            event = _convert(record, file, number, index, on_skip, convert)
            if event is not None:
                yield event
        index += 1


def _json_line(line: bytes, file: str, number: int, on_skip: SkipSink) -> WinRecord | None:
    text = _decode(line)
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        on_skip(Skip("malformed-json", file, number, str(error)[:160]))
        return None
    if not isinstance(obj, dict):
        on_skip(Skip("not-an-object", file, number, type(obj).__name__))
        return None
    record = record_from_json(obj)
    if record is None:
        on_skip(Skip("unrecognised-record", file, number,
                     "not an evtx ({\"Event\": {\"System\": ...}}), Winlogbeat (winlog) or journald Sysmon record"))
        return None
    if not record.raw:
        record.raw = text
    return record


def _syslog_line(line: bytes, file: str, number: int, on_skip: SkipSink) -> WinRecord | None:
    start = _EVENT_START.search(line)
    if start is None:
        on_skip(Skip("no-event", file, number, f"no <Event> element: {_decode(line[:80])!r}"))
        return None
    end = line.rfind(_EVENT_END)
    if end < start.start():
        on_skip(Skip("truncated-xml", file, number, "<Event> without </Event> (line cut short?)"))
        return None
    span = line[start.start():end + len(_EVENT_END)]
    if b"#0" in span:  # rsyslog writes control characters as '#' and three octal digits (a newline is #012)
        span = _RSYSLOG_ESCAPE.sub(lambda escape: _RSYSLOG_CONTROLS[escape.group()], span)
    return _xml_record(span, file, number, on_skip)


# The control characters XML text may hold, as rsyslog's $EscapeControlCharactersOnReceive writes them.
_RSYSLOG_CONTROLS = {b"#011": b"\t", b"#012": b"\n", b"#015": b"\r"}
_RSYSLOG_ESCAPE = re.compile(rb"#01[125]")


# Event ids some adapter turns into events (Sysmon 1, 3, 22; Security 4688, 5156). A record with another id
# is classified from its provider and id alone, without a full XML parse: Sysmon logs are mostly other ids.
EVENT_IDS = frozenset((1, 3, 22, 4688, 5156))
# Attribute values hold no raw '<' in XML, so no tag body crosses one: `[^<>]` keeps each search from reading on
# past the next tag (`[^>]` read every later `<EventID ...` again from each one: quadratic on hostile records).
_QUICK_ID = re.compile(rb"<EventID(?:\s[^<>]*)?>\s*(\d{1,5})\s*</EventID>")
_QUICK_PROVIDER = re.compile(rb"<Provider\s[^<>]*?\bName\s*=\s*[\"']([^\"'<>&]{1,200})[\"']")


def _xml_record(span: bytes, file: str, number: int, on_skip: SkipSink) -> WinRecord | None:
    quick_id = _QUICK_ID.search(span)
    if quick_id is not None and int(quick_id.group(1)) not in EVENT_IDS:
        provider = _QUICK_PROVIDER.search(span, 0, quick_id.start())
        if provider is not None:
            return WinRecord(provider=_decode(provider.group(1)), event_id=int(quick_id.group(1)))
    text = _decode(span)
    try:
        record = record_from_xml(text)
    except ValueError as error:
        on_skip(Skip("malformed-xml", file, number, str(error)[:160]))
        return None
    record.raw = text
    return record


# -- XML documents and event sequences

# Comments are found with bytes.find (below): `<!--.*?-->` read the rest of the text again from every
# unclosed `<!--` (quadratic); a tag body stops at the next '<' for the same reason.
_FILLER = re.compile(rb"\s+|<\?xml[^<>]*\?>|</?Events(?:\s[^<>]*)?>|Record \d+(?=\s|$)")


def _report_junk(between: bytes, line: int, file: str, on_skip: SkipSink) -> None:
    """Skips for text between events that is not an XML declaration, ``<Events>``, a comment or whitespace."""
    pos = 0
    size = len(between)
    comments_close = True  # False once a `<!--` had no `-->` after it: none after it has one either
    line_at = _LineCounter(between, line)  # (counting from the start for each junk line was quadratic)
    while pos < size:
        match = _FILLER.match(between, pos)
        if match is not None and match.end() > pos:
            pos = match.end()
            continue
        if comments_close and between.startswith(b"<!--", pos):
            close = between.find(b"-->", pos + 4)
            if close != -1:
                pos = close + 3
                continue
            comments_close = False
        end = between.find(b"\n", pos)
        end = size if end == -1 else end
        on_skip(Skip("junk", file, line_at(pos),
                     f"text outside <Event> elements: {_decode(between[pos:min(end, pos + 80)])!r}"))
        pos = end


class _LineCounter:
    """Line numbers of growing positions in a buffer, counted incrementally."""

    __slots__ = ("buf", "line", "position")

    def __init__(self, buf: bytes, line: int) -> None:
        self.buf, self.line, self.position = buf, line, 0

    def __call__(self, position: int) -> int:
        self.line += self.buf.count(b"\n", self.position, position)
        self.position = position
        return self.line


def _xml_events(blocks: Iterator[bytes], file: str, on_skip: SkipSink, convert: Converter) -> Iterator[Event]:
    buf = b""
    line = 1  # line number at buf[0]
    index = 0
    eof = False
    first = True
    limit = _limits.active().max_event_bytes
    while not eof:
        data = next(blocks, None)
        if data is None:
            eof = True
        else:
            if first:
                first = False
                if data.startswith(_BOM):
                    data = data[3:]
            buf += data
        line_at = _LineCounter(buf, line)
        pos = 0
        while True:
            start = _EVENT_START.search(buf, pos)
            if start is None:
                keep = len(buf) if eof else max(buf.rfind(b"\n") + 1, pos)
                if keep > pos:
                    _report_junk(buf[pos:keep], line_at(pos), file, on_skip)
                    pos = keep
                break
            begin = start.start()
            if begin > pos:
                _report_junk(buf[pos:begin], line_at(pos), file, on_skip)
            event_line = line_at(begin)
            end = buf.find(_EVENT_END, start.end())
            following = _EVENT_START.search(buf, start.end(), end if end != -1 else len(buf))
            if following is not None:  # another event starts before this one ends: this one was cut
                on_skip(Skip("truncated-xml", file, event_line, "<Event> cut short: the next <Event> starts first"))
                index += 1
                pos = following.start()
                continue
            if end == -1:
                if eof:
                    on_skip(Skip("truncated-xml", file, event_line, "<Event> without </Event> at end of file"))
                    index += 1
                    pos = len(buf)
                elif len(buf) - begin > limit:
                    on_skip(Skip("oversized-record", file, event_line,
                                 f"<Event> longer than {limit} bytes ([limits] max_event_bytes)"))
                    _limits.hit("max_event_bytes")
                    index += 1
                    pos = start.end()
                else:
                    pos = begin  # wait for more data
                break
            stop = end + len(_EVENT_END)
            record = _xml_record(buf[begin:stop], file, event_line, on_skip)
            if record is not None:
                event = _convert(record, file, event_line, index, on_skip, convert)
                if event is not None:
                    yield event
            index += 1
            pos = stop
        line = line_at(pos)
        buf = buf[pos:]


# -- EVTX

_RECORD_NUMBER = re.compile(r"record number (\d+)")


def _evtx_file_header() -> bytes:
    """A clean one-chunk EVTX file header, so each chunk can be parsed on its own."""
    header = bytearray(EVTX_HEADER_SIZE)
    header[0:8] = EVTX_MAGIC
    struct.pack_into("<QQQIHHHH", header, 8, 0, 0, 1, 128, 2, 3, EVTX_HEADER_SIZE, 1)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header)


_ONE_CHUNK_HEADER = _evtx_file_header()


def _exactly(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """The stream re-cut into the file header and then 64 KiB chunks (the last one may be short)."""
    pending = first
    want = EVTX_HEADER_SIZE
    for data in rest:
        pending += data
        start = 0
        while len(pending) - start >= want:
            yield pending[start:start + want]
            start += want
            want = CHUNK_SIZE
        pending = pending[start:]
    start = 0
    while len(pending) - start >= want:
        yield pending[start:start + want]
        start += want
        want = CHUNK_SIZE
    if start < len(pending):
        yield pending[start:]


def _evtx_events(first: bytes, rest: Iterator[bytes], file: str, on_skip: SkipSink,
                 convert: Converter) -> Iterator[Event]:
    pieces = _exactly(first, rest)
    header = next(pieces, b"")
    if len(header) < EVTX_HEADER_SIZE:
        on_skip(Skip("evtx-truncated", file, 1, f"file ends inside the EVTX file header (byte {len(header)})"))
        return
    index = 0
    next_id = 1
    for number, chunk in enumerate(pieces):
        offset = EVTX_HEADER_SIZE + number * CHUNK_SIZE
        where = f"chunk {number} at byte offset {offset}"
        truncated = len(chunk) < CHUNK_SIZE
        if truncated:
            chunk += bytes(CHUNK_SIZE - len(chunk))
        if not chunk.startswith(CHUNK_MAGIC):
            if truncated:
                on_skip(Skip("evtx-truncated", file, next_id, f"{where}: the file ends inside this chunk's header"))
            elif chunk.count(0) != len(chunk):  # an all-zero chunk is unused space, not damage
                on_skip(Skip("evtx-bad-chunk", file, next_id, f"{where}: no chunk signature; its records are lost"))
            continue
        first_id = int.from_bytes(chunk[24:32], "little")
        last_id = int.from_bytes(chunk[32:40], "little")
        expected = last_id - first_id + 1 if 0 < first_id <= last_id and last_id - first_id < CHUNK_SIZE // 24 else None
        produced = 0
        for item in _chunk_records(chunk, expected):
            produced += 1
            if isinstance(item, str):
                match = _RECORD_NUMBER.search(item)
                record_id = int(match.group(1)) if match else (first_id + produced - 1 if expected else next_id)
                on_skip(Skip("evtx-corrupt-record", file, record_id, f"{where}: {item[:200]}"))
                next_id = record_id + 1
                index += 1
                continue
            record_id, data = item
            next_id = record_id + 1
            event = _evtx_record(data, record_id, file, index, on_skip, convert)
            index += 1
            if event is not None:
                yield event
        if expected is not None and produced < expected:
            lost = expected - produced
            why = "the file ends inside this chunk" if truncated else "the parser stopped early"
            on_skip(Skip("evtx-records-lost", file, first_id + produced,
                         f"{where}: {lost} of {expected} records could not be read ({why})"))
            index += lost
            next_id = last_id + 1
        elif truncated:
            on_skip(Skip("evtx-truncated", file, next_id, f"{where}: the file ends inside this chunk"))
        elif expected is None and produced == 0:
            on_skip(Skip("evtx-bad-chunk", file, next_id, f"{where}: chunk header without a valid record range"))


def _chunk_records(chunk: bytes, expected: int | None) -> Iterator[tuple[int, str] | str]:
    """(record id, JSON text) per record of one chunk, or an error message; never raises."""
    limit = (expected or 64) + 16  # a broken template can fail every record that uses it, but no more
    errors = 0
    try:
        import evtx  # the native parser; imported here so that text formats work without it
    except ImportError as error:
        yield f"cannot read EVTX: the 'evtx' package is not installed ({error})"
        return
    try:
        parser = evtx.PyEvtxParser(io.BytesIO(_ONE_CHUNK_HEADER + chunk), number_of_threads=1)
        records = iter(parser.records_json())
    except Exception as error:  # the native parser raises RuntimeError (and may raise others)
        yield f"chunk rejected: {error}"
        return
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                item = next(records)
        except StopIteration:
            return
        except Exception as error:  # a damaged record: report it and go on with the next one
            errors += 1
            yield str(error) or type(error).__name__
            if errors >= limit:
                return
            continue
        if not isinstance(item, dict):
            errors += 1
            yield f"unexpected parser output {type(item).__name__}"
            continue
        record_id = item.get("event_record_id")
        data = item.get("data")
        if not isinstance(record_id, int) or not isinstance(data, str):
            errors += 1
            yield "parser output without a record id or data"
            continue
        yield record_id, data


def _evtx_record(data: str, record_id: int, file: str, index: int, on_skip: SkipSink,
                 convert: Converter) -> Event | None:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        on_skip(Skip("evtx-corrupt-record", file, record_id, f"parser output is not JSON: {error}"[:200]))
        return None
    record = record_from_json(obj) if isinstance(obj, dict) else None
    if record is None:
        on_skip(Skip("unrecognised-record", file, record_id, "EVTX record without an Event/System element"))
        return None
    record.raw = data
    return _convert(record, file, record_id, index, on_skip, convert)
