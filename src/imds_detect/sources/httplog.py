"""What web, proxy and network log adapters share: request lines, targets, escapes, numbers, times, events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..model import INBOUND, Event, EventKind, SourceRef

RAW_LIMIT = 4096
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_CLF_TIME = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?: ?([+-])(\d{2}):?(\d{2}))?")
# Backslash escapes log writers use: nginx, Zeek and Apache `\xHH`; Apache `\"` and `\\`; C-style letters.
_ESCAPE = re.compile(r"\\(?:x([0-9A-Fa-f]{2})|([\"\\/])|([ntr]))")
_LETTERS = {"n": "\n", "t": "\t", "r": "\r"}
_SCHEMES = ("http://", "https://", "ws://", "wss://", "ftp://")
_MAX_CACHED_TIMES = 4096
_TIMES: dict[str, datetime] = {}


@dataclass(slots=True)
class HttpRecord:
    """The fields of one web, proxy or network HTTP record, as the adapters read them."""

    time: datetime
    client: str = ""  # who sent the request
    method: str = ""
    target: str = ""  # the request target as logged (origin-, absolute- or authority-form)
    host: str = ""  # the Host header
    status: int | None = None
    response_bytes: int | None = None
    user_agent: str = ""
    body: str = ""
    server: str = ""  # the server that logged it (name or address)
    destination: str = ""  # the address the server or proxy connected to, when logged (`ip[:port]` or `[v6]:port`)
    action: str = ""  # e.g. a WAF action or a proxy result code


def split_request(line: str) -> tuple[str, str]:
    """(method, target) of a request line `METHOD target [HTTP/x]`; ("", "") for `-` or an empty line."""
    text = line.strip()
    if not text or text == "-":
        return "", ""
    method, _, rest = text.partition(" ")
    rest = rest.strip()
    head, space, version = rest.rpartition(" ")
    if space and version.upper().startswith("HTTP/"):
        rest = head.rstrip()
    if not rest and not method.isalpha():  # no method: the whole line is a target (junk or HTTP/0.9)
        return "", method
    return method, rest


def split_target(target: str, method: str = "") -> tuple[str, str]:
    """(authority, path) of an absolute-form (`http://host/path`) or CONNECT target, else ("", target).

    Userinfo (`user@`) is dropped from the authority; a missing path becomes `/`.
    """
    if method.upper() == "CONNECT" and "/" not in target:
        return target, ""
    lowered = target[:8].lower()
    scheme = next((s for s in _SCHEMES if lowered.startswith(s)), None)
    if scheme is None:
        return "", target
    rest = target[len(scheme):]
    cut = len(rest)
    for char in "/?#":
        found = rest.find(char)
        if found != -1 and found < cut:
            cut = found
    authority = rest[:cut]
    authority = authority[authority.rfind("@") + 1:]
    path = rest[cut:]
    return authority, path if path.startswith("/") else "/" + path


def unescape(value: str) -> str:
    """Undo the backslash escapes log writers apply (`\\xHH` bytes, `\\"`, `\\\\`, `\\n`); bytes that are not
    UTF-8 are read as Latin-1, as the URL reader reads them."""
    if "\\" not in value:
        return value
    pieces: list[str] = []
    pending = bytearray()
    position = 0
    for match in _ESCAPE.finditer(value):
        start, end = match.span()
        if start > position:
            pieces.append(_bytes_text(pending))
            pieces.append(value[position:start])
        hex_digits, char, letter = match.groups()
        if hex_digits is not None:
            pending.append(int(hex_digits, 16))
        else:
            pieces.append(_bytes_text(pending))
            pieces.append(char if char is not None else _LETTERS[letter])
        position = end
    pieces.append(_bytes_text(pending))
    pieces.append(value[position:])
    return "".join(pieces)


def _bytes_text(pending: bytearray) -> str:
    if not pending:
        return ""
    data = bytes(pending)
    pending.clear()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def to_int(text: object) -> int | None:
    """A non-negative decimal number, or None (`-`, empty, anything else)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if text >= 0 else None
    if isinstance(text, float):
        return int(text) if text >= 0 and text == text and text != float("inf") else None
    if isinstance(text, str):
        value = text.strip()
        if value.isascii() and value.isdigit() and len(value) < 20:
            return int(value)
    return None


