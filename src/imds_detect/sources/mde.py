"""Microsoft Defender XDR advanced hunting and Microsoft Sentinel exports of the Device* tables.

Variants (recognised from content by :func:`mde_variant`, never by file name):

- ``jsonl``: one JSON object per line (advanced hunting or Sentinel / Log Analytics rows). Line oriented.
- ``csv``: the portal CSV export (header row, quoted fields, ``""`` escapes, newlines inside quoted
  command lines, optional UTF-8 BOM, ``Column [UTC]`` style headers). Read by :mod:`.mde_csv`.
- ``json-array``: ``[{row}, {row}, ...]``.
- ``la-api``: a Log Analytics / Azure Monitor query answer ``{"tables": [{"columns": [...], "rows":
  [[...]]}]}`` (also the capitalised ADX v1 shape ``Tables/Columns/Rows/ColumnName``).
- ``graph``: Microsoft Graph ``security/runHuntingQuery`` ``{"schema": [...], "results": [{row}]}``
  (also the older Defender API ``Schema/Results``).
- ``json-seq``: pretty-printed JSON objects one after another (``jq .`` output) or a single object.

Whole-document variants are read into memory in one piece (bounded by available memory only). Their line
numbers are exact when each record starts on its own line, else 1; the record index is always exact.

Tables: ``DeviceNetworkEvents``, ``DeviceProcessEvents`` and ``DeviceEvents``. The table comes from
``Type`` (Sentinel) or else from the ActionType or the columns present. Every row that yields no event is
reported through ``on_skip``; nothing raises out of :meth:`MdeAdapter.parse` or :meth:`MdeAdapter.parse_line`
for bad input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from ..model import Event, EventKind, ProcessInfo, SourceRef
from .base import LineSource, ReadCounts, Skip, SkipSink
from .timeparse import parse_timestamp

__all__ = ["FORMAT", "MDE_ADAPTER", "VARIANTS", "MdeAdapter", "event_from_row", "mde_variant"]

FORMAT = "mde"
VARIANTS = ("jsonl", "csv", "json-array", "la-api", "graph", "json-seq")
RAW_LIMIT = 4096
HEAD_SIZE = 65536
READ_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"

NETWORK_TABLE = "DeviceNetworkEvents"
PROCESS_TABLE = "DeviceProcessEvents"
DEVICE_TABLE = "DeviceEvents"
_SUPPORTED = frozenset((NETWORK_TABLE, PROCESS_TABLE, DEVICE_TABLE))

# ActionType -> table, for rows without a Type column. Covers the supported tables and the common
# actions of neighbouring tables, so that their rows are reported as "unsupported-table".
_ACTION_TABLE: dict[str, str] = {
    **dict.fromkeys(
        (
            "ConnectionSuccess",
            "ConnectionFailed",
            "ConnectionRequest",
            "ConnectionAttempt",
            "ConnectionFound",
            "ConnectionAcknowledged",
            "InboundConnectionAccepted",
            "ListeningConnectionCreated",
            "HttpConnectionInspected",
            "DnsConnectionInspected",
            "SslConnectionInspected",
            "SshConnectionInspected",
            "IcmpConnectionInspected",
            "FtpConnectionInspected",
            "SmtpConnectionInspected",
            "NetworkSignatureInspected",
            "InboundInternetScanInspected",
            "NtlmAuthenticationInspected",
        ),
        NETWORK_TABLE,
    ),
    "ProcessCreated": PROCESS_TABLE,
    **dict.fromkeys(
        (
            "PowerShellCommand",
            "DnsQueryResponse",
            "ProcessCreatedUsingWmiQuery",
            "BrowserLaunchedToOpenUrl",
            "CreateRemoteThreadApiCall",
            "OpenProcessApiCall",
            "ReadProcessMemoryApiCall",
            "WriteProcessMemoryApiCall",
            "QueueUserApcRemoteApiCall",
            "SetThreadContextRemoteApiCall",
            "NtAllocateVirtualMemoryRemoteApiCall",
            "NtMapViewOfSectionRemoteApiCall",
            "NtProtectVirtualMemoryApiCall",
            "MemoryRemoteProtect",
            "NamedPipeEvent",
            "LdapSearch",
            "DpapiAccessed",
            "GetClipboardData",
            "GetAsyncKeyStateApiCall",
            "ScheduledTaskCreated",
            "ScheduledTaskDeleted",
            "ScheduledTaskUpdated",
            "ServiceInstalled",
            "UserAccountCreated",
            "UserAccountDeleted",
            "UserAccountModified",
            "UserAccountAddedToLocalGroup",
            "UsbDriveMounted",
            "PnpDeviceConnected",
            "ScriptContent",
            "AntivirusDetection",
            "AntivirusReport",
            "AntivirusScanCompleted",
            "SmartScreenUrlWarning",
            "SmartScreenAppWarning",
            "ExploitGuardNetworkProtectionBlocked",
            "ExploitGuardNetworkProtectionAudited",
            "FirewallInboundConnectionBlocked",
            "FirewallOutboundConnectionBlocked",
            "FirewallInboundConnectionToAppBlocked",
            "WmiBindEventFilterToConsumer",
            "ShellLinkCreateFileEvent",
            "TamperingAttempt",
        ),
        DEVICE_TABLE,
    ),
    **dict.fromkeys(("FileCreated", "FileModified", "FileDeleted", "FileRenamed"), "DeviceFileEvents"),
    **dict.fromkeys(
        (
            "RegistryKeyCreated",
            "RegistryKeyDeleted",
            "RegistryKeyRenamed",
            "RegistryValueSet",
            "RegistryValueDeleted",
        ),
        "DeviceRegistryEvents",
    ),
    **dict.fromkeys(("LogonSuccess", "LogonFailed", "LogonAttempted"), "DeviceLogonEvents"),
    "ImageLoaded": "DeviceImageLoadEvents",
}
# Prefixes of further DeviceEvents action families (ASR, exploit guard, ...).
_DEVICE_ACTION_PREFIXES = (
    "Asr",
    "Antivirus",
    "AppControl",
    "AppGuard",
    "Browser",
    "ControlledFolderAccess",
    "ExploitGuard",
    "Firewall",
    "SmartScreen",
    "Audit",
    "Usb",
    "Pnp",
)

# Column names that, two at a time, mark a Defender row.
_DISTINCTIVE = frozenset(
    (
        "ActionType",
        "DeviceName",
        "DeviceId",
        "InitiatingProcessFileName",
        "InitiatingProcessCommandLine",
        "InitiatingProcessFolderPath",
        "InitiatingProcessId",
        "InitiatingProcessAccountName",
        "InitiatingProcessParentFileName",
        "RemoteIP",
        "RemoteUrl",
        "ProcessCommandLine",
        "ReportId",
        "AdditionalFields",
    )
)
_DISTINCTIVE_QUOTED = tuple(b'"' + name.encode() + b'"' for name in sorted(_DISTINCTIVE))
_LA_KEYS = frozenset(("tables", "Tables"))
_GRAPH_KEYS = frozenset(("schema", "Schema", "results", "Results", "@odata.context", "Stats"))
_FIRST_KEY = re.compile(rb'\A\{\s*"((?:[^"\\]|\\.){0,64})"')
# A record that starts its own line (the newline is part of the match: much faster than ^ with re.M).
# (each blank run read once: `[ \t]*,?[ \t]*\[?[ \t]*` split a run of blanks in cubically many ways)
_OBJECT_START = re.compile(rb"\n[ \t]*(?:,[ \t]*)?(?:\[[ \t]*)?\{")
_ARRAY_START = re.compile(rb"\n[ \t]*(?:,[ \t]*)?\[")
_INLINE_FIRST_OBJECT = re.compile(rb"[ \t]*\[[ \t]*\{")
_JSON_WS = re.compile(r"[ \t\r\n]*")
_DNS_KEYS = ("query", "query_name", "QueryName", "DnsQueryString")
_TIMESTAMP_VALUE = re.compile(rb'"Timestamp"\s*:\s*"([^"\\]{1,64})"')
_TIME_GENERATED_VALUE = re.compile(rb'"TimeGenerated"\s*:\s*"([^"\\]{1,64})"')


# --------------------------------------------------------------------------- sniffing


def mde_variant(head: bytes) -> str | None:
    """The Defender/Sentinel variant of a file starting with `head`, or None when it is not one.

    Returns one of ``jsonl``, ``csv``, ``json-array``, ``la-api``, ``graph``, ``json-seq``.
    """
    body = _strip_head(head)
    shape = _shape(body)
    if shape is None:
        return None
    if shape == "csv":
        return shape if _csv_header_is_defender(body) else None
    if shape == "jsonl":
        first = body.split(b"\n", 1)[0]
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return shape if _head_has_keys(body) else None  # e.g. a first line longer than the head
        return shape if isinstance(obj, dict) and _looks_defender(obj) else None
    return shape if _head_has_keys(body) else None


def _strip_head(head: bytes) -> bytes:
    if head.startswith(_BOM):
        head = head[3:]
    return head.lstrip()


def _shape(body: bytes) -> str | None:
    """The structural variant of a (BOM- and whitespace-stripped) head, without checking the columns."""
    if not body:
        return None
    first = body[:1]
    if first == b"[":
        return "json-array"
    if first != b"{":
        return "csv"
    match = _FIRST_KEY.match(body)
    key = match.group(1).decode("utf-8", "replace") if match else ""
    if key in _LA_KEYS:
        return "la-api"
    if key in _GRAPH_KEYS:
        return "graph"
    line = body.split(b"\n", 1)[0].rstrip()
    if line == b"{" or line.endswith((b"{", b"[", b",", b":")):
        return "json-seq"
    return "jsonl"


def _looks_defender(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("Type")
    if isinstance(kind, str) and kind.startswith("Device") and ("Timestamp" in obj or "TimeGenerated" in obj):
        return True
    return len(_DISTINCTIVE.intersection(obj)) >= 2


def _head_has_keys(body: bytes) -> bool:
    found = 0
    for key in _DISTINCTIVE_QUOTED:
        if key in body:
            found += 1
            if found >= 2:
                return True
    return False


def _column_name(text: str) -> str:
    """A CSV header cell without quotes, spaces or a ``[UTC]`` / ``[Local Time]`` suffix."""
    name = text.strip().strip('"').strip()
    if name.endswith("]") and " [" in name:
        name = name[: name.rindex(" [")]
    return name


def _csv_header_is_defender(body: bytes) -> bool:
    header = body.split(b"\n", 1)[0].decode("utf-8", "replace")
    names = {_column_name(cell) for cell in header.split(",")}
    return len(_DISTINCTIVE.intersection(names)) >= 2


# --------------------------------------------------------------------------- field helpers


def _dumps(value: Any) -> str:
    """Compact JSON text of a parsed value (stdlib fallback for what orjson refuses, e.g. huge ints)."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, default=str, separators=(",", ":"))


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _dumps(value)
    return str(value)


