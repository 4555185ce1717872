"""Linux audit records, one line at a time: header, fields, value decoding, sockaddr and syscall tables.

Three spellings of the same records are read:

- raw ``audit.log`` lines, ``[node=NAME ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): key=value ...``.
  Untrusted strings are either double-quoted (no space, quote, control or non-ASCII byte inside) or
  unquoted upper-case hex; ``(null)``, ``(none)`` and ``?`` stand for nothing.
- the ENRICHED log format: a raw line, then the GS character (0x1D), then translations with upper-case
  keys (``UID="root" AUID="alice" SADDR={ saddr_fam=inet laddr=... lport=80 }``).
- ``ausearch -i`` (interpreted) output: ``msg=audit(05/14/2024 10:11:12.345:1234) : key=value`` with
  values already decoded (unquoted, may hold spaces), names instead of numbers, ``----`` between events.

Only the record types that imds-detect uses are parsed (:data:`TRACKED`); any other line that is a
well-formed audit record is passed over without looking at its fields. Per-line work is a few
``bytes.find`` calls for the header and one ``str.split`` for the fields; regular expressions are only
used for interpreted (``ausearch -i``) lines, whose values may contain spaces.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "GS",
    "TRACKED",
    "Record",
    "RecordError",
    "SockAddr",
    "classify_syscall",
    "decode_value",
    "epoch_ms",
    "errno_name",
    "interpreted_fields",
    "moment_of",
    "raw_fields",
    "read_record",
    "sockaddr_from_hex",
    "sockaddr_from_text",
    "surely_connect",
    "surely_execve",
    "surely_other",
    "unescape_interpreted",
]

GS = "\x1d"  # separates the raw fields from the ENRICHED translations
TRACKED = frozenset((b"SYSCALL", b"EXECVE", b"PROCTITLE", b"SOCKADDR", b"CWD", b"EOE"))
_KINDS = {kind: kind.decode() for kind in TRACKED}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOTHING = frozenset(("(null)", "(none)", "?", ""))


class RecordError(ValueError):
    """A record imds-detect needs could not be read: `reason` is a stable skip category.

    `record` is set when the header was readable, so that the event it belonged to is known.
    """

    def __init__(self, reason: str, detail: str, record: Record | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.record = record


@dataclass(slots=True)
class Record:
    """One tracked audit record: who wrote it, which event it belongs to, and its undecoded fields."""

    node: str
    kind: str  # SYSCALL, EXECVE, PROCTITLE, SOCKADDR, CWD or EOE
    stamp: bytes  # the text inside msg=audit(...)
    key: bytes  # names the event: the ``node=NAME `` prefix (if any) followed by the stamp
    body: str  # the fields (raw part only for ENRICHED lines)
    enriched: str  # the ENRICHED translations after GS, or ""
    interpreted: bool  # ausearch -i: values are decoded text, not quoted/hex


def read_record(line: bytes) -> Record | None:
    """The tracked record on `line`, or None for a well-formed record of another type.

    Raises :class:`RecordError` (``malformed-record`` or ``invalid-utf8``) when the line is not an audit
    record at all, or is a tracked record whose header is broken.
    """
    start = 0
    node = ""
    if line.startswith(b"node="):
        space = line.find(b" ")
        if space < 0:
            raise RecordError("malformed-record", "node= prefix without a record")
        node = line[5:space].decode("utf-8", "replace")
        start = space + 1
    if not line.startswith(b"type=", start):
        raise RecordError("malformed-record", "not an audit record (no type=)")
    space = line.find(b" ", start)
    kind = line[start + 5: space if space >= 0 else len(line)]
    if kind not in TRACKED:
        return None
    if space < 0 or not line.startswith(b"msg=audit(", space + 1):
        raise RecordError("malformed-record", f"{kind.decode()} record without msg=audit(...)")
    open_at = space + 11
    close = line.find(b")", open_at)
    if close < 0:
        raise RecordError("malformed-record", f"{kind.decode()} record cut inside its msg=audit(...) header")
    stamp = line[open_at:close]
    if line.startswith(b"): ", close):  # raw records: "...): fields"
        payload = line[close + 3:]
    else:
        rest = line[close + 1:].lstrip(b" ")
        if not rest.startswith(b":"):
            raise RecordError("malformed-record", f"{kind.decode()} record header not followed by ':'")
        payload = rest[1:].lstrip(b" ")
    interpreted = not stamp[:1].isdigit() or b" " in stamp or b"/" in stamp or b"-" in stamp
    name = _KINDS[kind]
    key = line[:start] + stamp if start else stamp
    try:
        text = payload.decode("utf-8", "replace" if interpreted else "strict")
    except UnicodeDecodeError as error:
        record = Record(node, name, stamp, key, "", "", interpreted)
        raise RecordError("invalid-utf8", f"{name} record: byte {error.start} of its fields "
                                          "is not UTF-8 (kernel records are ASCII)", record) from None
    if GS in text:
        body, _, enriched = text.partition(GS)
        return Record(node, name, stamp, key, body.rstrip(), enriched.strip(), interpreted)
    return Record(node, name, stamp, key, text.rstrip(), "", interpreted)


# --------------------------------------------------------------------------- time

_DATE_SEPARATORS = re.compile(r"[/.-]")
STAMP_DIGITS = 11  # seconds of a raw stamp: up to the year 5138 (the fast paths' patterns use the same bound)


def epoch_ms(stamp: bytes, interpreted: bool) -> int:
    """Milliseconds since the epoch of an event stamp (raises RecordError when unreadable).

    Raw stamps are ``SECONDS.MILLIS:SERIAL``. Interpreted stamps (``ausearch -i``) are local time of the
    machine that ran ausearch in its locale's ``%x %T`` form, without a zone; they are read as UTC
    (run ``TZ=UTC ausearch -i``), with the date as MM/DD/YYYY (or YY), YYYY-MM-DD or DD.MM.YYYY, and
    DD/MM/YYYY when the first part cannot be a month.
    """
    text = stamp.decode("ascii", "replace")
    moment, colon, serial = text.rpartition(":")
    if not colon or not serial.isdigit():
        raise RecordError("malformed-record", f"event stamp {text!r} has no serial")
    if not interpreted:
        seconds, dot, millis = moment.partition(".")
        # at most STAMP_DIGITS digits of seconds: later than datetime can hold (and int() refuses 4300 digits)
        if not (seconds.isdigit() and len(seconds) <= STAMP_DIGITS and dot and millis.isdigit() and len(millis) <= 3):
            raise RecordError("malformed-record", f"event stamp {text!r} is not SECONDS.MILLIS:SERIAL")
        return stamp_milliseconds(seconds, millis)
    return _interpreted_ms(moment, text)


def stamp_milliseconds(seconds: str | bytes, millis: str | bytes) -> int:
    """The time of a raw stamp ``SECONDS.MILLIS`` in milliseconds: MILLIS has 1 to 3 digits, read as thousandths
    (``5`` is 500)."""
    return int(seconds) * 1000 + int(millis) * (1000, 100, 10, 1)[len(millis)]


def _interpreted_ms(moment: str, text: str) -> int:
    date, _, clock = moment.strip().partition(" ")
    parts = _DATE_SEPARATORS.split(date)
    hms, _, millis = clock.partition(".")
    clock_parts = hms.split(":")
    numbers = [*parts, *clock_parts, millis or "0"]
    if len(parts) != 3 or len(clock_parts) != 3 or not all(p.isdigit() for p in numbers):
        raise RecordError("malformed-record", f"interpreted event stamp {text!r} is not 'DATE HH:MM:SS.mmm:SERIAL'")
    a, b, c = (int(p) for p in parts)
    if len(parts[0]) == 4:  # YYYY-MM-DD
        year, month, day = a, b, c
    elif "." in date or a > 12:  # DD.MM.YYYY, DD/MM/YYYY
        day, month, year = a, b, c
    else:  # MM/DD/YYYY (C and en_US locales)
        month, day, year = a, b, c
    if year < 100:
        year += 2000 if year < 69 else 1900
    try:
        moment_value = datetime(year, month, day, int(clock_parts[0]), int(clock_parts[1]), int(clock_parts[2]),
                                tzinfo=UTC)
    except (ValueError, OverflowError):
        raise RecordError("malformed-record", f"interpreted event stamp {text!r} is not a valid date") from None
    return int((moment_value - _EPOCH).total_seconds()) * 1000 + int(millis.ljust(3, "0")[:3])


def moment_of(milliseconds: int) -> datetime:
    """The aware UTC datetime of an epoch in milliseconds."""
    return _EPOCH + timedelta(milliseconds=milliseconds)


# --------------------------------------------------------------------------- fields and values


def raw_fields(body: str) -> dict[str, str]:
    """``key=value`` fields of a raw record, values left undecoded (quotes kept)."""
    fields: dict[str, str] = {}
    for token in body.split(" "):
        key, equals, value = token.partition("=")
        if equals and key not in fields:
            fields[key] = value
    return fields


_KEY = re.compile(r"(?:^|(?<= ))([A-Za-z_][A-Za-z0-9_\[\]-]*)=")


def interpreted_fields(text: str) -> dict[str, str]:
    """``key=value`` fields of interpreted text, where values may contain spaces or be ``{ ... }`` groups.

    A value runs to the next `` key=``; a value that starts with ``{`` runs to its closing ``}``.
    """
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    index = 0
    while index < len(matches):
        match = matches[index]
        start = match.end()
        if text.startswith("{", start):
            close = text.find("}", start)
            end = len(text) if close < 0 else close + 1
            while index + 1 < len(matches) and matches[index + 1].start() < end:
                index += 1
        else:
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(match.group(1), text[start:end].strip())
        index += 1
    return fields


def hex_bytes(value: str, what: str) -> bytes:
    """The bytes of an audit hex string (raises RecordError ``bad-hex``)."""
    if len(value) % 2:
        raise RecordError("bad-hex", f"{what}: odd-length hex ({_preview(value)})")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RecordError("bad-hex", f"{what}: not hex ({_preview(value)})") from None


_OCTAL = re.compile(r"\\([0-3][0-7][0-7])")


def unescape_interpreted(text: str) -> str:
    """Undo ausearch's escaping of control characters as ``\\ooo`` (``\\012`` for a newline).

    Other bytes, backslashes included, are printed as they are, so only control characters are undone.
    """
    if "\\" not in text:
        return text
    return _OCTAL.sub(lambda m: chr(value) if (value := int(m.group(1), 8)) < 0x20 or value == 0x7F else m.group(0),
                      text)


def decode_value(value: str, what: str, interpreted: bool = False) -> str:
    """A field value as text: quoted as is, hex decoded (UTF-8, invalid bytes replaced), nothing as ""."""
    if interpreted:
        return "" if value in _NOTHING else unescape_interpreted(value)
    if value[:1] == '"':
        if len(value) < 2 or value[-1] != '"':
            raise RecordError("malformed-record", f"{what}: unterminated quoted value ({_preview(value)})")
        return value[1:-1]
    if value in _NOTHING:
        return ""
    return hex_bytes(value, what).decode("utf-8", "replace")


def _preview(value: str) -> str:
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


# --------------------------------------------------------------------------- sockaddr


@dataclass(frozen=True, slots=True)
class SockAddr:
    """An AF_INET / AF_INET6 socket address (other families are not network access)."""

    family: str  # "inet" or "inet6"
    ip: str  # canonical text; IPv4-mapped IPv6 as ::ffff:a.b.c.d
    port: int


def _ipv6_text(address: ipaddress.IPv6Address) -> str:
    mapped = address.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else address.compressed


def sockaddr_from_hex(value: str) -> SockAddr | None:
    """The address in a raw ``saddr`` hex dump, None for a non-IP family (raises RecordError).

    ``sa_family`` is in host byte order (``0200``/``0A00`` on little-endian, ``0002``/``000A`` on s390x
    and other big-endian arches); every family number is below 256, so the non-zero byte is the family
    whatever the order. Port and address are in network order. Trailing padding may be absent.
    """
    data = hex_bytes(value, "SOCKADDR saddr")
    if len(data) < 2:
        raise RecordError("malformed-record", f"SOCKADDR saddr of {len(data)} bytes")
    first, second = data[0], data[1]
    family = first if second == 0 else second if first == 0 else -1
    if family == 2:
        if len(data) < 8:
            raise RecordError("malformed-record", f"AF_INET saddr of {len(data)} bytes (needs 8)")
        return SockAddr("inet", str(ipaddress.IPv4Address(data[4:8])), int.from_bytes(data[2:4], "big"))
    if family == 10:
        if len(data) < 24:
            raise RecordError("malformed-record", f"AF_INET6 saddr of {len(data)} bytes (needs 24)")
        address = ipaddress.IPv6Address(data[8:24])
        return SockAddr("inet6", _ipv6_text(address), int.from_bytes(data[2:4], "big"))
    return None


def sockaddr_from_text(value: str) -> SockAddr | None:
    """The address in an interpreted ``{ saddr_fam=inet laddr=A lport=P }`` group (older: ``fam=``)."""
    if not value.startswith("{"):
        raise RecordError("malformed-record", f"SOCKADDR interpreted as {value[:60]!r}: the address is not in "
                                              "the text (ausearch could not decode it, e.g. a big-endian log "
                                              "read on a little-endian host); scan the raw log instead")
    inner = value.strip().removeprefix("{").removesuffix("}")
    fields = raw_fields(" ".join(inner.split()))
    family = fields.get("saddr_fam") or fields.get("fam") or ""
    if family not in ("inet", "inet4", "inet6", "ipv4", "ipv6"):
        return None
    try:
        address = ipaddress.ip_address(fields.get("laddr", "").strip("[]"))
        port = int(fields.get("lport", ""))
    except ValueError:
        raise RecordError("malformed-record", f"SOCKADDR {value[:80]!r}: unreadable address or port") from None
    if not 0 <= port <= 65535:
        raise RecordError("malformed-record", f"SOCKADDR port {port} out of range")
    if isinstance(address, ipaddress.IPv6Address):
        return SockAddr("inet6", _ipv6_text(address), port)
    return SockAddr("inet", str(address), port)


# --------------------------------------------------------------------------- syscalls

CONNECT = "connect"
EXECVE = "execve"
OTHER = "other"
_SOCKETCALL = "socketcall"
_X32_BIT = 0x40000000

_GENERIC_64 = {203: CONNECT, 221: EXECVE, 281: EXECVE}  # asm-generic table: aarch64, riscv64, loongarch64
_S390 = {102: _SOCKETCALL, 362: CONNECT, 11: EXECVE, 354: EXECVE}
_PPC = {102: _SOCKETCALL, 328: CONNECT, 11: EXECVE, 362: EXECVE}

# AUDIT_ARCH_* value -> (name, syscall number -> call). Numbers from the kernel syscall tables
# (libseccomp src/syscalls.csv): connect, execve and execveat (execveat counts as execve).
ARCHES: dict[int, tuple[str, dict[int, str]]] = {
    0xC000003E: ("x86_64", {42: CONNECT, 59: EXECVE, 322: EXECVE}),
    0x40000003: ("i386", {102: _SOCKETCALL, 362: CONNECT, 11: EXECVE, 358: EXECVE}),
    0xC00000B7: ("aarch64", _GENERIC_64),
    0x40000028: ("arm", {283: CONNECT, 11: EXECVE, 387: EXECVE}),
    0x80000016: ("s390x", _S390),
    0x00000016: ("s390", _S390),
    0xC0000015: ("ppc64le", _PPC),
    0x80000015: ("ppc64", _PPC),
    0x00000014: ("ppc", _PPC),
    0xC00000F3: ("riscv64", _GENERIC_64),
    0xC0000102: ("loongarch64", _GENERIC_64),
}
_X32 = {42: CONNECT, 520: EXECVE, 545: EXECVE}
# Raw arch text -> syscall numbers that matter there (x32 numbers carry bit 30 on x86_64).
_RELEVANT: dict[str, frozenset[str]] = {
    format(arch, "x"): frozenset(str(number) for number in table)
    | (frozenset(str(number | _X32_BIT) for number in _X32) if arch == 0xC000003E else frozenset())
    for arch, (_, table) in ARCHES.items()
}
_ARCH_NAMES = frozenset(name for name, _ in ARCHES.values()) | {"armeb", "x32"}
_CALL_NAMES = {"connect": CONNECT, "execve": EXECVE, "execveat": EXECVE, "socketcall": _SOCKETCALL}
_SOCKETCALL_CONNECT = frozenset(("3", "0x3", "connect"))


_RELEVANT_BYTES = {arch.encode(): frozenset(n.encode() for n in numbers) for arch, numbers in _RELEVANT.items()}
# Raw arch text -> the numbers of connect() itself (not socketcall, whose a0 decides).
_CONNECT_BYTES = {
    format(arch, "x").encode(): frozenset(str(n).encode() for n, call in table.items() if call == CONNECT)
    | (frozenset({str(42 | _X32_BIT).encode()}) if arch == 0xC000003E else frozenset())
    for arch, (_, table) in ARCHES.items()
}


_EXECVE_BYTES = {
    format(arch, "x").encode(): frozenset(str(n).encode() for n, call in table.items() if call == EXECVE)
    | (frozenset({str(n | _X32_BIT).encode() for n in _X32 if _X32[n] == EXECVE}) if arch == 0xC000003E
       else frozenset())
    for arch, (_, table) in ARCHES.items()
}


def surely_execve(arch: bytes, syscall: bytes) -> bool:
    """Whether raw ``arch``/``syscall`` values name execve() or execveat() on a known arch."""
    numbers = _EXECVE_BYTES.get(arch)
    return numbers is not None and syscall in numbers


def surely_connect(arch: bytes, syscall: bytes) -> bool:
    """Whether raw ``arch``/``syscall`` values name connect() on a known arch."""
    numbers = _CONNECT_BYTES.get(arch)
    return numbers is not None and syscall in numbers


def surely_other(arch: str | bytes, syscall: str | bytes) -> bool:
    """Whether raw ``arch``/``syscall`` values name a known arch and a syscall that is not connect/execve.

    The cheap test that lets the records of all other syscalls pass without parsing their fields.
    """
    if isinstance(arch, bytes) and isinstance(syscall, bytes):
        wanted = _RELEVANT_BYTES.get(arch)
        return wanted is not None and syscall not in wanted
    numbers = _RELEVANT.get(str(arch))
    return numbers is not None and str(syscall) not in numbers


def classify_syscall(arch: str, syscall: str, a0: str, interpreted: bool) -> str | None:
    """``connect``, ``execve``, ``other``, or None when the arch is unknown (or the fields unreadable).

    i386, s390 and ppc reach connect() through socketcall(2) with a0 = 3 (SYS_CONNECT) as well.
    """
    if interpreted:
        if arch not in _ARCH_NAMES and not arch.startswith(("arm", "mips")):
            return None
        name, _, detail = syscall.partition("(")  # ausearch -i writes socketcall(connect)
        if name == _SOCKETCALL and detail:
            a0 = detail.rstrip(")")
        call = _CALL_NAMES.get(name, OTHER)
    else:
        try:
            arch_value = int(arch, 16)
            number = int(syscall)
        except ValueError:
            return None
        known = ARCHES.get(arch_value)
        if known is None:
            return None
        table = known[1]
        if arch_value == 0xC000003E and number & _X32_BIT:
            table, number = _X32, number & ~_X32_BIT
        call = table.get(number, OTHER)
    if call == _SOCKETCALL:
        return CONNECT if a0.lower() in _SOCKETCALL_CONNECT else OTHER
    return call


_ERRNO = {
    "-1": "EPERM", "-2": "ENOENT", "-11": "EAGAIN", "-13": "EACCES", "-97": "EAFNOSUPPORT", "-99": "EADDRNOTAVAIL",
    "-101": "ENETUNREACH", "-103": "ECONNABORTED", "-104": "ECONNRESET", "-110": "ETIMEDOUT",
    "-111": "ECONNREFUSED", "-113": "EHOSTUNREACH", "-114": "EALREADY", "-115": "EINPROGRESS",
}


def errno_name(exit_value: str) -> str:
    """``EINPROGRESS`` for ``-115`` (raw) or ``EINPROGRESS(Operation now in progress)`` (interpreted)."""
    name = _ERRNO.get(exit_value)
    if name:
        return name
    head = exit_value.split("(", 1)[0]
    return head if head.startswith("E") and head.isupper() else f"exit={exit_value}"
