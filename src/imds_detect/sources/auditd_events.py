"""Assembling audit records into events (bounded memory) and turning connect/execve events into Events.

An audit event is every record that shares ``(node, msg=audit(TIME:SERIAL))``. Records of different
events interleave and may arrive out of order, EOE (end of event) may be missing, records may be lost
and serials roll over; so events are keyed by (node, stamp) text, never by serial order, and an open
event is closed by the first of:

- its EOE record, or a ``----`` separator line (``ausearch`` output);
- more than ``window_events`` newer events opened after it (the cap on open events: at most
  ``window_events + 1`` are ever open; closing that way is counted as ``evicted``);
- more than ``window_ms`` of audit time passed on its node since it was opened (``timeout``; measured
  from the newest time seen on the node, so that a clock stepping back does not close events at once);
- end of input (``eof``).

Events of other syscalls recognised from their SYSCALL record (the parser's fast path, see
:meth:`Assembler.note_other`) are not opened at all: a bounded set of their keys (:data:`OTHER_MEMORY`)
lets their further records pass, so they neither cost memory nor move the windows. The windows are only
checked when an event is opened, so an event without EOE waits for the next one (in ``--follow`` mode
too); kernels write EOE after every multi-record syscall event.

Completed events are released in the order their first record was read. Memory is bounded on any input:
open events by the window, records kept per event by :data:`MAX_RECORDS` and
:data:`.auditd_process.MAX_ARGUMENT_BYTES`, evidence text by :data:`RAW_LIMIT`, recently closed keys (to
recognise late records) by :data:`CLOSED_MEMORY`, and the pid -> process map (parents, command lines) by
``max_pids`` entries of at most :data:`PID_TEXT_LIMIT` bytes of undecoded text or one argv (LRU).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from ..knowledge.agents import agents_named
from ..knowledge.endpoints import ADDRESSES, address_info
from ..knowledge.indicators import could_mention_bytes
from ..model import Event, EventKind, ProcessInfo, SourceRef
from .auditd_process import (
    COMM_LIMIT,
    Argv,
    Known,
    basename,
    clean_exe,
    full_comm,
    join_argv,
    proctitle_command_line,
    program_name,
    take_execve,
)
from .auditd_records import (
    CONNECT,
    EXECVE,
    OTHER,
    Record,
    RecordError,
    SockAddr,
    classify_syscall,
    decode_value,
    epoch_ms,
    errno_name,
    interpreted_fields,
    moment_of,
    raw_fields,
    read_record,
    sockaddr_from_hex,
    sockaddr_from_text,
    surely_other,
)
from .base import Skip, SkipSink

__all__ = ["FORMAT", "Assembler", "AssemblyStats"]

FORMAT = "auditd"
WINDOW_EVENTS = 128
WINDOW_MS = 2000
MAX_PIDS = 16384
MAX_RECORDS = 64  # tracked records kept per event (EXECVE continuation records included)
RAW_LIMIT = 4096
RAW_LINE_LIMIT = 1024
CLOSED_MEMORY = 4096
OTHER_MEMORY = 4096
PID_TEXT_LIMIT = 600
UNKNOWN_ARCH = "unknown-arch"
# A connect whose SOCKADDR is no metadata endpoint: closed without parsing (the prefilter's verdict).
LIGHT = "light"

Key = bytes  # Record.key: node prefix + stamp


@dataclass
class AssemblyStats:
    """How events were closed and what was dropped, for tests and diagnostics."""

    opened: int = 0
    closed: Counter[str] = field(default_factory=Counter)  # eoe, separator, evicted, timeout, eof
    late_records: int = 0
    max_open: int = 0
    truncated_arguments: int = 0


@dataclass(slots=True)
class _Pending:
    """An open event: what its tracked records said so far."""

    seq: int  # release order among assembled events
    index: int  # 0-based index among all syscall events of the input (SourceRef.record)
    key: Key
    node: str
    line: int
    milliseconds: int  # the event's own time
    opened_at: int  # the newest audit time of its node when it was opened (time may step back)
    call: str | None = None  # connect, execve, other; None until the SYSCALL record is read
    syscall: dict[str, str] | None = None
    enriched: dict[str, str] | None = None
    interpreted: bool = False
    sockaddr: SockAddr | None = None
    argv: Argv | None = None
    proctitle: str | None = None
    cwd: str = ""
    broken: bool = False  # a record of it was skipped: no second skip for the same event
    deferred: bytes | None = None  # a connect's SYSCALL line, not parsed until the event proves relevant
    deferred_line: int = 0
    deferred_call: str = ""  # CONNECT or EXECVE, as the deferred line's arch and syscall number say
    records: int = 0
    raw: list[str] = field(default_factory=list)
    raw_size: int = 0


def _user(fields: dict[str, str], enriched: dict[str, str] | None, interpreted: bool) -> str:
    """The real user: the ENRICHED or interpreted name when present, else the number (0 is root)."""
    if enriched is not None and "UID" in enriched:
        try:
            name = decode_value(enriched["UID"], "UID")
        except RecordError:
            name = ""
        if name:
            return name
    uid = fields.get("uid", "")
    if interpreted:
        return uid
    return "root" if uid == "0" else uid


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


@dataclass(slots=True)
class _LazyConnect:
    """A pid map entry from a light connect: its raw ``comm=... exe=...`` text over the previous entry."""

    text: bytes
    previous: Known | bytes | None


def could_be_metadata(address: SockAddr) -> bool:
    """Whether a connect to `address` (any port) could reach a metadata endpoint: its IP, unwrapped from
    IPv4-mapped or -compatible IPv6, is one of the knowledge base's addresses."""
    ip = address.ip
    if address.family == "inet6":
        value = ipaddress.IPv6Address(ip)
        embedded = value.ipv4_mapped or (ipaddress.IPv4Address(int(value)) if 0xFFFF < int(value) < 1 << 32 else None)
        ip = str(embedded) if embedded is not None else value.compressed
    return address_info(ip) is not None