def _to_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str):
        value = value.strip()
        if value.isdigit() and value.isascii() and len(value) <= 20:  # (int() refuses over 4300 digits)
            return int(value)
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _port(value: Any) -> int | None:
    port = _to_int(value)
    return port if port is not None and 0 <= port <= 65535 else None


def _ip(value: Any) -> str:
    text = _text(value).strip()
    if text[:1] == "[" and text[-1:] == "]":
        return text[1:-1]
    return text


def _account(domain: Any, name: Any) -> str:
    user = _text(name)
    if not user:
        return ""
    dom = _text(domain)
    return f"{dom}\\{user}" if dom else user


def _join_path(folder: str, name: str) -> str:
    """The full image path from a folder column that may or may not already end with the file name."""
    if not folder or not name:
        return folder
    if "\\" in folder or folder[1:2] == ":":
        lowered, lowered_name = folder.lower(), name.lower()
        if lowered == lowered_name or lowered.endswith(("\\" + lowered_name, "/" + lowered_name)):
            return folder
        return folder.rstrip("\\") + "\\" + name
    if folder == name or folder.endswith("/" + name):
        return folder
    return folder.rstrip("/") + "/" + name


def _additional(value: Any) -> dict[str, Any]:
    """AdditionalFields as a dict: an object in Sentinel, a JSON string in Defender exports."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value[:1] == "{":
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _initiating(get: Callable[[str], Any]) -> ProcessInfo:
    name = _text(get("InitiatingProcessFileName"))
    return ProcessInfo(
        name=name,
        path=_join_path(_text(get("InitiatingProcessFolderPath")), name),
        pid=_to_int(get("InitiatingProcessId")),
        command_line=_text(get("InitiatingProcessCommandLine")),
        parent_name=_text(get("InitiatingProcessParentFileName")),
        user=_account(get("InitiatingProcessAccountDomain"), get("InitiatingProcessAccountName")),
        sha256=_text(get("InitiatingProcessSHA256")),
    )


def _new_process(get: Callable[[str], Any]) -> ProcessInfo:
    name = _text(get("FileName"))
    parent = _text(get("InitiatingProcessFileName"))
    return ProcessInfo(
        name=name,
        path=_join_path(_text(get("FolderPath")), name),
        pid=_to_int(get("ProcessId")),
        command_line=_text(get("ProcessCommandLine")),
        parent_name=parent,
        parent_path=_join_path(_text(get("InitiatingProcessFolderPath")), parent),
        user=_account(get("AccountDomain"), get("AccountName")),
        sha256=_text(get("SHA256")),
    )


def _infer_table(get: Callable[[str], Any], action: str) -> str:
    table = _ACTION_TABLE.get(action)
    if table:
        return table
    if get("RemoteIP") or get("RemotePort") not in (None, ""):
        return NETWORK_TABLE
    if get("ProcessCommandLine") is not None and get("FileName") is not None:
        return PROCESS_TABLE
    if action.startswith(_DEVICE_ACTION_PREFIXES):
        return DEVICE_TABLE
    return ""


# --------------------------------------------------------------------------- row -> event


def event_from_row(
    row: Mapping[str, Any], file: str, line: int, record: int, on_skip: SkipSink
) -> Event | None:
    """The event of one Defender/Sentinel row (column name -> value), or None after reporting a skip.

    ``raw`` is left empty: the caller knows the record text.
    """
    get = row.get
    action = _text(get("ActionType"))
    table = get("Type")
    if type(table) is not str or not table:
        table = _infer_table(get, action)
    if table not in _SUPPORTED:
        if table:
            on_skip(Skip("unsupported-table", file, line, table))
        else:
            detail = f"ActionType {action!r}" if action else "no Type, ActionType or known columns"
            on_skip(Skip("unrecognised-row", file, line, detail))
        return None
    stamp = get("Timestamp") or get("TimeGenerated")
    try:
        if type(stamp) is not str:
            raise ValueError("not a string")
        moment = parse_timestamp(stamp)
    except (ValueError, OverflowError):
        on_skip(Skip("bad-timestamp", file, line, repr(stamp)[:100]))
        return None
    source = SourceRef(FORMAT, file, line, record)
    host = _text(get("DeviceName"))

    if table == PROCESS_TABLE:
        return _process_event(get, moment, source, host, action, table)
    if table == NETWORK_TABLE:
        if action == "HttpConnectionInspected":
            return _http_event(get, moment, source, host, action, table)
        if action == "DnsConnectionInspected":
            return _dns_event(get, moment, source, host, action, table)
        return _network_event(get, moment, source, host, action, table)
    # DeviceEvents
    if action == "PowerShellCommand":
        proc = _initiating(get)
        # The cmdlet alone ("Invoke-RestMethod") says little; the URL is usually in the host's command line.
        command = _text(_additional(get("AdditionalFields")).get("Command"))
        if command and command not in proc.command_line:
            proc.command_line = f"{proc.command_line}\n{command}" if proc.command_line else command
        return Event(
            kind=EventKind.PROCESS,
            timestamp=moment,
            source=source,
            host=host,
            user=proc.user,
            process=proc,
            action=action,
            table=table,
        )
    if action == "DnsQueryResponse":
        return _dns_event(get, moment, source, host, action, table)
    if get("RemoteIP") or get("RemoteUrl"):
        return _network_event(get, moment, source, host, action, table)
    if get("ProcessCommandLine"):
        return _process_event(get, moment, source, host, action, table)
    on_skip(Skip("unsupported-action", file, line, f"{table} {action}"))
    return None


def _network_event(
    get: Callable[[str], Any], moment: datetime, source: SourceRef, host: str, action: str, table: str
) -> Event:
    proc = _initiating(get)
    return Event(
        kind=EventKind.NETWORK,
        timestamp=moment,
        source=source,
        host=host,
        user=proc.user,
        process=proc,
        action=action,
        table=table,
        remote_ip=_ip(get("RemoteIP")),
        remote_port=_port(get("RemotePort")),
        remote_url=_text(get("RemoteUrl")),
        protocol=_text(get("Protocol")),
    )


def _http_event(
    get: Callable[[str], Any], moment: datetime, source: SourceRef, host: str, action: str, table: str
) -> Event:
    event = _network_event(get, moment, source, host, action, table)
    extra = _additional(get("AdditionalFields"))
    event.kind = EventKind.HTTP
    event.http_host = _text(extra.get("host"))
    event.http_uri = _text(extra.get("uri"))
    event.http_method = _text(extra.get("method"))
    event.user_agent = _text(extra.get("user_agent"))
    return event


def _dns_event(
    get: Callable[[str], Any], moment: datetime, source: SourceRef, host: str, action: str, table: str
) -> Event:
    event = _network_event(get, moment, source, host, action, table)
    extra = _additional(get("AdditionalFields"))
    event.kind = EventKind.DNS
    for key in _DNS_KEYS:
        query = extra.get(key)
        if query:
            event.dns_query = _text(query)
            break
    return event


def _process_event(
    get: Callable[[str], Any], moment: datetime, source: SourceRef, host: str, action: str, table: str
) -> Event:
    proc = _new_process(get)
    return Event(
        kind=EventKind.PROCESS,
        timestamp=moment,
        source=source,
        host=host,
        user=proc.user,
        process=proc,
        action=action,
        table=table,
    )


# --------------------------------------------------------------------------- JSON lines


def _short(exc: Exception) -> str:
    return str(exc)[:160]


def _raw_line(line: bytes) -> str:
    return line[: RAW_LIMIT * 4].decode("utf-8", "replace").rstrip("\r\n")[:RAW_LIMIT]


def _parse_json_line(
    line: bytes, file: str, line_number: int, record: int, on_skip: SkipSink
) -> Event | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        retry = line[3:] if line.startswith(_BOM) else line
        if not retry.strip():
            return None
        try:  # invalid UTF-8 (or a BOM): decode with replacement characters and try again
            obj = orjson.loads(retry.decode("utf-8", "replace"))
        except orjson.JSONDecodeError:
            on_skip(Skip("malformed-json", file, line_number, _short(exc)))
            return None
    if not isinstance(obj, dict):
        on_skip(Skip("not-an-object", file, line_number, type(obj).__name__))
        return None
    event = event_from_row(obj, file, line_number, record, on_skip)
    if event is not None:
        event.raw = _raw_line(line)
    return event


def _lines(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """The lines of `head` followed by the rest of `stream`, without their newlines.

    Reads blocks (never ``readline``, which is byte by byte on raw streams); a line split across
    blocks is joined once, without repeated concatenation.
    """
    carry: list[bytes] = []
    data = head
    while data:
        cut = data.rfind(b"\n")
        if cut < 0:
            carry.append(data)
        else:
            if carry:
                carry.append(data[:cut])
                block = b"".join(carry)
                carry = []
            else:
                block = data[:cut]
            yield from block.split(b"\n")
            if cut + 1 < len(data):
                carry.append(data[cut + 1 :])
        data = stream.read(READ_BLOCK) or b""
    if carry:
        yield b"".join(carry)


def _parse_jsonl(head: bytes, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
    record = 0
    for number, line in enumerate(_lines(head, stream), 1):
        line = line.rstrip(b"\r")
        if not line:
            continue  # a blank line is not a record
        if line.isspace():
            on_skip(Skip("blank-line", file, number, "whitespace only"))
            record += 1
            continue
        event = _parse_json_line(line, file, number, record, on_skip)
        record += 1
        if event is not None:
            yield event


# --------------------------------------------------------------------------- newest time (JSON lines, CSV)


class _NewestTime:
    """The newest of many timestamp texts without parsing each one: ISO ``...Z`` values of one length order as
    text, so only the greatest of each length is parsed; any other form (an offset, a portal date) is parsed
    as it comes. Rows the prefilter or the CSV gate cleared still count for relative --since/--until."""

    def __init__(self) -> None:
        self._greatest: dict[int, str] = {}
        self._newest: datetime | None = None

    def see(self, value: str) -> None:
        if value.endswith("Z") and value[4:5] == "-":
            if value > self._greatest.get(len(value), ""):
                self._greatest[len(value)] = value
        else:
            self._take(value)

    def _take(self, value: str) -> None:
        try:
            moment = parse_timestamp(value)
        except (ValueError, OverflowError):
            return
        if self._newest is None or moment > self._newest:
            self._newest = moment

    def newest(self) -> datetime | None:
        for value in self._greatest.values():
            self._take(value)
        self._greatest.clear()
        return self._newest


# --------------------------------------------------------------------------- whole JSON documents


def _load_document(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return orjson.loads(data.decode("utf-8", "replace"))  # invalid UTF-8 inside strings


def _error_line(exc: Exception) -> int:
    line = getattr(exc, "lineno", 1)
    return line if isinstance(line, int) and line > 0 else 1


def _last_line(data: bytes) -> int:
    """The number of the last line of `data` (an error "at the end" is reported there, not on the empty line
    after a final newline, which is not in the file)."""
    return max(1, data.count(b"\n") + (0 if data.endswith(b"\n") else 1))


def _record_lines(
    data: bytes, start: int, pattern: re.Pattern[bytes], count: int, first_at_start: bool = False
) -> list[int] | None:
    """Start lines of `count` records when each starts its own line after `start`, else None.

    `first_at_start`: the first record begins on the first line (``[{...},``), before any newline.
    """
    if count == 0 or start < 0:
        return None
    positions = [m.start() + 1 for m in pattern.finditer(data, start)]
    if first_at_start:
        positions.insert(0, 0)
    if len(positions) != count:
        return None
    lines: list[int] = []
    line, last = 1, 0
    for pos in positions:
        line += data.count(b"\n", last, pos)
        last = pos
        lines.append(line)
    return lines


def _skip_ws(text: str, pos: int) -> int:
    match = _JSON_WS.match(text, pos)
    return match.end() if match else pos


def _iter_values(text: str, array: bool) -> Iterator[tuple[Any, int, str]]:
    """(value, line, error) for a JSON array or a sequence of JSON values; stops after the first error."""
    decoder = json.JSONDecoder()
    n = len(text)
    pos = _skip_ws(text, 0)
    line, last = 1, 0
    if array:
        if text[pos : pos + 1] != "[":
            yield None, 1, "not a JSON array"
            return
        pos += 1
    while True:
        pos = _skip_ws(text, pos)
        line += text.count("\n", last, pos)
        last = pos
        if pos >= n:
            if array:
                yield None, line, "unterminated JSON array"
            return
        if array and text[pos] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield None, line + text.count("\n", pos, exc.pos), _short(exc)
            return
        except RecursionError:
            yield None, line, "JSON nested too deeply"
            return
        yield value, line, ""
        pos = _skip_ws(text, end)
        if array:
            if text[pos : pos + 1] == ",":
                pos += 1
            elif text[pos : pos + 1] != "]":
                line += text.count("\n", last, pos)
                yield None, line, "expected ',' or ']' between array elements"
                return


class _BadRow:
    """A Log Analytics row that does not match its columns."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail


def _emit_rows(
    rows: Iterable[tuple[Any, int]], file: str, on_skip: SkipSink, record: int = 0
) -> Iterator[Event]:
    """Events of (row, line) pairs, numbering records from `record`."""
    for row, line in rows:
        if type(row) is dict:
            event = event_from_row(row, file, line, record, on_skip)
            if event is not None:
                event.raw = _dumps(row)[:RAW_LIMIT]
                yield event
        elif isinstance(row, _BadRow):
            on_skip(Skip("bad-row", file, line, row.detail))
        else:
            on_skip(Skip("not-an-object", file, line, type(row).__name__))
        record += 1


def _numbered(rows: list[Any], lines: list[int] | None) -> Iterator[tuple[Any, int]]:
    if lines is None:
        return ((row, 1) for row in rows)
    return zip(rows, lines, strict=True)


def _parse_stream_values(data: bytes, array: bool, file: str, on_skip: SkipSink) -> Iterator[Event]:
    good: list[tuple[Any, int]] = []
    for value, line, error in _iter_values(data.decode("utf-8", "replace"), array):
        if error:
            yield from _emit_rows(good, file, on_skip)
            on_skip(Skip("malformed-json", file, min(line, _last_line(data)), error))
            return
        good.append((value, line))
    yield from _emit_rows(good, file, on_skip)


def _parse_document(variant: str, data: bytes, file: str, on_skip: SkipSink) -> Iterator[Event]:
    if data.startswith(_BOM):
        data = data[3:]
    if variant == "json-seq":
        yield from _parse_stream_values(data, False, file, on_skip)
        return
    try:
        doc = _load_document(data)
    except orjson.JSONDecodeError as exc:
        if variant == "json-array":  # keep what precedes the damage
            yield from _parse_stream_values(data, True, file, on_skip)
        else:
            on_skip(Skip("malformed-json", file, min(_error_line(exc), _last_line(data)), _short(exc)))
        return

    if variant == "json-array":
        if not isinstance(doc, list):
            on_skip(Skip("bad-document", file, 1, "expected a JSON array of rows"))
            return
        inline = _INLINE_FIRST_OBJECT.match(data) is not None
        lines = _record_lines(data, 0, _OBJECT_START, len(doc), inline)
        yield from _emit_rows(_numbered(doc, lines), file, on_skip)
        return
    if not isinstance(doc, dict):
        on_skip(Skip("bad-document", file, 1, "expected a JSON object"))
        return
    if variant == "graph":
        results = doc.get("results", doc.get("Results"))
        if not isinstance(results, list):
            on_skip(Skip("bad-document", file, 1, "no results array"))
            return
        start = max(data.find(b'"results"'), data.find(b'"Results"'))
        lines = _record_lines(data, start, _OBJECT_START, len(results))
        yield from _emit_rows(_numbered(results, lines), file, on_skip)
        return
    yield from _parse_tables(doc, data, file, on_skip)


def _parse_tables(doc: dict[str, Any], data: bytes, file: str, on_skip: SkipSink) -> Iterator[Event]:
    tables = doc.get("tables", doc.get("Tables"))
    if not isinstance(tables, list):
        on_skip(Skip("bad-document", file, 1, "no tables array"))
        return
    record = 0
    for table in tables:
        if not isinstance(table, dict):
            on_skip(Skip("bad-document", file, 1, "table is not an object"))
            continue
        columns = table.get("columns", table.get("Columns"))
        rows = table.get("rows", table.get("Rows"))
        if not isinstance(columns, list) or not isinstance(rows, list):
            on_skip(Skip("bad-document", file, 1, f"table {table.get('name', '')!r} lacks columns or rows"))
            continue
        names = [
            _text(col.get("name", col.get("ColumnName"))) if isinstance(col, dict) else _text(col)
            for col in columns
        ]
        lines: list[int] | None = None
        if len(tables) == 1:
            start = max(data.find(b'"rows"'), data.find(b'"Rows"'))
            lines = _record_lines(data, start, _ARRAY_START, len(rows))
        yield from _emit_rows(_table_rows(names, rows, lines), file, on_skip, record)
        record += len(rows)


def _table_rows(names: list[str], rows: list[Any], lines: list[int] | None) -> Iterator[tuple[Any, int]]:
    """(row dict or _BadRow, line) for the rows of one Log Analytics table."""
    width = len(names)
    for index, row in enumerate(rows):
        line = lines[index] if lines is not None else 1
        if type(row) is list and len(row) == width:
            yield dict(zip(names, row, strict=True)), line
        elif type(row) is list:
            yield _BadRow(f"{len(row)} values, {width} columns"), line
        else:
            yield _BadRow(f"{type(row).__name__} row, expected an array"), line


# --------------------------------------------------------------------------- the adapter


class MdeAdapter:
    """Defender XDR advanced hunting / Sentinel Device* tables (JSON lines, CSV, JSON documents)."""

    name = FORMAT
    record_edges = (b"{", b"}")  # every JSON-lines record starts and ends with these
    json_lines = True  # read line by line, a line is a JSON record (limits.max_json_record_bytes)
    # JSON keys whose values are free text (command lines, URLs, nested HTTP/DNS fields): the prefilter
    # looks for numeric host spellings only there; address fields are parsed strictly.
    free_text_keys = ("ProcessCommandLine", "InitiatingProcessCommandLine", "RemoteUrl", "AdditionalFields",
                      "Command", "uri", "host", "query", "query_name", "QueryName", "DnsQueryString")

    def sniff(self, head: bytes) -> bool:
        """Whether `head` starts a Defender/Sentinel export this adapter reads."""
        return mde_variant(head) is not None

    def variant(self, head: bytes) -> str | None:
        """Same as :func:`mde_variant`."""
        return mde_variant(head)

    def is_line_oriented(self, head: bytes) -> bool:
        """True only for JSON lines (CSV may hold newlines inside quoted fields)."""
        return mde_variant(head) == "jsonl"

    def newest_in_block(self, block: bytes) -> datetime | None:
        """The newest record time in a block of JSON lines, without parsing the records.

        Uses ``Timestamp`` values (``TimeGenerated`` when the block has none), so rows that later turn out
        unusable (other tables) count too. Same-length ``...Z`` values compare as text, so only the
        greatest of each length is parsed.
        """
        times = _NewestTime()
        for value in set(_TIMESTAMP_VALUE.findall(block)) or set(_TIME_GENERATED_VALUE.findall(block)):
            if value.isascii():
                times.see(value.decode("ascii"))
        return times.newest()

    def parse_line(
        self, line: bytes, file: str, line_number: int, record: int, on_skip: SkipSink
    ) -> Event | None:
        """The event of one JSON line, or None (after a skip; silently for a blank line)."""
        if not line:
            return None
        if line.isspace():
            on_skip(Skip("blank-line", file, line_number, "whitespace only"))
            return None
        return _parse_json_line(line, file, line_number, record, on_skip)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file in order; the variant comes from the content (CSV when unclear)."""
        return self._parse(stream, file, on_skip, None)

    shortcut = "CSV row gate"  # named in the summary when rows are cleared unparsed (see parse_counted)

    def parse_counted(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        """As :meth:`parse`, counting every record (events and skips); unless `counts.exhaustive`, CSV rows
        that cannot mention metadata are counted without being parsed."""

        def counted_skip(skip: Skip) -> None:
            counts.records += 1
            on_skip(skip)

        for event in self._parse(stream, file, counted_skip, counts):
            counts.records += 1
            yield event

    def _parse(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts | None) -> Iterator[Event]:
        head = stream.read(HEAD_SIZE)
        shape = _shape(_strip_head(head))
        if shape is None:
            return
        if shape == "jsonl":
            yield from _parse_jsonl(head, stream, file, on_skip)
        elif shape == "csv":
            from .mde_csv import parse_csv  # (it reads rows with this module's event_from_row)

            yield from parse_csv(head, stream, file, on_skip, counts)
        else:
            yield from _parse_document(shape, head + stream.read(), file, on_skip)


MDE_ADAPTER = MdeAdapter()
_CHECK: LineSource = MDE_ADAPTER
