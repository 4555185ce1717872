"""Linux audit logs (auditd): connect() and execve() events become NETWORK and PROCESS events.

Input (recognised from content by :meth:`AuditdAdapter.sniff`, plain or gzipped, one or many files):

- raw ``audit.log`` lines, with or without a ``node=NAME`` prefix;
- the ENRICHED log format (raw fields, 0x1D, upper-case translations such as ``UID="root"``);
- ``ausearch`` output, raw or interpreted (``ausearch -i``: decoded values, local-time stamps read as
  UTC, ``----`` lines between events, ``time->`` lines).

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

from collections.abc import Iterator
from typing import BinaryIO

from ..model import Event
from .auditd_events import FORMAT, LIGHT, Assembler, AssemblyStats
from .auditd_records import (
    CONNECT,
    EXECVE,
    GS,
    TRACKED,
    RecordError,
    moment_of,
    read_record,
    surely_connect,
    surely_execve,
    surely_other,
)
from .base import ReadCounts, Skip, SkipSink, SourceAdapter

__all__ = ["AUDITD_ADAPTER", "FORMAT", "AuditdAdapter", "AuditdParser"]

READ_BLOCK = 1 << 20
MAX_LINE = 1 << 18  # kernel records stay under 9 KB; ENRICHED and interpreted lines a little more
_SNIFF_LINES = 20
GS_BYTE = GS.encode()


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
    """One pass over one audit log: lines -> records -> events. ``stats`` tells how events were closed."""

    def __init__(self, file: str, on_skip: SkipSink, light: bool = False, **window: int) -> None:
        self.file = file
        self.on_skip = on_skip
        self.light = light  # close harmless connect/execve events unparsed (the prefilter); False: build every event
        self.assembler = Assembler(file, on_skip, **window)

    @property
    def stats(self) -> AssemblyStats:
        return self.assembler.stats

    def events(self, stream: BinaryIO, counts: ReadCounts | None = None) -> Iterator[Event]:
        """Every connect/execve event of `stream`, in the order of their first records.

        The loop handles the common lines inline: records of untracked types, and every record of an
        event whose SYSCALL names another syscall, cost a few ``bytes.find`` calls and a dict lookup.
        Everything else goes through :func:`.auditd_records.read_record` and the assembler.
        """
        assembler = self.assembler
        open_events = assembler.open
        other = assembler.other
        number = 0
        not_records = 0  # blank lines and ausearch decoration
        for lines in _blocks(stream):
            for line in lines:
                number += 1
                if line is None:
                    self.on_skip(Skip("malformed-record", self.file, number, f"line longer than {MAX_LINE} bytes"))
                    continue
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
                            continue  # a record of a type imds-detect does not use
                        close = line.find(b")", space)
                        if close > 0 and line.startswith(b"msg=audit(", space + 1):
                            key = line[:start] + line[space + 11: close] if start else line[space + 11: close]
                            if key in other:
                                if kind == b"EOE":
                                    del other[key]
                                continue  # an event of another syscall
                            pending = open_events.get(key)
                            if kind == b"EOE":
                                if pending is not None:
                                    assembler.end(pending)
                                    if assembler.ready:
                                        yield from self._drain()
                                continue  # (an EOE of an event without tracked records needs nothing)
                            if pending is not None and pending.call is LIGHT:
                                continue  # an event already judged harmless
                            if (kind == b"SYSCALL" and key not in open_events
                                    and line.startswith(b"): arch=", close)):
                                head = line[close + 8: close + 64].split(b" ", 2)
                                if len(head) == 3 and head[1].startswith(b"syscall="):
                                    if surely_other(head[0], head[1][8:]):
                                        assembler.note_other(key, line, start)
                                        continue
                                    number_text = head[1][8:]
                                    call = (CONNECT if surely_connect(head[0], number_text) else
                                            EXECVE if surely_execve(head[0], number_text) else "")
                                    if (self.light and call and GS_BYTE not in line
                                            and assembler.defer_syscall(key, line, number, _node(line, start),
                                                                        line[space + 11: close], call)):
                                        if assembler.ready:
                                            yield from self._drain()
                                        continue
                            elif kind == b"SOCKADDR" and line.startswith(b"): saddr=", close):
                                if pending is not None and pending.deferred is not None:
                                    end = line.find(b" ", close + 9)
                                    if assembler.light_sockaddr(pending, line[close + 9: end if end > 0 else None]):
                                        continue
                            elif (kind == b"EXECVE" and line.startswith(b"): argc=", close) and pending is not None
                                    and pending.deferred is not None and GS_BYTE not in line
                                    and assembler.light_execve(pending, line[close + 3:])):
                                continue
                elif _ignorable(line):
                    not_records += 1
                    if line.startswith(b"----"):
                        assembler.separator()
                        if assembler.ready:
                            yield from self._drain()
                    continue
                self._slow(line, number)
                if assembler.ready:
                    yield from self._drain()
            if counts is not None:
                counts.records = number - not_records
        assembler.finish()
        yield from self._drain()
        if counts is not None and assembler.light_newest_ms >= 0:
            counts.newest = moment_of(assembler.light_newest_ms)

    def _slow(self, line: bytes, number: int) -> None:
        """A line the fast path did not settle: parse it fully and hand it to the assembler."""
        try:
            record = read_record(line)
        except RecordError as error:
            self.on_skip(Skip(error.reason, self.file, number, error.detail))
            if error.record is not None:
                self.assembler.broken(error.record, number)
            return
        if record is not None:
            self.assembler.add(record, number, line)

    def _drain(self) -> Iterator[Event]:
        ready, self.assembler.ready = self.assembler.ready, []
        yield from ready


def _blocks(stream: BinaryIO) -> Iterator[list[bytes | None]]:
    """Lines without their newline (CRLF read as LF), a block at a time, in bounded memory: a line longer
    than MAX_LINE is given as None (once) and the rest of it is discarded."""
    carry = b""
    discarding = False
    while True:
        block = stream.read(READ_BLOCK)
        if not block:
            break
        if discarding:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            block = block[cut + 1:]
            discarding = False
        if carry:
            block = carry + block
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        lines: list[bytes | None] = list(block.split(b"\n"))
        tail = lines.pop()
        carry = tail if tail is not None else b""
        if lines and max(map(len, lines)) > MAX_LINE:  # type: ignore[arg-type]
            lines = [None if line is not None and len(line) > MAX_LINE else line for line in lines]
        if len(carry) > MAX_LINE:
            lines.append(None)
            carry = b""
            discarding = True
        if lines:
            yield lines
    if carry and not discarding:
        yield [carry.removesuffix(b"\r")]


class AuditdAdapter:
    """The auditd source adapter (``--format auditd``)."""

    name = FORMAT

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