_INET = frozenset({b"0200", b"0002"})
_INET6 = frozenset({b"0A00", b"000A", b"0a00", b"000a"})
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_ZERO_80 = b"0" * 20
_MAPPED_OR_ZERO = frozenset({b"FFFF", b"0000"})
_V4_HEX = frozenset(f"{int(ipaddress.ip_address(a.address)):08X}".encode() for a in ADDRESSES
                    if ipaddress.ip_address(a.address).version == 4)
_V6_HEX = frozenset(f"{int(ipaddress.ip_address(a.address)):032X}".encode() for a in ADDRESSES
                    if ipaddress.ip_address(a.address).version == 6)
LIGHT_EXECVE_LIMIT = 16384  # longer EXECVE records take the full path (argument limits, evidence)
_QUOTED_ARG = re.compile(rb' a(\d+)="([^"]*)"')
_UNQUOTED_ARG = re.compile(rb' a\d+=[^"]')
_ARG_INDEX = re.compile(rb' a(\d+)=')
_INDEX_RUNS = {count: [str(i).encode() for i in range(count)] for count in range(1, 257)}  # argc -> a0..a(argc-1)


def _quoted(line: bytes, marker: bytes) -> bytes | None:
    """The value of a double-quoted field (`marker` ends with the opening quote), or None."""
    start = line.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = line.find(b'"', start)
    return line[start:end] if end >= 0 else None


UNSET_AUID = frozenset({"4294967295", "-1", "unset"})


def _login_session(auid: str) -> bool | None:
    """Whether the process runs inside a login session: the audit login uid is set at login and inherited;
    services started by init have it unset. None when the record does not say."""
    auid = auid.strip('"')
    if not auid:
        return None
    return auid not in UNSET_AUID