def clf_time(text: str) -> datetime:
    """`10/Oct/2000:13:55:36 -0700` (brackets, fraction and zone optional) as an aware UTC datetime."""
    cached = _TIMES.get(text)
    if cached is not None:
        return cached
    match = _CLF_TIME.fullmatch(text.strip().strip("[]"))
    month = _MONTHS.get(match.group(2).lower(), 0) if match else 0
    if match is None or not month:
        raise ValueError(f"invalid access-log time {text[:60]!r}")
    day, _, year, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    micro = int((fraction + "000000")[:6]) if fraction else 0
    moment = datetime(int(year), month, int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        try:
            moment = moment - offset if sign == "+" else moment + offset
        except OverflowError:  # e.g. 01/Jan/0001:00:00:00 +0100: before datetime.min in UTC
            raise ValueError(f"invalid access-log time {text[:60]!r}: out of range") from None
    if len(_TIMES) >= _MAX_CACHED_TIMES:
        _TIMES.clear()
    _TIMES[text] = moment
    return moment


def epoch_time(value: object) -> datetime:
    """Seconds since the epoch (number or decimal text, e.g. Zeek `ts`, Squid, nginx `$msec`)."""
    if isinstance(value, bool):
        raise ValueError("invalid epoch time")
    if isinstance(value, str):
        text = value.strip()
        if not text or not text.replace(".", "", 1).isdigit():
            raise ValueError(f"invalid epoch time {value[:40]!r}")
        value = float(text)
    if not isinstance(value, (int, float)) or not 0 <= value < 1e11:
        raise ValueError(f"invalid epoch time {value!r}")
    return datetime.fromtimestamp(value, UTC)


def raw_text(line: bytes) -> str:
    """The record as evidence: decoded, shortened."""
    return line[: RAW_LIMIT * 4].decode("utf-8", "replace").rstrip("\r\n")[:RAW_LIMIT]


def http_event(record: HttpRecord, source: SourceRef, direction: str, raw: str, table: str) -> Event:
    """The normalized HTTP event of a record.

    The request target decides the destination: an absolute-form or CONNECT target names it (a proxy
    request, or one a server must route by it), else the Host header does. `host` is the server for
    requests a server received, else the client the request came from.
    """
    authority, path = split_target(record.target, record.method)
    destination, port = split_address(record.destination)
    return Event(
        kind=EventKind.HTTP,
        timestamp=record.time,
        source=source,
        host=record.server if direction == INBOUND else record.client,
        action=record.action,
        table=table,
        remote_ip=destination,
        remote_port=port,
        http_method=record.method,
        http_host=authority or record.host,
        http_uri=path,
        user_agent=record.user_agent,
        raw=raw,
        client_ip=record.client,
        direction=direction,
        http_status=record.status,
        response_bytes=record.response_bytes,
        http_body=record.body,
    )


def split_address(text: str) -> tuple[str, int | None]:
    """(address, port) of `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address; ("", None) for `-`/empty."""
    value = text.split(",", 1)[0].strip()  # nginx lists every upstream tried: the first one
    if not value or value == "-" or value.startswith("unix:"):
        return "", None
    if value.startswith("["):
        close = value.find("]")
        port = to_int(value[close + 2:]) if close != -1 and value[close + 1:close + 2] == ":" else None
        return value[1:close] if close != -1 else value, port
    if value.count(":") == 1:
        host, _, port_text = value.partition(":")
        return host, to_int(port_text)
    return value, None
