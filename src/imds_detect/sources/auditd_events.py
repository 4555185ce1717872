"""Assembling audit records into events (bounded memory) and turning connect/execve events into Events.

An audit event is every record that shares ``(node, msg=audit(TIME:SERIAL))``. Records of different
events interleave and may arrive out of order, EOE (end of event) may be missing, records may be lost
and serials roll over; so events are keyed by (node, stamp) text, never by serial order, and an open
event is closed by the first of:

- its EOE record, or a ``----`` separator line (``ausearch`` output);
- more than ``window_events`` newer events opened after it (the cap on open events: at most
  ``window_events + 1`` are ever open; closing that way is counted as ``evicted``, and as a hit of
  ``max_audit_open_events`` (:mod:`imds_detect.limits`, its default) in the scan summary: the event is
  judged as it stands, a record of it that comes later is reported as ``incomplete-event``);
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
from functools import lru_cache

from .. import limits as _limits
from ..detect.network import address_field_hit
from ..knowledge.agents import agents_named
from ..knowledge.endpoints import ADDRESSES
from ..knowledge.indicators import could_mention_metadata
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
    STAMP_DIGITS,
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
    stamp_milliseconds,
    surely_other,
)
from .base import Skip, SkipSink

__all__ = ["FORMAT", "Assembler", "AssemblyStats"]

FORMAT = "auditd"
WINDOW_EVENTS = _limits.Limits().max_audit_open_events  # the default (the scan's limits decide)
WINDOW_MS = 2000
MAX_PIDS = 16384
# tracked records kept per event (EXECVE continuation records included); the default of
# limits.max_audit_event_records: further records are reported (skipped), the event is built from the first ones
MAX_RECORDS = _limits.Limits().max_audit_event_records
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
    # While LIGHT: the records read since the SYSCALL (line, number), to build the event after all when a
    # later record could change its outcome (see :meth:`Assembler.unlight`); whether it is an IP connect.
    consumed: list[tuple[bytes, int]] | None = None
    light_ip: bool = False
    light_known: Known | None = None  # a light execve's process, for the pid map
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
    # ASCII digits only (str.isdigit() takes '²', which int() refuses), and not 4300 of them (int() refuses)
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 18 else None


@dataclass(slots=True)
class _LazyConnect:
    """A pid map entry from a light connect: its raw ``exe`` and ``comm`` values (checked decodable) over the
    previous entry; decoded when looked up (see :meth:`Assembler._known_connect`)."""

    exe: bytes
    comm: bytes
    previous: Known | bytes | None


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
# The fields of an EXECVE record that holds the whole argv: argc, then a0..a(argc-1) and nothing else.
_EXECVE_PAYLOAD = re.compile(rb"argc=([0-9]{1,3})((?: a[0-9]+=[^ ]*)*)")  # argc of _INDEX_RUNS, else the full path
_ARG = re.compile(rb" a([0-9]+)=([^ ]*)")
_INDEX_RUNS = {count: [str(i).encode() for i in range(count)] for count in range(1, 257)}  # argc -> a0..a(argc-1)
_NOTHING_BYTES = frozenset((b"(null)", b"(none)", b"?", b""))
# A PROCTITLE or CWD record whose value the full path decodes without a skip (ASCII, even-length hex or a
# quoted printable string). Such records of an event judged harmless can be passed over.
SAFE_VALUE = rb"(?:(?:[0-9A-F][0-9A-F])*+|\"[\x21\x23-\x7e]*+\")"
SAFE_RECORD = re.compile(rb"(?:node=[^\ \n]+\ )?type=(?:PROCTITLE\ msg=audit\([0-9.:]+\):\ proctitle="
                         rb"|CWD\ msg=audit\([0-9.:]+\):\ cwd=)" + SAFE_VALUE, re.VERBOSE)


def _field(line: bytes, marker: bytes) -> bytes | None:
    """The raw value of the first field `marker` (`` name=``) of a raw record line, or None."""
    start = line.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = line.find(b" ", start)
    return line[start:end] if end >= 0 else line[start:]


def _decodable(value: bytes) -> bool:
    """Whether :func:`.auditd_records.decode_value` reads raw `value` without an error."""
    if value[:1] == b'"':
        return len(value) >= 2 and value[-1:] == b'"'
    return value in _NOTHING_BYTES or (not len(value) % 2 and _HEX.fullmatch(value) is not None)


def _decoded(value: bytes, what: str) -> str:
    return decode_value(value.decode("ascii"), what)


@lru_cache(maxsize=1024)
def _off_api(value: bytes) -> bool:
    """Whether the network rule finds nothing in a connect to the IP saddr hex `value` (well-formed)."""
    address = sockaddr_from_hex(value.decode("ascii"))
    return address is not None and address_field_hit(address.ip, address.port) is None


# A raw SYSCALL record in the kernel's field order: when its fields match this, the values captured are the
# first fields of those names (every value before them belongs to another field and holds no space).
_KERNEL_SYSCALL = re.compile(
    rb"(?:node=[^ ]+ )?type=SYSCALL msg=audit\([^ )]*\): arch=[^ ]+ syscall=[^ ]+ (?:per=[^ ]+ )?success=([^ ]*) "
    rb"exit=[^ ]+ a0=[^ ]+ a1=[^ ]+ a2=[^ ]+ a3=[^ ]+ items=[^ ]+ ppid=([^ ]*) pid=([0-9]+) auid=[^ ]+ uid=[^ ]+ "
    rb"gid=[^ ]+ euid=[^ ]+ suid=[^ ]+ fsuid=[^ ]+ egid=[^ ]+ sgid=[^ ]+ fsgid=[^ ]+ tty=[^ ]+ ses=[^ ]+ "
    rb"comm=(\"[^ \"]*\"|[0-9A-F]*) exe=(\"[^ \"]*\"|[0-9A-F]*)(?= |$)")

Fields = tuple[bytes, bytes | None, bytes, bytes, bytes | None]  # pid, ppid, comm, exe, success (raw values)
Process = tuple[str, str, tuple[str, ...]]  # exe, comm, argv


def light_syscall(line: bytes, ascii_known: bool = False) -> Fields | None:
    """``(pid, ppid, comm, exe, success)`` raw values of a raw connect/execve SYSCALL `line` whose built
    event would read without a skip - ASCII (`ascii_known`: already checked), a numeric pid, decodable comm
    and exe - else None. (Each is the first field of its name, as :func:`.auditd_records.raw_fields` takes
    it; this runs for most connect and execve events, so the kernel's own layout is tried first.)"""
    if not ascii_known and not line.isascii():
        return None
    kernel = _KERNEL_SYSCALL.match(line)
    if kernel is not None:
        success, ppid, pid, comm, exe = kernel.groups()
        if (comm[:1] == b'"' or not len(comm) % 2) and (exe[:1] == b'"' or not len(exe) % 2):
            return pid, ppid, comm, exe, success
    pid = _field(line, b" pid=")
    comm = _field(line, b" comm=")
    exe = _field(line, b" exe=")
    if (pid is None or comm is None or exe is None or not pid.isdigit() or not _decodable(comm)
            or not _decodable(exe)):
        return None
    return pid, _field(line, b" ppid="), comm, exe, _field(line, b" success=")


def _light_argv(payload: bytes) -> list[str] | None:
    """The argv of an ASCII EXECVE record's fields when they hold all of it (argc, then a0..a(argc-1) with
    decodable values, nothing else), decoded as the full path decodes it; else None."""
    fields = _EXECVE_PAYLOAD.fullmatch(payload)
    if fields is None:
        return None
    args = _ARG.findall(fields.group(2))
    if [index for index, _ in args] != _INDEX_RUNS.get(int(fields.group(1))):
        return None
    argv: list[str] = []
    for _, value in args:
        if value[:1] == b'"':
            if len(value) < 2 or value[-1:] != b'"':
                return None
            argv.append(value[1:-1].decode("ascii"))
        elif value in _NOTHING_BYTES:
            argv.append("")
        elif len(value) % 2 or _HEX.fullmatch(value) is None:
            return None
        else:
            argv.append(bytes.fromhex(value.decode("ascii")).decode("utf-8", "replace"))
    return argv


def light_connect(value: bytes, line: bytes, ascii_known: bool = False) -> bool | None:
    """Whether a connect whose SOCKADDR `line` has saddr hex `value` (and whose SYSCALL line passed
    :func:`light_syscall`) cannot alert and reads without a skip: True for an IP connect, False for another
    family, None when it must be built. (`ascii_known`: `line` is known to be ASCII.)

    Cannot alert: an address the network rule cannot match (an IP that is no metadata endpoint's,
    IPv4-mapped and -compatible IPv6 unwrapped, or an endpoint's address on a port that is not its API: the
    rule's own :func:`.network.address_field_hit` decides), or a non-IP family. Reads without a skip: ASCII,
    a well-formed saddr.
    """
    if not ascii_known and not line.isascii():
        return None
    return _light_address(value)


@lru_cache(maxsize=4096)
def _light_address(value: bytes) -> bool | None:
    """:func:`light_connect` for the saddr hex `value` alone (a pure function: addresses recur)."""
    if len(value) < 4 or len(value) % 2 or _HEX.fullmatch(value) is None:
        return None
    family = value[:4]
    if family in _INET:
        if len(value) < 16 or (value[8:16].upper() in _V4_HEX and not _off_api(value)):
            return None
        return True
    if family in _INET6:
        if len(value) < 48:
            return None
        address = value[16:48].upper()
        if ((address in _V6_HEX or (address.startswith(_ZERO_80) and address[20:24] in _MAPPED_OR_ZERO
                                    and address[24:] in _V4_HEX)) and not _off_api(value)):
            return None
        return True
    if value[:2] == value[2:4] or b"00" not in (value[:2], value[2:4]):
        return None  # no readable family: the full path reports it
    return False  # a unix/netlink/... connect: no event


def light_exec(fields: Fields, payload: bytes, line: bytes, ascii_known: bool = False) -> Process | None:
    """``(exe, comm, argv)`` of an execve (its SYSCALL line with :func:`light_syscall` `fields`, its first
    EXECVE `line` with fields `payload`) that cannot alert and reads without a skip, else None.
    (`ascii_known`: `line` is known to be ASCII.)

    Cannot alert: a successful execve whose arguments all sit in this record (quoted or hex), whose command
    line cannot mention a metadata endpoint (the command-line rule's own gate on the very text it would see)
    and whose program bears no agent's name (the masquerade rule).
    """
    if len(payload) > LIGHT_EXECVE_LIMIT or fields[4] != b"yes" or not (ascii_known or line.isascii()):
        return None
    if len(payload) > _VERDICT_PAYLOAD:
        return _exec_verdict.__wrapped__(fields[2], fields[3], payload)
    return _exec_verdict(fields[2], fields[3], payload)


_VERDICT_PAYLOAD = 2048  # longer EXECVE fields are judged each time, not remembered


@lru_cache(maxsize=2048)
def _exec_verdict(comm_value: bytes, exe_value: bytes, payload: bytes) -> Process | None:
    """:func:`light_exec` for decodable raw comm and exe values and EXECVE fields (a pure function: the same
    programs run the same command lines again and again)."""
    argv = _light_argv(payload)
    if argv is None:
        return None
    exe = clean_exe(_decoded(exe_value, "exe"))
    comm = _decoded(comm_value, "comm")
    if agents_named(comm) or agents_named(basename(exe)):
        return None  # (program_name is comm or the exe's name: both are checked)
    if could_mention_metadata(join_argv(argv)[:_limits.active().max_text_chars]):
        return None
    return exe, comm, tuple(argv)


_NO_ENTRY = Known("", "")  # (a pid map default that is a Known: no lookup needed)
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

    def __init__(self, file: str, on_skip: SkipSink, window_events: int | None = None,
                 window_ms: int = WINDOW_MS, max_pids: int = MAX_PIDS) -> None:
        self.file = file
        self.on_skip = on_skip
        limits = _limits.active()
        self.window_events = limits.max_audit_open_events if window_events is None else window_events
        self.max_records = limits.max_audit_event_records
        self.window_ms = window_ms
        self.max_pids = max_pids
        self.stats = AssemblyStats()
        self.ready: list[Event] = []
        self.open: dict[Key, _Pending] = {}
        # Events of other syscalls recognised from their SYSCALL record alone (the parser's fast path):
        # their further records are passed over. Bounded; a key leaves at its EOE.
        self.other: OrderedDict[Key, None] = OrderedDict()
        self._closed: OrderedDict[Key, bool] = OrderedDict()  # recently closed -> would a late record matter
        self.closed_keys = self._closed
        self._done: dict[int, Event | None] = {}
        self._next_seq = 0
        self._release = 0
        self._events = 0  # syscall events seen, including those passed over on the fast path
        self._newest: dict[str, int] = {}  # node -> newest audit time seen (ms)
        self.newest_by_node = self._newest
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
        if pending.records > self.max_records:
            if pending.records == self.max_records + 1:  # once per event: the rest of its records go the same way
                self.on_skip(Skip("oversized-event", self.file, line,
                                  f"more than {self.max_records} records in one event: this and further records "
                                  "of it not read ([limits] max_audit_event_records)"))
                _limits.hit("max_audit_event_records")
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
        if not (dot > 0 and colon > 0 and seconds.isdigit() and len(seconds) <= STAMP_DIGITS and millis.isdigit()
                and len(millis) <= 3 and serial.isdigit()):
            return False  # the full path reports the bad stamp
        milliseconds = stamp_milliseconds(seconds, millis)
        pending = self._open(key, node, number, milliseconds, False)
        pending.deferred = line
        pending.deferred_line = number
        pending.deferred_call = call
        return True

    def light_sockaddr(self, pending: _Pending, value: bytes, line: bytes, number: int) -> bool:
        """The raw saddr hex `value` of SOCKADDR `line` (read at `number`) of a deferred connect: True when
        :func:`light_syscall` and :func:`light_connect` make the event LIGHT (closed without building it).
        When it closes, the pid map changes as it would for the built event (:meth:`_close_light`)."""
        deferred = pending.deferred
        if (deferred is None or pending.call is not None or pending.deferred_call != CONNECT
                or light_syscall(deferred) is None):
            return False
        ip = light_connect(value, line)
        if ip is None:
            return False
        pending.call = LIGHT
        pending.light_ip = ip
        pending.consumed = [(line, number)]
        if ip:
            self.light_newest_ms = max(self.light_newest_ms, pending.milliseconds)
        return True

    def light_execve(self, pending: _Pending, payload: bytes, line: bytes, number: int) -> bool:
        """The fields `payload` of the first EXECVE record (`line`, read at `number`) of a deferred execve:
        True when :func:`light_syscall` and :func:`light_exec` make the event LIGHT. The pid map learns its
        executable, comm and argv when it closes."""
        deferred = pending.deferred
        if deferred is None or pending.call is not None or pending.deferred_call != EXECVE:
            return False
        fields = light_syscall(deferred)
        process = light_exec(fields, payload, line) if fields is not None else None
        if process is None:
            return False
        pending.call = LIGHT
        pending.consumed = [(line, number)]
        pending.light_known = Known(*process)
        self.light_newest_ms = max(self.light_newest_ms, pending.milliseconds)
        return True

    def quick_light(self, key: Key, node: str, milliseconds: int, fields: Fields, ip: bool,
                    process: Process | None) -> None:
        """A whole connect/execve event judged LIGHT at once (its SYSCALL line with :func:`light_syscall`
        `fields`, then the record that made it light, then only safe or untracked records and its EOE), while
        no event is open and `key` was not seen: exactly what :meth:`defer_syscall`, :meth:`light_sockaddr`
        or :meth:`light_execve`, and :meth:`end` do for it then (no event can fall out of the windows, and it
        is released at once; it is counted by :meth:`settle`)."""
        newest = self._newest.get(node)
        if newest is None or milliseconds > newest:
            self._newest[node] = milliseconds
        if (ip or process is not None) and milliseconds > self.light_newest_ms:
            self.light_newest_ms = milliseconds
        closed = self._closed
        closed[key] = True
        if len(closed) > CLOSED_MEMORY:
            closed.popitem(last=False)
        pid, ppid, comm, exe, _ = fields
        pids = self._pids
        if ppid is not None and ppid.isdigit():
            parent = _pid_key(node, ppid.decode("ascii")) if node else ppid
            if type(pids.get(parent, _NO_ENTRY)) is not Known:
                self._known(parent)  # (a lookup resolves a raw or lazy entry in place)
        if process is not None:
            self._know(_pid_key(node, pid.decode("ascii")) if node else pid, *process)
        elif ip:
            self._lazy_connect(_pid_key(node, pid.decode("ascii")) if node else pid, exe, comm)

    def settle(self, light: int, other: int) -> None:
        """Count `light` events applied by :meth:`quick_light` and `other` by :meth:`quick_other` (since the
        last call; before anything else reads the counts)."""
        self._events += light + other
        if light:
            self._next_seq += light
            self._release += light
            stats = self.stats
            stats.opened += light
            stats.closed["eoe"] += light
            if not stats.max_open:
                stats.max_open = 1

    def unlight(self, pending: _Pending) -> None:
        """A record of a LIGHT event that could change its outcome arrived: build the event after all, from
        the records read so far (they were checked to read without a skip), as the full path would have."""
        consumed = pending.consumed or []
        pending.call = None
        pending.consumed = None
        pending.light_ip = False
        pending.light_known = None
        for line, number in consumed:
            self.take_line(line, number)

    def take_line(self, line: bytes, number: int) -> None:
        """Parse one record line fully (a skip for what cannot be read) and take it."""
        try:
            record = read_record(line)
        except RecordError as error:
            self.on_skip(Skip(error.reason, self.file, number, error.detail))
            if error.record is not None:
                self.broken(error.record, number)
            return
        if record is not None:
            self.add(record, number, line)

    def _light_pid_effects(self, pending: _Pending, line: bytes) -> None:
        """What building the event would do to the pid map (the parent lookup resolves the parent's entry; a
        connect or successful execve updates its own pid), for a LIGHT event whose SYSCALL line is `line`."""
        fields = light_syscall(line)
        assert fields is not None  # (checked when it became LIGHT)
        pid, ppid, comm, exe, _ = fields
        node = pending.node
        if ppid is not None and ppid.isdigit():
            self._known(_pid_key(node, ppid.decode("ascii")))
        known = pending.light_known
        if known is not None:
            self._know(_pid_key(node, pid.decode("ascii")), known.exe, known.comm, known.argv)
        elif pending.light_ip:
            self._lazy_connect(_pid_key(node, pid.decode("ascii")), exe, comm)

    def _lazy_connect(self, pid: bytes, exe: bytes, comm: bytes) -> None:
        """What `_know(pid, exe, comm, None)` would record for a connect, from its raw (decodable) exe and
        comm values, decoded on lookup."""
        pids = self._pids
        previous = pids.get(pid)
        if isinstance(previous, _LazyConnect):  # resolve it now: one lazy level per pid at most
            previous = self._known(pid)
        pids[pid] = _LazyConnect(exe, comm, previous)
        pids.move_to_end(pid)
        if len(pids) > self.max_pids:
            pids.popitem(last=False)

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
        pending = self.open.get(record.key) or self._start(record, line, report=False)  # (one skip per record)
        if pending is not None:
            pending.broken = True

    def _start(self, record: Record, line: int, report: bool = True) -> _Pending | None:
        """Open the event of `record` (None for a late record of a closed event, or a bad stamp; reported
        unless `report` is False: the record's line was reported already)."""
        key = record.key
        if key in self._closed:
            self._late(record, line, key, report)
            return None
        try:
            milliseconds = epoch_ms(record.stamp, record.interpreted)
        except RecordError as error:
            if report:
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

    def _late(self, record: Record, line: int, key: Key, report: bool = True) -> None:
        self.stats.late_records += 1
        if self._closed[key] and report:
            self.on_skip(Skip("incomplete-event", self.file, line,
                              f"late {record.kind} record: its event {record.stamp.decode(errors='replace')} "
                              f"was closed (after {self.window_events} newer events or "
                              f"{self.window_ms} ms) before it arrived"))

    def _expire(self) -> None:
        """Close the oldest open events once they fall out of the event or time window."""
        while self.open:
            oldest = next(iter(self.open.values()))
            if self._next_seq - 1 - oldest.seq > self.window_events:
                _limits.hit("max_audit_open_events")  # closed early, judged as it stands (not lost)
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
        self._other_pid(pid, line, comm, len(line))

    def quick_other(self, key: Key, block: bytes, start: int, end: int, prefix: int) -> None:
        """A whole event of another syscall - its SYSCALL record ``block[start:end]`` (the record proper from
        ``start + prefix``, after any ``node=`` prefix), then records of other types, then its EOE - whose `key`
        is neither open nor in ``other``: exactly what :meth:`note_other` and then its EOE do (the event
        is counted by :meth:`settle`)."""
        at = start + prefix
        begin = block.find(b" pid=", at, end)
        comm = block.find(b" comm=", at, end)
        if begin < 0 or comm < 0:
            self.quick_other_read(key, None, block, comm, end)
            return
        stop = block.find(b" ", begin + 5, end)
        pid = block[begin + 5: stop if stop >= 0 else end]
        self.quick_other_read(key, block[start:at] + pid if prefix else pid, block, comm, end)

    def quick_other_read(self, key: Key, pid: bytes | None, block: bytes, comm: int, end: int) -> None:
        """:meth:`quick_other` for a SYSCALL record whose pid key `pid` (with any ``node=`` prefix; None: the record
        names no pid or comm) and `` comm=`` offset `comm` were read already (by the C tiler, see
        :mod:`.auditd_tiles`, or by :meth:`quick_other`)."""
        other = self.other
        if len(other) >= OTHER_MEMORY:
            other.popitem(last=False)
        if pid is not None:
            self._other_pid(pid, block, comm, end)

    def _other_pid(self, pid: bytes, data: bytes, comm: int, end: int) -> None:
        """The pid map part of an event of another syscall by `pid`, whose ``comm=...`` text starts at `comm` in
        ``data[:end]``: an entry from an execve or connect (a Known) is kept (it holds the argv), any other is
        replaced by the raw text (parsed only if looked up); either way it becomes the newest."""
        pids = self._pids
        entry = pids.get(pid)
        if entry is None:  # a new entry: at the end already
            pids[pid] = data[comm: min(comm + PID_TEXT_LIMIT, end)]
            if len(pids) > self.max_pids:
                pids.popitem(last=False)
            return
        if isinstance(entry, _LazyConnect):
            entry = self._known(pid)
        if not isinstance(entry, Known):
            pids[pid] = data[comm: min(comm + PID_TEXT_LIMIT, end)]
        pids.move_to_end(pid)

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

    def _known_connect(self, pid: bytes, lazy: _LazyConnect) -> Known:
        """`_know(pid, exe, comm, None)` of a light connect, applied now, in place: the argv of the earlier
        entry is kept when it ran the same executable (an earlier raw entry has none)."""
        previous = lazy.previous
        exe = clean_exe(_decoded(lazy.exe, "exe"))
        argv = previous.argv if isinstance(previous, Known) and previous.exe == exe else ()
        known = self._pids[pid] = Known(exe, _decoded(lazy.comm, "comm"), argv)
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
            self._light_pid_effects(pending, deferred)
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