class Assembler:
    """Groups records of one input into events and builds Events from connect and execve events."""

    def __init__(self, file: str, on_skip: SkipSink, window_events: int = WINDOW_EVENTS,
                 window_ms: int = WINDOW_MS, max_pids: int = MAX_PIDS) -> None:
        self.file = file
        self.on_skip = on_skip
        self.window_events = window_events
        self.window_ms = window_ms
        self.max_pids = max_pids
        self.stats = AssemblyStats()
        self.ready: list[Event] = []
        self.open: dict[Key, _Pending] = {}
        # Events of other syscalls recognised from their SYSCALL record alone (the parser's fast path):
        # their further records are passed over. Bounded; a key leaves at its EOE.
        self.other: OrderedDict[Key, None] = OrderedDict()
        self._closed: OrderedDict[Key, bool] = OrderedDict()  # recently closed -> would a late record matter
        self._done: dict[int, Event | None] = {}
        self._next_seq = 0
        self._release = 0
        self._events = 0  # syscall events seen, including those passed over on the fast path
        self._newest: dict[str, int] = {}  # node -> newest audit time seen (ms)
        # pid -> what was last seen of it: a Known, or the raw SYSCALL line of another syscall (parsed
        # only if that pid is ever looked up as a parent). LRU, bounded by max_pids.
        self._pids: OrderedDict[bytes, Known | bytes | _LazyConnect] = OrderedDict()
        self.light_newest_ms = -1  # the newest time of IP connects closed unparsed (they are events too)

    # -- intake ---------------------------------------------------------------------------------
    def add(self, record: Record, line: int, text: bytes) -> None:
        """Take one tracked record read at `line` (1-based); `text` is the line as read, for evidence."""
        pending = self.open.get(record.key)
        if pending is None:
            if record.kind == "EOE":
                return  # the end of an event that had no tracked record, or was already closed
            pending = self._start(record, line)
            if pending is None:
                return
        elif record.kind == "EOE":
            self._close(pending, "eoe")
            return
        if pending.call == OTHER or pending.call == LIGHT:
            return  # a syscall imds-detect does not use (or cannot alert on): its records are passed over
        if pending.deferred is not None:
            self._promote(pending)
        self._feed(pending, record, line, text)

    def _feed(self, pending: _Pending, record: Record, line: int, text: bytes) -> None:
        pending.records += 1
        if pending.records > MAX_RECORDS:
            return
        try:
            self._take(pending, record)
        except RecordError as error:
            pending.broken = True
            self._skip(error, line)
            return
        if pending.call != OTHER and pending.raw_size < RAW_LIMIT:
            piece = text[:RAW_LINE_LIMIT].decode("utf-8", "replace").replace("\x1d", " ")
            pending.raw.append(piece)
            pending.raw_size += len(piece) + 1

    def end(self, pending: _Pending) -> None:
        """The EOE record of an open event."""
        self._close(pending, "eoe")

    def defer_syscall(self, key: Key, line: bytes, number: int, node: str, stamp: bytes, call: str) -> bool:
        """Open the event of a raw connect/execve SYSCALL `line` without parsing it (False: parse it instead).

        The line is parsed when the event turns out to matter; :meth:`light_sockaddr` and
        :meth:`light_execve` close it unparsed when it cannot alert. Bookkeeping (order, windows, record
        index) is the same as for a parsed event, so results do not depend on this shortcut.
        """
        if key in self._closed:
            return False
        dot = stamp.find(b".")
        colon = stamp.find(b":", dot + 1)
        seconds, millis, serial = stamp[:dot], stamp[dot + 1: colon], stamp[colon + 1:]
        if not (dot > 0 and colon > 0 and seconds.isdigit() and millis.isdigit() and len(millis) <= 3
                and serial.isdigit()):
            return False  # the full path reports the bad stamp
        milliseconds = int(seconds) * 1000 + int(millis.ljust(3, b"0"))
        pending = self._open(key, node, number, milliseconds, False)
        pending.deferred = line
        pending.deferred_line = number
        pending.deferred_call = call
        return True

    def light_sockaddr(self, pending: _Pending, value: bytes) -> bool:
        """The raw saddr hex `value` of a deferred connect: True when it closes the event as harmless.

        Harmless: a well-formed IP address that no metadata endpoint uses (whatever the port, IPv4-mapped
        and -compatible IPv6 unwrapped), or a non-IP family; and a SYSCALL line that has the fields a parsed
        event needs. The process is still remembered for parent lookups, as a parsed connect would be.
        """
        deferred = pending.deferred
        if deferred is None or pending.call is not None or pending.deferred_call != CONNECT:
            return False
        if (b" pid=" not in deferred or b" comm=" not in deferred or b" exe=" not in deferred
                or not deferred.isascii()):
            return False
        family = value[:4]
        if family in _INET:
            if len(value) < 16 or len(value) % 2 or not _HEX.fullmatch(value) or value[8:16].upper() in _V4_HEX:
                return False
        elif family in _INET6:
            if len(value) < 48 or len(value) % 2 or not _HEX.fullmatch(value):
                return False
            address = value[16:48].upper()
            if address in _V6_HEX or (address.startswith(_ZERO_80) and address[20:24] in _MAPPED_OR_ZERO
                                      and address[24:] in _V4_HEX):
                return False
        elif len(value) < 4 or value[:2] == value[2:4] or b"00" not in (value[:2], value[2:4]):
            return False  # no readable family: the full path reports it
        else:  # a unix/netlink/... connect: no event, no pid map update
            pending.call = LIGHT
            pending.deferred = None
            return True
        pending.call = LIGHT  # an IP connect: an event, and a pid map update when it closes
        self.light_newest_ms = max(self.light_newest_ms, pending.milliseconds)
        return True

    def light_execve(self, pending: _Pending, payload: bytes) -> bool:
        """The fields of the first EXECVE record of a deferred execve: True when it closes the event as
        harmless: a successful execve whose quoted arguments all sit in this record, whose arguments
        cannot mention a metadata endpoint (the gate runs on the record text, which holds each argument
        verbatim) and whose program bears no agent's name. The pid map learns its executable, comm and
        argv when it closes, as it would from the parsed event."""
        deferred = pending.deferred
        if (deferred is None or pending.call is not None or pending.deferred_call != EXECVE
                or len(payload) > LIGHT_EXECVE_LIMIT or b" success=yes " not in deferred or b"_len=" in payload
                or b"]=" in payload or not payload.isascii() or not deferred.isascii()
                or _UNQUOTED_ARG.search(payload) or b" pid=" not in deferred):
            return False
        space = payload.find(b" ")
        argc_text = payload[5:space] if space > 0 else payload[5:]
        indices = _ARG_INDEX.findall(payload)
        if not argc_text.isdigit() or indices != _INDEX_RUNS.get(int(argc_text)):
            return False  # arguments missing or continued in further EXECVE records: the full path
        comm = _quoted(deferred, b' comm="')
        exe = _quoted(deferred, b' exe="')
        if comm is None or exe is None or could_mention_bytes(payload):
            return False
        exe_text = exe.decode("ascii")
        comm_text = comm.decode("ascii")
        if agents_named(comm_text) or agents_named(exe_text.rsplit("/", 1)[-1]):
            return False  # (program_name is comm or the exe's name: both are checked)
        pending.call = LIGHT
        pending.deferred = deferred + b"\n" + payload  # decoded when it closes
        self.light_newest_ms = max(self.light_newest_ms, pending.milliseconds)
        return True

    def _know_light_execve(self, pending: _Pending, text: bytes) -> None:
        """The pid map update of a light execve, from its SYSCALL line and EXECVE fields."""
        deferred, _, payload = text.partition(b"\n")
        space = payload.find(b" ")
        argc_text = payload[5:space] if space > 0 else payload[5:]
        args = _QUOTED_ARG.findall(payload)
        comm = _quoted(deferred, b' comm="') or b""
        exe = _quoted(deferred, b' exe="') or b""
        pid_at = deferred.find(b" pid=")
        end = deferred.find(b" ", pid_at + 5)
        pid_text = deferred[pid_at + 5: end if end >= 0 else len(deferred)]
        if not pid_text.isdigit():
            return
        count = int(argc_text) if argc_text.isdigit() else None
        by_index = {int(index): value.decode("ascii") for index, value in args}
        argv = [by_index[i] for i in sorted(by_index) if count is None or i < count]
        self._know(_pid_key(pending.node, pid_text.decode("ascii")), clean_exe(exe.decode("ascii")),
                   comm.decode("ascii"), tuple(argv))

    def _remember_lazily(self, line: bytes, pending: _Pending) -> None:
        """What `_know(pid, exe, comm, None)` would record, from the raw SYSCALL line, decoded on lookup."""
        begin = line.find(b" pid=")
        comm = line.find(b" comm=")
        end = line.find(b" ", begin + 5)
        pid_text = line[begin + 5: end if end >= 0 else len(line)]
        if not pid_text.isdigit():
            return
        pid = _pid_key(pending.node, pid_text.decode("ascii"))
        previous = self._pids.get(pid)
        if isinstance(previous, _LazyConnect):  # resolve it now: one lazy level per pid at most
            previous = self._known(pid)
        self._pids[pid] = _LazyConnect(line[comm: comm + PID_TEXT_LIMIT], previous)
        self._pids.move_to_end(pid)
        if len(self._pids) > self.max_pids:
            self._pids.popitem(last=False)

    def _promote(self, pending: _Pending) -> None:
        """Parse the deferred SYSCALL line of `pending` as the slow path would have."""
        line, number = pending.deferred, pending.deferred_line
        pending.deferred = None
        assert line is not None
        try:
            record = read_record(line)
        except RecordError as error:
            self._skip(error, number)
            pending.broken = True
            return
        if record is not None:
            self._feed(pending, record, number, line)

    def broken(self, record: Record, line: int) -> None:
        """A record of this event could not be read (already reported): do not report the event again."""
        pending = self.open.get(record.key) or self._start(record, line)
        if pending is not None:
            pending.broken = True

    def _start(self, record: Record, line: int) -> _Pending | None:
        """Open the event of `record` (None for a late record of a closed event, or a bad stamp)."""
        key = record.key
        if key in self._closed:
            self._late(record, line, key)
            return None
        try:
            milliseconds = epoch_ms(record.stamp, record.interpreted)
        except RecordError as error:
            self._skip(error, line)
            return None
        return self._open(key, record.node, line, milliseconds, record.interpreted)

    def _open(self, key: Key, node: str, line: int, milliseconds: int, interpreted: bool) -> _Pending:
        """A new open event, in release order, with the newest audit time of its node brought up to date and
        the events that fell out of the windows closed (never the new one: it is the newest)."""
        newest = self._newest.get(node)
        if newest is None or milliseconds > newest:
            newest = self._newest[node] = milliseconds
        pending = _Pending(self._next_seq, self._events, key, node, line, milliseconds, newest,
                           interpreted=interpreted)
        self._next_seq += 1
        self._events += 1
        self.open[key] = pending
        self.stats.opened += 1
        self._expire()
        if len(self.open) > self.stats.max_open:
            self.stats.max_open = len(self.open)
        return pending

    def separator(self) -> None:
        """A ``----`` line of ausearch output: every open event is complete."""
        for pending in list(self.open.values()):
            self._close(pending, "separator")
        self.other.clear()

    def finish(self) -> None:
        """End of input: close what is still open."""
        for pending in list(self.open.values()):
            self._close(pending, "eof")

    def _late(self, record: Record, line: int, key: Key) -> None:
        self.stats.late_records += 1
        if self._closed[key]:
            self.on_skip(Skip("incomplete-event", self.file, line,
                              f"late {record.kind} record: its event {record.stamp.decode(errors='replace')} "
                              f"was closed (after {self.window_events} newer events or "
                              f"{self.window_ms} ms) before it arrived"))

    def _expire(self) -> None:
        """Close the oldest open events once they fall out of the event or time window."""
        while self.open:
            oldest = next(iter(self.open.values()))
            if self._next_seq - 1 - oldest.seq > self.window_events:
                self._close(oldest, "evicted")
            elif self._newest[oldest.node] - oldest.opened_at > self.window_ms:
                self._close(oldest, "timeout")
            else:
                return

    # -- records --------------------------------------------------------------------------------
    def _take(self, pending: _Pending, record: Record) -> None:
        kind = record.kind
        if kind == "SYSCALL":
            self._take_syscall(pending, record)
        elif kind == "SOCKADDR":
            if pending.sockaddr is None:
                pending.sockaddr = self._sockaddr(record)
        elif kind == "EXECVE":
            pending.argv = pending.argv or Argv()
            was_cut = pending.argv.truncated
            take_execve(pending.argv, record)
            if pending.argv.truncated and not was_cut:
                self.stats.truncated_arguments += 1
        elif kind == "PROCTITLE":
            pending.proctitle = proctitle_command_line(record)
        elif kind == "CWD":
            value = record.body[4:] if record.body.startswith("cwd=") else ""
            pending.cwd = decode_value(value, "CWD cwd", record.interpreted)

    def _take_syscall(self, pending: _Pending, record: Record) -> None:
        if pending.syscall is not None:
            return
        if record.interpreted:
            fields = interpreted_fields(record.body)
        else:
            head = record.body.split(" ", 2)
            if (len(head) == 3 and head[0].startswith("arch=") and head[1].startswith("syscall=")
                    and surely_other(head[0][5:], head[1][8:])):
                # Fast path: a syscall imds-detect does not use: remember the process only.
                pending.call = OTHER
                self._remember(raw_fields(record.body), False, pending.node)
                pending.raw.clear()
                pending.argv = None
                pending.sockaddr = None
                return
            fields = raw_fields(record.body)
        if "syscall" not in fields or "arch" not in fields:
            raise RecordError("malformed-record", "SYSCALL record without arch= or syscall= (truncated?)")
        call = classify_syscall(fields["arch"], fields["syscall"], fields.get("a0", ""), record.interpreted)
        pending.call = call = UNKNOWN_ARCH if call is None else call
        if call == OTHER:
            self._remember(fields, record.interpreted, pending.node)
            pending.raw.clear()
            pending.argv = None
            pending.sockaddr = None
            return
        for name in ("pid", "exe", "comm"):
            if name not in fields:
                raise RecordError("malformed-record", f"SYSCALL record without {name}= (truncated?)")
        pending.syscall = fields
        pending.interpreted = record.interpreted
        if record.enriched:
            pending.enriched = raw_fields(record.enriched)

    def _sockaddr(self, record: Record) -> SockAddr | None:
        body = record.body
        if not body.startswith("saddr="):
            fields = raw_fields(body) if not record.interpreted else interpreted_fields(body)
            if "saddr" not in fields:
                raise RecordError("malformed-record", "SOCKADDR record without saddr=")
            body = "saddr=" + fields["saddr"]
        value = body[6:]
        if record.interpreted:
            return sockaddr_from_text(value)
        return sockaddr_from_hex(value.split(" ", 1)[0])

    # -- the pid map ----------------------------------------------------------------------------
    def note_other(self, key: Key, line: bytes, start: int) -> None:
        """The parser's fast path: `line` is the SYSCALL record of another syscall opening event `key`;
        its ``type=`` starts at `start` (after any ``node=`` prefix).

        Its further records will be passed over, and its process is remembered for parent lookups: the
        raw ``comm=... exe=...`` text is kept (up to PID_TEXT_LIMIT bytes) and parsed only if looked up.
        """
        self._events += 1
        other = self.other
        other[key] = None
        if len(other) > OTHER_MEMORY:
            other.popitem(last=False)
        begin = line.find(b" pid=", start)
        comm = line.find(b" comm=", start)
        if begin < 0 or comm < 0:
            return
        end = line.find(b" ", begin + 5)
        pid = line[:start] + line[begin + 5: end if end >= 0 else len(line)]  # pids are per node
        pids = self._pids
        if isinstance(pids.get(pid), _LazyConnect):
            self._known(pid)
        if isinstance(pids.get(pid), Known):  # keeps the argv of its execve
            pids.move_to_end(pid)
            return
        pids[pid] = line[comm: comm + PID_TEXT_LIMIT]
        pids.move_to_end(pid)
        if len(pids) > self.max_pids:
            pids.popitem(last=False)

    def _remember(self, fields: dict[str, str], interpreted: bool, node: str) -> None:
        pid = fields.get("pid", "")
        try:
            exe = clean_exe(decode_value(fields.get("exe", ""), "exe", interpreted))
            comm = decode_value(fields.get("comm", ""), "comm", interpreted)
        except RecordError:
            return
        if pid.isdigit():
            self._know(_pid_key(node, pid), exe, comm, None)

    def _know(self, pid: bytes, exe: str, comm: str, argv: tuple[str, ...] | None) -> None:
        known = self._known(pid)
        if argv is None:
            argv = known.argv if known is not None and known.exe == exe else ()
        self._pids[pid] = Known(exe, comm, argv)
        self._pids.move_to_end(pid)
        if len(self._pids) > self.max_pids:
            self._pids.popitem(last=False)

    def _known(self, pid: bytes) -> Known | None:
        value = self._pids.get(pid)
        if value is None or isinstance(value, Known):
            return value
        if isinstance(value, _LazyConnect):
            return self._known_connect(pid, value)
        text = value.decode("utf-8", "replace")
        try:
            known = Known(clean_exe(decode_value(_find_field(text, " exe="), "exe")),
                          decode_value(_find_field(text, " comm="), "comm"))
        except RecordError:
            del self._pids[pid]
            return None
        self._pids[pid] = known
        return known

    def _known_connect(self, pid: bytes, lazy: _LazyConnect) -> Known | None:
        """`_know(pid, exe, comm, None)` of a light connect, applied now: the argv of the earlier entry is kept
        when it ran the same executable."""
        previous = lazy.previous
        if isinstance(previous, bytes):
            self._pids[pid] = previous
            previous_known = self._known(pid)
        else:
            previous_known = previous
        text = lazy.text.decode("utf-8", "replace")
        try:
            exe = clean_exe(decode_value(_find_field(text, " exe="), "exe"))
            comm = decode_value(_find_field(text, " comm="), "comm")
        except RecordError:
            if previous_known is None:
                self._pids.pop(pid, None)
            else:
                self._pids[pid] = previous_known
            return previous_known
        argv = previous_known.argv if previous_known is not None and previous_known.exe == exe else ()
        known = self._pids[pid] = Known(exe, comm, argv)
        return known

    # -- closing --------------------------------------------------------------------------------
    def _close(self, pending: _Pending, how: str) -> None:
        if pending.call is LIGHT:
            self._close_light(pending, how)
            return
        if pending.deferred is not None:
            self._promote(pending)
        del self.open[pending.key]
        self.stats.closed[how] += 1
        self._closed[pending.key] = pending.call != OTHER
        if len(self._closed) > CLOSED_MEMORY:
            self._closed.popitem(last=False)
        event = None
        if pending.call != OTHER and pending.call != LIGHT:
            try:
                event = self._build(pending)
            except RecordError as error:
                self._skip(error, pending.line)
        self._done[pending.seq] = event
        while self._release in self._done:
            done = self._done.pop(self._release)
            self._release += 1
            if done is not None:
                self.ready.append(done)

    def _close_light(self, pending: _Pending, how: str) -> None:
        """`_close` for an event judged harmless: its pid map update, and its place in the release order."""
        deferred = pending.deferred
        if deferred is not None:
            if pending.deferred_call == EXECVE:
                self._know_light_execve(pending, deferred)
            else:
                self._remember_lazily(deferred, pending)
        del self.open[pending.key]
        self.stats.closed[how] += 1
        closed = self._closed
        closed[pending.key] = True
        if len(closed) > CLOSED_MEMORY:
            closed.popitem(last=False)
        if pending.seq == self._release and not self._done:
            self._release += 1
            return
        self._done[pending.seq] = None
        while self._release in self._done:
            done = self._done.pop(self._release)
            self._release += 1
            if done is not None:
                self.ready.append(done)

    def _build(self, pending: _Pending) -> Event | None:
        fields = pending.syscall
        if pending.call == UNKNOWN_ARCH:
            if (pending.sockaddr is not None or pending.argv is not None) and fields is not None:
                self.on_skip(Skip("unsupported-arch", self.file, pending.line,
                                  f"arch={fields['arch']} syscall={fields['syscall']}: the syscall numbers of "
                                  "this arch are not known, so a connect or execve cannot be told apart"))
            return None
        if fields is None:
            if pending.sockaddr is not None and not pending.broken:
                orphan = pending.sockaddr
                self.on_skip(Skip("incomplete-event", self.file, pending.line,
                                  f"SOCKADDR {orphan.ip} port {orphan.port} without its SYSCALL record "
                                  "(lost?): neither the syscall nor the process is known"))
            return None
        interpreted = pending.interpreted
        host = pending.node
        exe = clean_exe(decode_value(fields["exe"], "SYSCALL exe", interpreted))
        comm = decode_value(fields["comm"], "SYSCALL comm", interpreted)
        pid_text = fields.get("pid", "")
        pid = _int(pid_text)
        ppid = fields.get("ppid", "")
        user = _user(fields, pending.enriched, interpreted)
        success = fields.get("success", "") != "no"
        result = "" if success else f" ({errno_name(fields.get('exit', ''))})"
        parent = self._known(_pid_key(host, ppid)) if ppid.isdigit() else None
        parent_name = full_comm(parent) if parent is not None else ""
        parent_path = parent.exe if parent is not None else ""
        source = SourceRef(FORMAT, self.file, pending.line, pending.index)
        moment = moment_of(pending.milliseconds)
        notes: list[str] = []
        if pending.call == EXECVE:
            argv: list[str] = []
            if pending.argv is not None:
                argv, notes = pending.argv.arguments()
            command_line = join_argv(argv) if argv else (pending.proctitle or "")
            if pid is not None and success:
                self._know(_pid_key(host, pid_text), exe, comm, tuple(argv))
            if not success:
                if not argv:
                    return None  # nothing was executed and nothing says what was tried
                exe, comm = "", basename(argv[0])[:COMM_LIMIT]
            process = ProcessInfo(name=program_name(comm, exe), path=exe, pid=pid, command_line=command_line,
                                  parent_name=parent_name, parent_path=parent_path, user=user, title=comm,
                                  parent_pid=_int(ppid), login_session=_login_session(fields.get("auid", "")))
            return Event(EventKind.PROCESS, moment, source, host=host, user=user, process=process,
                         action=f"execve{result}", raw=self._raw(pending, notes))
        address = pending.sockaddr
        if address is None:
            return None  # connect() on a unix/netlink socket, or its SOCKADDR was lost: no remote to judge
        command_line = self._command_line(_pid_key(host, pid_text), exe, pending.proctitle)
        process = ProcessInfo(name=program_name(comm, exe), path=exe, pid=pid, command_line=command_line,
                              parent_name=parent_name, parent_path=parent_path, user=user, title=comm,
                              parent_pid=_int(ppid), login_session=_login_session(fields.get("auid", "")))
        if pid is not None:
            self._know(_pid_key(host, pid_text), exe, comm, None)
        return Event(EventKind.NETWORK, moment, source, host=host, user=user, process=process,
                     action=f"connect{result}", remote_ip=address.ip, remote_port=address.port,
                     raw=self._raw(pending, notes))

    def _command_line(self, pid: bytes, exe: str, proctitle: str | None) -> str:
        """The connecting process's command line: its execve argv when seen for the same executable
        (captured by the kernel at exec), else PROCTITLE (the process's current argv memory, which the
        process can rewrite, cut at 128 bytes)."""
        known = self._known(pid)
        if known is not None and known.argv and known.exe == exe:
            return join_argv(known.argv)
        return proctitle or ""

    def _raw(self, pending: _Pending, notes: list[str]) -> str:
        text = "\n".join(pending.raw)
        if pending.proctitle is not None and len(pending.proctitle.encode()) >= 127:
            notes = [*notes, "PROCTITLE may be cut at 128 bytes"]
        if pending.cwd:
            notes = [*notes, f"cwd {pending.cwd}"]
        if notes:
            text += "\n# " + "; ".join(notes)
        return text[:RAW_LIMIT]

    def _skip(self, error: RecordError, line: int) -> None:
        self.on_skip(Skip(error.reason, self.file, line, error.detail))


def _pid_key(node: str, pid: str) -> bytes:
    """The pid map key: pids are only unique per node (the same form as the fast path's raw prefix)."""
    return f"node={node} {pid}".encode() if node else pid.encode()


def _find_field(body: str, marker: str) -> str:
    start = body.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    end = body.find(" ", start)
    return body[start:] if end < 0 else body[start:end]
