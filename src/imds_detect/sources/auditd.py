"""Linux audit logs (auditd): connect() and execve() events become NETWORK and PROCESS events.

Input (recognised from content by :meth:`AuditdAdapter.sniff`, plain or gzipped, one or many files):

- raw ``audit.log`` lines, with or without a ``node=NAME`` prefix;
- the ENRICHED log format (raw fields, 0x1D, upper-case translations such as ``UID="root"``);
- ``ausearch`` output, raw or interpreted (``ausearch -i``: decoded values, local-time stamps read as
  UTC, ``----`` lines between events, ``time->`` lines).

Reading (``scan``; ``--no-prefilter`` keeps the plain line loop as the reference): blocks of whole lines
(2 MiB reads) are cut at C speed (:mod:`.auditd_tiles`: a C extension, or one regular expression) into whole
raw events (SYSCALL record, records of the same ``node=`` and stamp, EOE), runs of records of untracked
types, and single lines (see
:meth:`AuditdParser._tiled`). An event of another syscall costs one pid map update; a connect or execve
that its second record (SOCKADDR, EXECVE) shows harmless is applied at once, without building it, with
exactly the state changes the line loop makes (order, windows, recently closed keys, the pid map,
including the parent lookup a built event would make); events whose records interleave are applied the
same way when that is provably what the line loop does; everything else goes through the line loop, line
by line. "Harmless" is decided by the rules' own gates (the network rule's address/port match, the
command-line gate, agent names), and also requires records that the full parse reads without a skip, so
that skips, alerts and counts are those of ``--no-prefilter``.

Records are grouped into events by ``(node, msg=audit(TIME:SERIAL))`` with bounded memory (see
:mod:`.auditd_events`: EOE, a ``----`` separator, a window of 128 newer events or 2 s of audit time, or
end of file closes an event); records are read by :mod:`.auditd_records` and argv and names come from
:mod:`.auditd_process`. Then:

- a ``connect`` syscall (``connect``, or ``socketcall`` with a0=3 on i386/s390/ppc; syscall numbers by
  ``arch`` for x86_64, x32, i386, aarch64, arm, s390x, s390, ppc64le, ppc64, ppc, riscv64, loongarch64)
  with an AF_INET or AF_INET6 SOCKADDR becomes an ``Event(kind=NETWORK)``: ``remote_ip`` is the canonical
  address (IPv4-mapped IPv6 as ``::ffff:a.b.c.d``), ``remote_port``, ``action`` ``connect`` or
  ``connect (EINPROGRESS)`` etc. (``success=yes`` is never required: a non-blocking connect logs
  ``success=no exit=-115``), ``protocol`` empty (audit does not record the socket type);
- an ``execve``/``execveat`` becomes an ``Event(kind=PROCESS)`` with the new command line (EXECVE
  arguments: quoted, hex, ``aN_len``/``aN[i]`` chunks over several records; PROCTITLE when EXECVE is
  missing). A failed execve yields an event only when its arguments were logged (the exe is then unknown).

The process: ``path`` is ``exe`` (the kernel's `` (deleted)`` mark and rpm's ``;hex`` suffix removed),
``name`` is ``comm`` except for an interpreter (for a ``#!`` script comm is the script's name, not the
executable's; see :func:`.auditd_process.program_name`), ``pid``, ``user`` the real uid (its name when
ENRICHED or interpreted, ``root`` for 0, else the number; ``auid`` stays in the evidence). A connect's
command line is the argv of the same pid's earlier execve when it ran the same executable, else
PROCTITLE (which the process can rewrite, and which the kernel cuts at 128 bytes: noted in the evidence,
not in the command line). ``parent_name``/``parent_path`` come from a bounded pid map fed by earlier
SYSCALL and EXECVE records (``parent_name`` is the parent's comm, completed from its argv when cut at 15
bytes). ``host`` is the ``node=`` name when present. ``source`` is
``SourceRef("auditd", file, line of the event's first record, 0-based index of the event among the
file's syscall events)``; ``raw`` holds the event's records (and notes: missing arguments, cut PROCTITLE).

``ausearch -i`` output is read, but the raw log is better evidence: names are resolved on the machine
that ran ausearch (uid 1000 may become someone else), very long arguments are cut, control characters
are escaped as ``\\ooo`` (undone here), arguments lose their boundaries in PROCTITLE, and ausearch cannot
decode a big-endian SOCKADDR on a little-endian host (``unknown-family(512)``: reported, the address is
lost).

What is not an event, silently: records of other types and of other syscalls (bind, accept, sendto,
open...), connect() to unix/netlink sockets, a connect whose SOCKADDR is absent. What is reported
through ``on_skip`` (with file and line; the scan goes on; nothing raises):

- ``malformed-record``: a line that is not an audit record (junk), a tracked record with a broken header
  or stamp, a truncated SYSCALL (no ``syscall=``/``exe=``...), an unterminated quoted value, a short
  sockaddr, an interpreted SOCKADDR without an address, an over-long line;
- ``bad-hex``: undecodable hex in a field imds-detect uses (comm, exe, cwd, EXECVE arguments, PROCTITLE,
  saddr);
- ``invalid-utf8``: a raw tracked record that is not UTF-8 (kernel records are ASCII);
- ``incomplete-event``: an IP SOCKADDR whose SYSCALL record never came (lost), or a late record that
  arrived after its event was closed by the window;
- ``unsupported-arch``: a connect/execve-looking event on an arch whose syscall numbers are not known.

Records of other types are never reported one by one: that would flood the summary.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from typing import BinaryIO

from .. import limits as _limits
from ..engine.lines import may_hold_long_lines
from ..model import Event
from .auditd_events import (
    FORMAT,
    LIGHT,
    OTHER_MEMORY,
    SAFE_RECORD,
    Assembler,
    AssemblyStats,
    light_connect,
    light_exec,
    light_syscall,
)
from .auditd_records import (
    _CONNECT_BYTES,
    _EXECVE_BYTES,
    _RELEVANT_BYTES,
    CONNECT,
    EXECVE,
    GS,
    TRACKED,
    moment_of,
    stamp_milliseconds,
    surely_connect,
    surely_execve,
    surely_other,
)
from .auditd_tiles import tiles
from .base import ReadCounts, Skip, SkipSink, SourceAdapter

__all__ = ["AUDITD_ADAPTER", "FORMAT", "AuditdAdapter", "AuditdParser"]

READ_BLOCK = 2 << 20  # bytes read at a time; blocks end at the last newline of a read
# kernel records stay under 9 KB; ENRICHED and interpreted lines a little more. The default: the scan's
# limits decide (limits.max_line_bytes).
MAX_LINE = _limits.Limits().max_line_bytes
_SNIFF_LINES = 20
GS_BYTE = GS.encode()

# The parts of single records that the line loop reads (see _quick_region).
_HEAD = re.compile(rb"((?:node=[^ \n]+ )?)type=([A-Z_0-9]+) msg=audit\(([0-9]+\.[0-9]{1,3}:[0-9]+)\)")
_SYSCALL_HEAD = re.compile(rb"((?:node=[^ \n]+ )?)type=SYSCALL msg=audit\(([0-9]{1,11})\.([0-9]{1,3}):[0-9]+\): "
                           rb"arch=([0-9a-f]{1,8}) syscall=([0-9]{1,10}) ")
_SOCKADDR_VALUE = re.compile(rb"(?:node=[^ \n]+ )?type=SOCKADDR msg=audit\([^)]*\): saddr=([^ ]*)")
_EXECVE_FIELDS = re.compile(rb"(?:node=[^ \n]+ )?type=EXECVE msg=audit\([^)]*\): (argc=.*)", re.DOTALL)


def _node(line: bytes, start: int) -> str:
    """The ``node=`` name of a line whose record starts at `start` ("" without a prefix)."""
    return line[5: start - 1].decode("utf-8", "replace") if start else ""


def _record_start(line: bytes) -> bool:
    """Whether a line looks like the start of an audit record (with or without ``node=``)."""
    if line.startswith(b"node="):
        space = line.find(b" ")
        if space < 0:
            return False
        line = line[space + 1:]
    if not line.startswith(b"type="):
        return False
    space = line.find(b" ")
    return 5 < space <= 40 and line.startswith(b"msg=audit(", space + 1)


def _ignorable(line: bytes) -> bool:
    """Blank lines, ``----`` separators and ``time->`` lines of ausearch output."""
    return not line.strip() or line.startswith((b"----", b"time->"))


class AuditdParser:
    """One pass over one audit log: lines -> records -> events. ``stats`` tells how events were closed.

    ``light`` (the prefilter) closes harmless connect/execve events without parsing them, and reads
    blocks of lines with :func:`.auditd_tiles.tiles`: the records that the line loop (:meth:`_line`) would pass over
    without a change of state are not looked at one by one (see :meth:`_tiled`). ``light=False`` runs
    every line through the line loop: the reference that tests compare the shortcuts with. ``tiled=False``
    keeps the light shortcut but runs the line loop on every line (for tests).
    """

    def __init__(self, file: str, on_skip: SkipSink, light: bool = False, tiled: bool = True,
                 block_size: int | None = None, **window: int) -> None:
        self.file = file
        self.on_skip = on_skip
        self.light = light  # close harmless connect/execve events unparsed (the prefilter); False: build every event
        self.tiled = tiled and light
        self.block_size = block_size or READ_BLOCK
        self.max_line = _limits.active().max_line_bytes
        self.assembler = Assembler(file, on_skip, **window)
        self._not_records = 0  # blank lines and ausearch decoration

    @property
    def stats(self) -> AssemblyStats:
        return self.assembler.stats

    def events(self, stream: BinaryIO, counts: ReadCounts | None = None) -> Iterator[Event]:
        """Every connect/execve event of `stream`, in the order of their first records."""
        assembler = self.assembler
        number = 0
        for piece, end in _pieces(stream, self.block_size, self.max_line):
            if self.tiled and isinstance(piece, bytes):
                number += self._tiled(piece, end, number)
                if assembler.ready:
                    yield from self._drain()
            else:
                for line in piece[:end].split(b"\n")[:-1] if isinstance(piece, bytes) else piece:
                    number += 1
                    self._line(line, number)
                    if assembler.ready:
                        yield from self._drain()
            if counts is not None:
                counts.records = number - self._not_records
        assembler.finish()
        yield from self._drain()
        if counts is not None and assembler.light_newest_ms >= 0:
            counts.newest = moment_of(assembler.light_newest_ms)

    def _key_met(self, key: bytes) -> None:
        """The line loop met a record of a tracked type of the event `key` (a hook: see parallel_auditd)."""

    def _line(self, line: bytes | None, number: int) -> None:
        """The line loop: one line (without its newline; None for an over-long one) read at `number`.

        The common lines cost a few ``bytes.find`` calls and a dict lookup: records of untracked types,
        and every record of an event whose SYSCALL names another syscall. Everything else goes through
        :func:`.auditd_records.read_record` and the assembler.
        """
        if line is None:
            self.on_skip(Skip("malformed-record", self.file, number,
                              f"line longer than {self.max_line} bytes ([limits] max_line_bytes)"))
            _limits.hit("max_line_bytes")
            return
        assembler = self.assembler
        if line.startswith(b"type="):
            start = 0
        elif line.startswith(b"node="):
            start = line.find(b" ") + 1
        else:
            start = -1
        if start >= 0:
            space = line.find(b" ", start)
            if space > 0:
                kind = line[start + 5: space]
                if kind not in TRACKED:
                    return  # a record of a type imds-detect does not use
                close = line.find(b")", space)
                if close > 0 and line.startswith(b"msg=audit(", space + 1):
                    key = line[:start] + line[space + 11: close] if start else line[space + 11: close]
                    self._key_met(key)
                    other = assembler.other
                    if key in other:
                        if kind == b"EOE":
                            del other[key]
                        return  # an event of another syscall
                    open_events = assembler.open
                    pending = open_events.get(key)
                    if kind == b"EOE":
                        if pending is not None:
                            assembler.end(pending)
                        return  # (an EOE of an event without tracked records needs nothing)
                    if pending is not None and pending.call is LIGHT:  # an event judged harmless ...
                        if SAFE_RECORD.fullmatch(line) is not None:
                            assert pending.consumed is not None
                            pending.consumed.append((line, number))
                            return  # ... and a record that cannot change that (kept in case one will)
                        assembler.unlight(pending)  # built after all; this record is read below
                    # (the shortcuts below take only lines that read_record reads: ``type=`` after ``node=``)
                    proper = self.light and (not start or line.startswith(b"type=", start))
                    if (kind == b"SYSCALL" and key not in open_events
                            and line.startswith(b"): arch=", close)):
                        head = line[close + 8: close + 64].split(b" ", 2)
                        if len(head) == 3 and head[1].startswith(b"syscall="):
                            if surely_other(head[0], head[1][8:]):
                                assembler.note_other(key, line, start)
                                return
                            number_text = head[1][8:]
                            call = (CONNECT if surely_connect(head[0], number_text) else
                                    EXECVE if surely_execve(head[0], number_text) else "")
                            if (proper and call and GS_BYTE not in line and light_syscall(line) is not None
                                    and assembler.defer_syscall(key, line, number, _node(line, start),
                                                                line[space + 11: close], call)):
                                return
                    elif kind == b"SOCKADDR" and line.startswith(b"): saddr=", close):
                        if proper and pending is not None and pending.deferred is not None:
                            end = line.find(b" ", close + 9)
                            if assembler.light_sockaddr(pending, line[close + 9: end if end > 0 else None],
                                                        line, number):
                                return
                    elif (proper and kind == b"EXECVE" and line.startswith(b"): argc=", close) and pending is not None
                            and pending.deferred is not None and GS_BYTE not in line
                            and assembler.light_execve(pending, line[close + 3:], line, number)):
                        return
        elif _ignorable(line):
            self._not_records += 1
            if line.startswith(b"----"):
                assembler.separator()
            return
        self._slow(line, number)

    def _tiled(self, block: bytes, end: int, number: int) -> int:
        """The line loop over ``block[:end]``, whole lines (`number` lines before them), without looking at the
        lines it would pass over unchanged. Returns the number of lines.

        Exactly what :meth:`_line` on every line would do. A piece that is not an ``event`` (see :mod:`.auditd_tiles`)
        goes through the line loop line by line (an ``untracked`` run needs nothing). An event whose key is
        new is applied at once when it is one of another syscall (:meth:`.Assembler.quick_other`), or, while
        no other event is open, a connect or execve that its second record shows harmless and whose further
        records are all untracked or safe PROCTITLE/CWD records (group ``safe``; see
        :meth:`.Assembler.quick_light`). Any other event: its SYSCALL record goes through the line loop; each
        further record is a no-op for the line loop when its type is untracked, or once the event is one of
        another syscall (its key is in ``other``) - a state that no-op lines do not change - so those are
        passed over, and so are the rest of an event judged harmless (``LIGHT``) when they are all untracked
        or safe (the line loop would keep them in case the event must be built after all, but it closes at
        its EOE right after them). The others go through the line loop; the EOE record is then applied.
        """
        assembler = self.assembler
        other = assembler.other
        open_events = assembler.open
        closed = assembler.closed_keys
        line = self._line
        quick = self.light and block.find(GS_BYTE, 0, end) < 0
        ascii_known = quick and block.isascii()  # (else ASCII is checked record by record)
        lights = others = 0  # events applied at once, not counted yet (see Assembler.settle)
        spans: list[tuple[int, int, int]] = []  # consecutive lines that are no ``event`` (untracked runs aside)
        pieces, lines = tiles(block, end)
        for piece in pieces:
            if len(piece) == 3:
                spans.append(piece)
                continue
            if spans:  # the lines of events that interleave (or of anything else irregular)
                if lights or others:
                    assembler.settle(lights, others)
                    lights = others = 0
                if not (quick and self._quick_region(block, spans, ascii_known)):
                    for first, last, index in spans:
                        line(block[first: last], number + index + 1)
                spans.clear()
            (start, _, key, prefix, milliseconds, arch, syscall, saddr, execve, safe, eoe, first_end, fields,
             comm_at, index) = piece
            if key not in other and key not in open_events:
                wanted = _RELEVANT_BYTES.get(arch)
                if wanted is not None:
                    if syscall not in wanted:
                        if fields is None:
                            assembler.quick_other(key, block, start, first_end, len(prefix))
                        else:
                            assembler.quick_other_read(key, prefix + fields[0] if prefix else fields[0], block,
                                                       comm_at, first_end)
                        others += 1
                        continue
                    if quick and safe >= 0 and not open_events and key not in closed:
                        if fields is None or not ascii_known:
                            fields = light_syscall(block[start: first_end], ascii_known)
                        if fields is not None:
                            ip: bool | None = None
                            process = None
                            if saddr is not None:
                                if syscall in _CONNECT_BYTES[arch]:
                                    ip = light_connect(saddr, b"", True) if ascii_known else light_connect(
                                        saddr, block[first_end + 1: safe - 1])
                            elif syscall in _EXECVE_BYTES[arch]:
                                process = light_exec(fields, execve, b"", True) if ascii_known else light_exec(
                                    fields, execve, block[first_end + 1: safe - 1])
                            if ip is not None or process is not None:
                                node = prefix[5:-1].decode("utf-8", "replace") if prefix else ""
                                assembler.quick_light(key, node, milliseconds, fields, bool(ip), process)
                                lights += 1
                                continue
            if lights or others:
                assembler.settle(lights, others)
                lights = others = 0
            line(block[start: first_end], number + index + 1)
            position = first_end + 1
            if position < eoe:
                before = number + index  # lines before the one at ``counted_to``
                counted_to = start
                skip = len(prefix) + 5
                rest = safe  # from here on all safe or untracked (-1: no such part)
                while position < eoe:
                    if key in other:
                        break
                    if position == rest:
                        pending = open_events.get(key)
                        if pending is not None and pending.call is LIGHT:
                            break
                    stop = block.find(b"\n", position)
                    if block[position + skip: block.find(b" ", position + skip)] in TRACKED:
                        before += block.count(b"\n", counted_to, position)
                        counted_to = position
                        line(block[position: stop], before + 1)
                    position = stop + 1
            if key in other:
                del other[key]
            else:
                pending = open_events.get(key)
                if pending is not None:
                    assembler.end(pending)
        if lights or others:
            assembler.settle(lights, others)
        if spans and not (quick and self._quick_region(block, spans, ascii_known)):
            for first, last, index in spans:
                line(block[first: last], number + index + 1)
        return lines  # type: ignore[no-any-return]

    def _quick_region(self, block: bytes, spans: list[tuple[int, int, int]], ascii_known: bool) -> bool:
        """Apply at once the events whose records interleave in the lines `spans` of `block` (records of
        untracked types between them aside), when that is exactly what the line loop would do; False (and
        nothing done) otherwise.

        Each event must be whole - its SYSCALL record first, its EOE last - and one that
        :meth:`.Assembler.quick_other` or :meth:`.Assembler.quick_light` applies on its own (for the latter:
        its first record after the SYSCALL makes it light and the others are safe). Applied one after the
        other, they change the state as the interleaved lines do when no event was open before, the keys are
        new, and neither window nor the ``other`` memory closes or drops anything. They are applied in the
        order in which the line loop changes the pid map (an event of another syscall at its SYSCALL record,
        a light one when it closes at its EOE; the recently closed keys follow the same order); what else
        they change (counts, newest times, the release order) does not depend on the order.
        """
        assembler = self.assembler
        other = assembler.other
        closed = assembler.closed_keys
        if assembler.open or len(spans) < 4 or len(other) + len(spans) >= OTHER_MEMORY:
            return False
        events: dict[bytes, list[tuple[bytes, int, int]]] = {}
        for start, stop, _ in spans:
            head = _HEAD.match(block, start, stop)
            if head is None:
                return False
            prefix, kind, stamp = head.groups()
            key = prefix + stamp if prefix else stamp
            records = events.get(key)
            if records is None:
                if kind != b"SYSCALL" or key in other or key in closed:
                    return False
                events[key] = records = []
            elif records[-1][0] == b"EOE" or kind == b"SYSCALL":
                return False
            records.append((kind, start, stop))
        plan: list[tuple[bytes, int, bool, tuple[object, ...]]] = []  # key, pid map step, light?, arguments
        newest = dict(assembler.newest_by_node)
        opened: list[tuple[str, int, int, int]] = []  # node, time opened at, SYSCALL and EOE positions
        for key, records in events.items():
            if records[-1][0] != b"EOE":
                return False
            syscall_start, syscall_stop = records[0][1], records[0][2]
            head = _SYSCALL_HEAD.match(block, syscall_start, syscall_stop)
            if head is None:
                return False
            prefix, seconds, millis, arch, syscall = head.groups()
            wanted = _RELEVANT_BYTES.get(arch)
            if wanted is None:
                return False
            if syscall not in wanted:
                plan.append((key, syscall_start, False, (block, syscall_start, syscall_stop, len(prefix))))
                continue
            if len(records) < 3:
                return False
            second_kind, second_start, second_stop = records[1]
            for _, start, stop in records[2:-1]:
                if SAFE_RECORD.fullmatch(block, start, stop) is None:
                    return False
            syscall_line = block[syscall_start: syscall_stop]
            fields = light_syscall(syscall_line, ascii_known)
            if fields is None:
                return False
            second = block[second_start: second_stop]
            ip: bool | None = None
            process = None
            if second_kind == b"SOCKADDR" and syscall in _CONNECT_BYTES[arch]:
                value = _SOCKADDR_VALUE.match(second)
                if value is not None:
                    ip = light_connect(value.group(1), second, ascii_known)
            elif second_kind == b"EXECVE" and syscall in _EXECVE_BYTES[arch]:
                payload = _EXECVE_FIELDS.match(second)
                if payload is not None:
                    process = light_exec(fields, payload.group(1), second, ascii_known)
            if ip is None and process is None:
                return False
            milliseconds = stamp_milliseconds(seconds, millis)
            node = prefix[5:-1].decode("utf-8", "replace") if prefix else ""
            latest = newest.get(node)
            if latest is None or milliseconds > latest:
                newest[node] = latest = milliseconds
            opened.append((node, latest, syscall_start, records[-1][1]))
            plan.append((key, records[-1][1], True, (node, milliseconds, fields, bool(ip), process)))
        if len(opened) - 1 > assembler.window_events or any(
                newest[node] - at > assembler.window_ms for node, at, _, _ in opened):
            return False  # the event or time window would close one of them
        plan.sort(key=lambda step: step[1])  # the line loop's order of pid map changes
        peak = _peak_open([(first, last) for _, _, first, last in opened])
        for key, _, light, arguments in plan:
            if light:
                assembler.quick_light(key, *arguments)  # type: ignore[arg-type]
            else:
                assembler.quick_other(key, *arguments)  # type: ignore[arg-type]
        lights = len(opened)
        assembler.settle(lights, len(plan) - lights)
        assembler.stats.max_open = max(assembler.stats.max_open, peak)
        return True

    def _slow(self, line: bytes, number: int) -> None:
        """A line the fast path did not settle: parse it fully and hand it to the assembler."""
        self.assembler.take_line(line, number)

    def _drain(self) -> Iterator[Event]:
        ready, self.assembler.ready = self.assembler.ready, []
        yield from ready


def _peak_open(spans: list[tuple[int, int]]) -> int:
    """The most of the (first, last) offset ranges, in ascending order of first, that hold one offset (a range
    holds its first offset, not its last)."""
    ends: list[int] = []
    peak = 0
    for first, last in spans:
        while ends and ends[0] <= first:
            heapq.heappop(ends)
        heapq.heappush(ends, last)
        peak = max(peak, len(ends))
    return peak


def _pieces(stream: BinaryIO, size: int, max_line: int = MAX_LINE) -> Iterator[tuple[bytes | list[bytes | None], int]]:
    """The stream's lines, CRLF read as LF, in bounded memory, as ``(piece, end)``: a block whose first
    `end` bytes are whole lines (each ending with a newline; the last line of the stream is given one), or,
    where a block may hold a line longer than `max_line`, a list of its lines without their newlines, each
    over-long line given as None (once; the rest of it is discarded) - `end` is then its length."""
    carry = b""
    discarding = False
    while True:
        chunk = stream.read(size)
        if not chunk:
            break
        if discarding:
            cut = chunk.find(b"\n")
            if cut < 0:
                continue
            chunk = chunk[cut + 1:]
            discarding = False
        block = carry + chunk if carry else chunk
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        last = block.rfind(b"\n") + 1
        carry = block[last:]
        if last:
            if may_hold_long_lines(block, max_line, last):
                lines: list[bytes | None] = [None if len(line) > max_line else line
                                             for line in block[:last].split(b"\n")[:-1]]
                yield lines, len(lines)
            else:
                yield block, last
        if len(carry) > max_line:
            yield [None], 1
            carry = b""
            discarding = True
    if carry and not discarding:
        tail = carry.removesuffix(b"\r") + b"\n"
        yield tail, len(tail)


class AuditdAdapter:
    """The auditd source adapter (``--format auditd``)."""

    name = FORMAT
    shortcut = "event shortcut"  # the summary's name for what clears harmless events unparsed

    def sniff(self, head: bytes) -> bool:
        """Whether at least half of the first 20 meaningful lines are audit records (raw, ENRICHED or
        ausearch output; blank, ``----`` and ``time->`` lines do not count)."""
        examined = matched = 0
        for line in head.split(b"\n")[:200]:
            line = line.rstrip(b"\r")
            if _ignorable(line):
                continue
            examined += 1
            if _record_start(line):
                matched += 1
            if examined >= _SNIFF_LINES:
                break
        return matched > 0 and matched * 2 >= examined and (matched >= 2 or matched == examined)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every connect and execve event of the file, in the order of their first records."""
        yield from AuditdParser(file, on_skip).events(stream)

    def parse_counted(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        """As :meth:`parse`; `counts.records` follows the audit records (lines) read."""
        yield from AuditdParser(file, on_skip, light=not counts.exhaustive).events(stream, counts)


AUDITD_ADAPTER = AuditdAdapter()
_CHECK: SourceAdapter = AUDITD_ADAPTER
