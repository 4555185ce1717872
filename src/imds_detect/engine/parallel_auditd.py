"""`--jobs N` on one large raw audit log: ranges of it scanned at once, stitched into the one-process result.

The auditd reader is stateful (see :mod:`..sources.auditd_events`): records are assembled into events with
windows (open events, keys of events of other syscalls, recently closed keys, the newest time of each node)
and a connect or execve is described with a pid map fed by every earlier event (the parent's name, the
command line of the pid's execve). A range of the file cannot be read on its own, so it is read *as if*
nothing came before it, with what depends on the unknown past kept apart:

- **planning**: a file is cut at line boundaries near steps of twice ``chunk_bytes`` (128 MiB by default),
  preferably where the audit trail is quiet - the next line opens an event (``type=SYSCALL``), every
  syscall event of the 256 KiB before it has its EOE, and no record of the 32 KiB after it belongs to an
  event seen before it - so that in the one-process scan no event is open across the cut;
- **a worker** runs the real parser (:class:`.AuditdParser`, shortcuts and all) over its range with an
  assembler (:class:`_SpecAssembler`) that starts empty and records what it assumed about the past: the keys
  of the records it met (a record of an event from before the range would be a late record, or part of an
  event of another syscall, in the one-process scan), the first time of each node (a newer time before the
  range would move the time window), how full the memory of events of other syscalls grew, and, for the
  pid map, every entry it took from "before the range" as a symbol (:class:`_Sym`: "what the entry was
  then", with the operations applied since, in a small normal form) and a journal of first uses and new
  entries (until its map is full: then nothing from before the range can be left in the one-process map
  either). Events whose parent or command line depends on such a symbol are *undecided*: sent back with
  holes (:class:`_Hole`) where the parent fills in the values, and judged ahead with guessed values (the
  pid's entry at the end of the range; no argv from before it - right for daemons, which is what these
  mostly are). Everything else - alerts, skips, counts - is the one-process scan's, numbered from the start
  of the range;
- **the parent** keeps the true state after each range in a real parser and takes the ranges in file order.
  A range is **accepted** when its assumptions hold against that state (no event open at the cut, no key
  met that the windows still remember, no node time going back across the cut, no memory overflow, no pid
  map step whose size effect depended on the past): the journal is replayed on the true pid map (which
  entries existed when first used, which old ones fell out), the symbols are evaluated, the holes filled,
  the undecided events taken where the worker would have judged them - as judged ahead when the guess was
  right, else judged now - and the worker's end state (open events, windows, counters) is merged in.
  Otherwise the parent **scans the range itself** from the true state, with the real parser - exact by
  construction, only slower.

So alerts (file, line, record numbers), suppressed alerts, the summary and the warnings in their order are
those of ``--jobs 1`` whatever the cuts; ``tests/test_parallel_auditd.py`` cuts generated and mutated logs
at every line and compares. gzip logs stay whole-file tasks.

Costs (1 GB generated log, 8 ranges): a worker spends a few % more than one process on its range (the
symbols, the journal, the event keys), a range's result is ~4 MB pickled, and the parent spends ~50 ms a
range merging it. Workers send their pid map, journal and events in compact forms (plain tuples, joined
keys, constructor-call pickling), and the parent merges with the cyclic garbage collector paused: the
results are many small objects.
"""

from __future__ import annotations

import copyreg
import gc
import math
import re
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, BinaryIO, cast

from .. import limits as _limits
from ..detect.detector import Detection
from ..model import Alert, Endpoint, Event, ProcessInfo, SourceRef
from ..sources.auditd import AUDITD_ADAPTER, AuditdParser
from ..sources.auditd_events import (
    CLOSED_MEMORY,
    LIGHT,
    OTHER_MEMORY,
    PID_TEXT_LIMIT,
    Assembler,
    AssemblyStats,
    Fields,
    Process,
    _decoded,
    _LazyConnect,
    _Pending,
    _pid_key,
)
from ..sources.auditd_process import COMM_LIMIT, Known, clean_exe, full_comm, join_argv
from ..sources.auditd_records import moment_of
from ..sources.base import ReadCounts, Skip, SkipSink
from ..sources.registry import BY_NAME, detect_format
from .inputs import GZIP_MAGIC, HEAD_SIZE
from .parallel import Part, Task, _absorb, _shift, _TaskScanner
from .scan import READ_ERRORS, Scanner, ScanOptions, _describe
from .summary import FileReport

__all__ = ["AuditPart", "audit_tasks", "merge_audit_file", "run_audit_range"]

ALIGN_CUTS = True  # prefer quiet cuts (tests set False to cut at any line)
MAX_RANGES = 4096
# Ranges of an audit log are this many times chunk_bytes (128 MiB by default): each range costs a pid map of its
# own (up to 16k processes, sent back and merged) and reads as if nothing came before it until that map is full.
CHUNK_FACTOR = 2
LOOKBACK = 256 * 1024  # a quiet cut: every syscall event this far back has its EOE ...
AFTER = 32 * 1024  # ... and no record this far ahead belongs to an event seen before the cut
AHEAD = (64 * 1024, 1024 * 1024)  # how far past the target a quiet cut is looked for (first the nearest)
# How the parent took the ranges of this process's scans ("accepted", "rescanned: <why>") and the undecided events
# of accepted ranges (tests, benchmarks).
OUTCOMES: Counter[str] = Counter()

_HEADER = re.compile(rb"^((?:node=[^ \n]+ )?)type=([A-Z_0-9]+) msg=audit\(([^)\n]*)\)", re.MULTILINE)
_SYSCALL_LINE = re.compile(rb"(?:node=[^ \n]+ )?type=SYSCALL msg=audit\(")

# -- planning -------------------------------------------------------------------------------------


def audit_tasks(item: int, name: str, size: int, options: ScanOptions, jobs: int) -> list[Task] | None:
    """The ranges of a plain raw audit log worth splitting (None: not one, or too small to split). Every range
    costs the whole file, so that the ranges of a file start in file order (the parent takes them so)."""
    pieces = min(MAX_RANGES, math.ceil(size / max(1, options.chunk_bytes * CHUNK_FACTOR)))
    if pieces < 2:
        return None
    try:
        with open(name, "rb") as handle:
            head = handle.read(HEAD_SIZE)
            if head[:2] == GZIP_MAGIC or not _is_audit(options, head):
                return None
            pieces = jobs * math.ceil(pieces / jobs)
            cuts: list[int] = []
            for piece in range(1, pieces):
                target = size * piece // pieces
                if cuts and target <= cuts[-1]:
                    continue
                cut = _cut_near(handle, target, size)
                if cut is not None and 0 < cut < size and (not cuts or cut > cuts[-1]):
                    cuts.append(cut)
    except OSError:
        return None
    if not cuts:
        return None
    starts = [0, *cuts]
    ends = [*cuts, -1]  # the last range reads to the end of the file
    return [Task(item, name, size, AUDITD_ADAPTER.name, span=(start, end))
            for start, end in zip(starts, ends, strict=True)]


def _is_audit(options: ScanOptions, head: bytes) -> bool:
    if options.format != "auto":
        return BY_NAME[options.format] is AUDITD_ADAPTER
    return bool(head.strip()) and detect_format(head) is AUDITD_ADAPTER


def _cut_near(handle: BinaryIO, target: int, size: int) -> int | None:
    """A line start at or after `target`: the first quiet one within AHEAD bytes, else the first that opens an
    event, else the first."""
    cut = None
    for ahead in AHEAD:
        cut = _cut_within(handle, target, ahead)
        if cut is None or cut[1]:
            break
    return None if cut is None else cut[0]


def _cut_within(handle: BinaryIO, target: int, ahead: int) -> tuple[int, bool] | None:
    """(the first quiet line start in [target, target + ahead), True), or (a fallback, False) when there is none.
    Quiet: it opens an event (``type=SYSCALL``), every syscall event of the LOOKBACK bytes before it has its EOE
    before it, and no record of the AFTER bytes after it shares an event with a record of those LOOKBACK
    bytes. Each condition rules out intervals of cuts; one sweep finds the first cut outside them all."""
    begin = max(0, target - LOOKBACK)
    handle.seek(begin)
    data = handle.read(target - begin + ahead + AFTER)
    if target == 0:
        first = 0
    else:
        newline = data.find(b"\n", target - begin - 1)
        if newline < 0:
            return None
        first = newline + 1
    if not ALIGN_CUTS or first >= len(data):
        return begin + first, True
    ruled_out: list[tuple[int, int]] = []  # (low, high]: no cut there
    last_seen: dict[bytes, int] = {}
    unended: dict[bytes, int] = {}  # syscall events without an EOE yet
    candidates: list[int] = []
    for match in _HEADER.finditer(data):
        position = match.start()
        key = match.group(1) + match.group(3)
        previous = last_seen.get(key)
        if previous is not None:  # two records of one event: not between them
            ruled_out.append((max(previous, position - AFTER), min(position, previous + LOOKBACK)))
        last_seen[key] = position
        kind = match.group(2)
        if kind == b"SYSCALL":
            unended[key] = position
            if first <= position < target - begin + ahead:
                candidates.append(position)
        elif kind == b"EOE":
            unended.pop(key, None)
    for position in unended.values():  # (an EOE lost, or beyond what was read)
        ruled_out.append((position, position + LOOKBACK))
    ruled_out.sort()
    reach = -1
    index = 0
    for position in candidates:
        while index < len(ruled_out) and ruled_out[index][0] < position:
            reach = max(reach, ruled_out[index][1])
            index += 1
        if reach < position:
            return begin + position, True
    return begin + (candidates[0] if candidates else first), False


# -- the worker: a range read as if nothing came before it ----------------------------------------------

_OTHER, _KNOWN_OTHER, _KNOWN = 0, 1, 2  # kinds of _Sym
_INSERT, _READ, _LOOKUP = 0, 1, 2  # journal steps
_PARENT, _COMMAND = 0, 1  # kinds of _Hole
_PLACEHOLDER = Known("\x00", "\x00")


class _Sym:
    """A pid map entry that depends on the entry the one-process map held when the worker's map got it (its
    *base*, numbered by `slot`: the parent finds it when it replays the journal, see _Stitcher._pids). With R
    the base resolved as a lookup resolves it:

    - ``_OTHER`` (`a`: raw text): events of another syscall since: R if the base was a Known or a lazy
      connect (they keep it), else the raw text `a`;
    - ``_KNOWN_OTHER`` (`a`: decodable raw text): the same, looked up since: R, or `a` resolved;
    - ``_KNOWN`` (`a`: exe, `b`: comm): a connect or another syscall's full parse (``_know`` without argv):
      ``Known(a, b, R.argv if R is a Known of exe `a` else ())``.
    """

    __slots__ = ("a", "b", "held", "kind", "slot")

    def __init__(self, kind: int, slot: int, a: Any, b: str = "") -> None:
        self.kind, self.slot, self.a, self.b = kind, slot, a, b
        self.held = False  # a hole refers to it: replaced, not changed in place

    def __reduce__(self) -> tuple[type[_Sym], tuple[int, int, Any, str]]:
        return _Sym, (self.kind, self.slot, self.a, self.b)


def _by_fields(names: tuple[str, ...], value: Any) -> tuple[type, tuple[Any, ...]]:
    return type(value), tuple(getattr(value, name) for name in names)


class _Hole:
    """A value of an undecided event: the parent's name and path (`_PARENT`) or the command line
    (`_COMMAND`, with the event's `exe` and PROCTITLE) from the pid map entry of `pid`: `ref` (a _Sym; None:
    the entry before the range, resolved by the parent's journal replay into `value`)."""

    __slots__ = ("exe", "kind", "pid", "proctitle", "ref", "value")

    def __init__(self, kind: int, pid: bytes, ref: _Sym | None, exe: str = "", proctitle: str | None = None) -> None:
        self.kind, self.pid, self.ref, self.exe, self.proctitle = kind, pid, ref, exe, proctitle
        self.value: Known | None = None

    def __reduce__(self) -> tuple[type[_Hole], tuple[int, bytes, _Sym | None, str, str | None]]:
        return _Hole, (self.kind, self.pid, self.ref, self.exe, self.proctitle)  # (value: filled by the parent)


# A worker sends its pid map back (~16k entries a range): pickled as plain constructor calls, 3-4 times faster
# than the default for slotted dataclasses. (Registered when the parent plans, so workers inherit it.)
copyreg.pickle(Known, lambda known: (Known, (known.exe, known.comm, known.argv)))
copyreg.pickle(_LazyConnect, lambda lazy: (_LazyConnect, (lazy.exe, lazy.comm, lazy.previous)))
# Undecided events (~1000 a range) likewise: every field is an argument of the constructor.
for _type in (Event, ProcessInfo, SourceRef, Alert, Endpoint):
    if all(item.init for item in fields(_type)):
        copyreg.pickle(_type, partial(_by_fields, tuple(item.name for item in fields(_type))))


# The journal, in columns (cheap to send): steps (_INSERT: a new entry, with its slot or -1 for one that does not
# depend on the past, and the map's size then; _READ: a lookup of an absent pid for its side effect; _LOOKUP: one
# whose result fills a hole), the pids joined by newlines, and per step the slot, hole or None.
Journal = tuple[bytes, "array[int]", bytes, list[Any]]


class _SpecAssembler(Assembler):
    """The assembler of a range read as if nothing came before it (see the module docstring)."""

    def __init__(self, file: str, on_skip: SkipSink, symbolic: bool, last: bool) -> None:
        super().__init__(file, on_skip)
        self.symbolic = symbolic  # absent pids may have had an entry before the range
        self.last = last
        self.written: set[bytes] = set()  # pids given an entry in the range
        self.read_keys: set[bytes] = set()  # pids looked up (for their side effect) while absent
        self.steps = bytearray()
        self.sizes = array("i")
        self.step_pids: list[bytes] = []
        self.refs: list[Any] = []
        self.slots = 0
        self.keys = array("q")  # hashes of the event keys met
        self.floor: dict[str, int] = {}  # node -> its first time in the range
        # Keys of events of other syscalls (until a separator): the most held at once (as the line loop holds them),
        # and the most that the choice between applying interleaved events at once and the line loop counted with
        self.peak = 0
        self.peak_region = 0
        self.cleared = False  # a separator line emptied that memory
        self.unsure = False  # a step whose effect on the map's size depends on the past
        self.holes: list[_Hole] | None = None  # while an event is built
        self.undecided: dict[int, tuple[Event, list[_Hole]]] = {}  # id(event) ->

    # -- what the worker assumed -----------------------------------------------------------------
    def quick_other_read(self, key: bytes, pid: bytes | None, block: bytes, comm: int, end: int) -> None:
        # (the one step every event of another syscall applied at once goes through: quick_other ends here, and
        # so do the events the C tiler read)
        self.keys.append(hash(key))
        if not self.cleared and len(self.other) + 1 > self.peak:
            self.peak = len(self.other) + 1
        super().quick_other_read(key, pid, block, comm, end)

    def note_other(self, key: bytes, line: bytes, start: int) -> None:
        super().note_other(key, line, start)
        if not self.cleared and len(self.other) > self.peak:
            self.peak = len(self.other)

    def quick_light(self, key: bytes, node: str, milliseconds: int, fields: Fields, ip: bool,
                    process: Process | None) -> None:
        self.keys.append(hash(key))
        if node not in self._newest:
            self.floor[node] = milliseconds
        ppid = fields[1]
        if self.symbolic and ppid is not None and ppid.isdigit():
            # (quick_light looks a parent up only when it has an entry: one from before the range may)
            parent = _pid_key(node, ppid.decode("ascii")) if node else ppid
            if parent not in self._pids and parent not in self.written and parent not in self.read_keys:
                self.read_keys.add(parent)
                self._step(_READ, parent, None)
        super().quick_light(key, node, milliseconds, fields, ip, process)

    def _open(self, key: bytes, node: str, line: int, milliseconds: int, interpreted: bool) -> _Pending:
        if node not in self._newest:
            self.floor[node] = milliseconds
        return super()._open(key, node, line, milliseconds, interpreted)

    def separator(self) -> None:
        super().separator()
        self.cleared = True

    def finish(self) -> None:
        if self.last:
            super().finish()

    # -- the pid map -----------------------------------------------------------------------------
    # An entry is symbolic (_Sym), or a pid is absent and unwritten while the map may hold entries from before
    # the range (`symbolic`): those depend on the past; any other is handled by the assembler's own code. (A pid
    # whose entry the range's own code deleted counts as unwritten again: absent in both maps.)

    def _insert(self, pid: bytes, entry: Any) -> None:
        """A new entry for an unwritten pid: noted in the journal with the map's size."""
        pids: OrderedDict[bytes, Any] = self._pids
        self.written.add(pid)
        pids[pid] = entry
        size = len(pids)
        self._step(_INSERT, pid, entry.slot if type(entry) is _Sym else -1, size)
        if size >= self.max_pids:
            self.symbolic = False  # full: no entry from before the range can be left in the one-process map
            if size > self.max_pids:
                pids.popitem(last=False)

    def _step(self, step: int, pid: bytes, ref: Any, size: int = 0) -> None:
        self.steps.append(step)
        self.step_pids.append(pid)
        self.refs.append(ref)
        self.sizes.append(size)

    def _slot(self) -> int:
        self.slots += 1
        return self.slots - 1

    def _other_pid(self, pid: bytes, data: bytes, comm: int, end: int) -> None:
        pids: OrderedDict[bytes, Any] = self._pids
        value = pids.get(pid)
        if type(value) is _Sym:
            if value.kind == _OTHER:  # (never held: a lookup replaces it first)
                value.a = data[comm: min(comm + PID_TEXT_LIMIT, end)]
            pids.move_to_end(pid)  # (the other kinds are a Known either way: kept)
        elif value is not None or not self.symbolic or pid in self.written:
            super()._other_pid(pid, data, comm, end)
        else:
            self._insert(pid, _Sym(_OTHER, self._slot(), data[comm: min(comm + PID_TEXT_LIMIT, end)]))

    def _know(self, pid: bytes, exe: str, comm: str, argv: tuple[str, ...] | None) -> None:
        pids: OrderedDict[bytes, Any] = self._pids
        value = pids.get(pid)
        if type(value) is _Sym:
            if argv is not None:
                pids[pid] = Known(exe, comm, argv)
            elif value.kind != _KNOWN:
                pids[pid] = _Sym(_KNOWN, value.slot, exe, comm)
            elif value.a != exe:
                pids[pid] = Known(exe, comm, ())
            elif value.held:
                pids[pid] = _Sym(_KNOWN, value.slot, exe, comm)
            else:
                value.b = comm
            pids.move_to_end(pid)
        elif value is not None or not self.symbolic or pid in self.written:
            super()._know(pid, exe, comm, argv)
        else:
            self._insert(pid, Known(exe, comm, argv) if argv is not None else _Sym(_KNOWN, self._slot(), exe, comm))

    def _lazy_connect(self, pid: bytes, exe: bytes, comm: bytes) -> None:
        value: Any = self._pids.get(pid)
        if type(value) is _Sym or (value is None and self.symbolic and pid not in self.written):
            # resolved, a lazy connect is _know(pid, exe, comm, None) (a raw entry before it gives no argv either)
            self._know(pid, *_names(exe, comm), None)
        else:
            super()._lazy_connect(pid, exe, comm)

    def _looked_up(self, pid: bytes, value: _Sym) -> _Sym:
        """A lookup of a symbolic entry: one of raw text is resolved in place (a Known either way)."""
        if value.kind != _OTHER:
            return value
        if _resolved(value.a) is None:
            self.unsure = True  # undecodable: deleted unless the past entry was a Known
        value = _Sym(_KNOWN_OTHER, value.slot, value.a)
        pids: OrderedDict[bytes, Any] = self._pids
        pids[pid] = value  # (in place)
        return value

    def _known(self, pid: bytes) -> Known | None:
        value: Any = self._pids.get(pid)
        if type(value) is not _Sym:
            if value is not None or not self.symbolic or pid in self.written:
                known = super()._known(pid)
                if known is None and value is not None:
                    self.written.discard(pid)  # deleted (raw text that cannot be read)
                return known
            # Absent: the entry before the range (outside _build the result is not used: quick_light and
            # _light_pid_effects look up for the side effect; _know, _other_pid and _lazy_connect do not get here)
            if self.holes is not None:
                hole = _Hole(_PARENT, pid, None)
                self._step(_LOOKUP, pid, hole)
                self.read_keys.add(pid)
                self.holes.append(hole)
                return _PLACEHOLDER
            if pid not in self.read_keys:  # (a second lookup changes nothing)
                self.read_keys.add(pid)
                self._step(_READ, pid, None)
            return None
        value = self._looked_up(pid, value)
        if self.holes is None:
            return None
        if value.kind == _KNOWN and (not value.b or len(value.b.encode()) < COMM_LIMIT):
            return Known(value.a, value.b)  # name and path do not depend on the argv
        value.held = True
        self.holes.append(_Hole(_PARENT, pid, value))
        return _PLACEHOLDER

    def _command_line(self, pid: bytes, exe: str, proctitle: str | None) -> str:
        value: Any = self._pids.get(pid)
        if type(value) is not _Sym and (value is not None or not self.symbolic or pid in self.written):
            return super()._command_line(pid, exe, proctitle)
        assert self.holes is not None  # (only _build asks)
        if value is None:
            hole = _Hole(_COMMAND, pid, None, exe, proctitle)
            self._step(_LOOKUP, pid, hole)
            self.read_keys.add(pid)
        else:
            value = self._looked_up(pid, value)
            if value.kind == _KNOWN and value.a != exe:
                return proctitle or ""
            value.held = True
            hole = _Hole(_COMMAND, pid, value, exe, proctitle)
        self.holes.append(hole)
        return "\x00"

    def _build(self, pending: _Pending) -> Event | None:
        holes: list[_Hole] = []
        self.holes = holes
        try:
            event = super()._build(pending)
        finally:
            self.holes = None
        if holes and event is not None:
            self.undecided[id(event)] = (event, holes)
        return event


@lru_cache(maxsize=4096)
def _names(exe: bytes, comm: bytes) -> tuple[str, str]:
    """The exe and comm a lazy connect's raw (decodable) values stand for."""
    return clean_exe(_decoded(exe, "exe")), _decoded(comm, "comm")


class _SpecParser(AuditdParser):
    """The parser of a range: notes the event keys that the line loop meets and how full the memory of
    events of other syscalls may get while interleaved events are applied at once."""

    assembler: _SpecAssembler

    def _key_met(self, key: bytes) -> None:
        self.assembler.keys.append(hash(key))

    def _quick_region(self, block: bytes, spans: list[tuple[int, int, int]], ascii_known: bool) -> bool:
        assembler = self.assembler
        if (not assembler.cleared and not assembler.open and len(spans) >= 4
                and len(assembler.other) + len(spans) > assembler.peak_region):
            assembler.peak_region = len(assembler.other) + len(spans)
        return super()._quick_region(block, spans, ascii_known)


class _Slice:
    """Bytes [start, end) of an open file (end -1: to its end), read like a stream."""

    def __init__(self, handle: BinaryIO, start: int, end: int) -> None:
        handle.seek(start)
        self.handle = handle
        self.left = None if end < 0 else end - start

    def read(self, size: int = -1) -> bytes:
        if self.left is None:
            return self.handle.read(size)
        data = self.handle.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data


@dataclass
class AuditCarry:
    """A range's end state and assumptions, numbered from its start (lines from 1, event indexes from 0)."""

    lines: int = 0
    records: int = 0
    events: int = 0  # syscall events (the record index of the next range's first event)
    next_seq: int = 0
    release: int = 0
    open: list[_Pending] = field(default_factory=list)
    done: dict[int, Event | None] = field(default_factory=dict)
    done_holes: dict[int, list[_Hole]] = field(default_factory=dict)
    other: list[bytes] = field(default_factory=list)
    closed: list[tuple[bytes, bool]] = field(default_factory=list)
    newest: dict[str, int] = field(default_factory=dict)
    floor: dict[str, int] = field(default_factory=dict)
    light_newest_ms: int = -1
    stats: AssemblyStats = field(default_factory=AssemblyStats)
    keys: array[int] = field(default_factory=lambda: array("q"))
    peak: int = 0
    peak_region: int = 0
    cleared: bool = False
    unsure: bool = False
    journal: Journal = field(default_factory=lambda: (b"", array("i"), b"", []))
    # the worker's pid map: its pids joined by newlines, and their entries (a Known as a plain tuple, a _Sym as
    # (kind, slot, a, b): the parent unpickles them ~10 times faster, and builds only the few it reads again)
    pids: tuple[bytes, list[Any]] = field(default_factory=lambda: (b"", []))
    undecided: list[tuple[Event, list[_Hole]]] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)  # where in the notes each undecided event is judged
    ahead: dict[int, tuple[Fields3, Detection]] = field(default_factory=dict)  # see _judge_ahead


@dataclass
class AuditPart(Part):
    """What a worker found in a range of an audit log: a Part, and the range's end state and assumptions
    (None: the read failed; the parent reads the range itself)."""

    carry: AuditCarry | None = None

    @classmethod
    def of(cls, part: Part, carry: AuditCarry | None) -> AuditPart:
        return cls(**{item.name: getattr(part, item.name) for item in fields(Part)}, carry=carry)


def run_audit_range(task: Task) -> AuditPart:
    """Scan a range of a raw audit log in a worker (see the module docstring)."""
    from . import parallel

    shared = parallel._SHARED
    assert shared is not None and task.span is not None
    options = shared.options
    scanner = _TaskScanner(options, shared.prefilters)
    start, end = task.span
    parser = _SpecParser(task.name, scanner._on_skip, light=options.prefilter)
    assembler = parser.assembler = _SpecAssembler(task.name, scanner._on_skip, symbolic=start > 0, last=end < 0)
    carry = AuditCarry()
    counts = ReadCounts(exhaustive=not options.prefilter)
    try:
        with open(task.name, "rb") as handle:
            for event in parser.events(cast(BinaryIO, _Slice(handle, start, end)), counts):
                scanner.summary.parsed += 1
                found = assembler.undecided.pop(id(event), None)
                if found is None:
                    scanner.scan_event(event)
                else:
                    carry.marks.append(len(scanner.notes))
                    carry.undecided.append(found)
    except READ_ERRORS as problem:  # the parent reads the range itself (and meets the error as one process does)
        part = scanner.part()
        part.error = _describe(problem)
        return AuditPart.of(part, None)
    _judge_ahead(scanner, carry, assembler)
    carry.lines = counts.records + parser._not_records
    carry.records = counts.records
    carry.events = assembler._events
    carry.next_seq, carry.release = assembler._next_seq, assembler._release
    carry.open = list(assembler.open.values())
    carry.done = assembler._done
    carry.done_holes = {seq: assembler.undecided[id(event)][1] for seq, event in assembler._done.items()
                        if event is not None and id(event) in assembler.undecided}
    carry.other = list(assembler.other)
    carry.closed = list(assembler._closed.items())
    carry.newest = assembler._newest
    carry.floor = assembler.floor
    carry.light_newest_ms = assembler.light_newest_ms
    carry.stats = assembler.stats
    carry.keys = assembler.keys
    carry.peak, carry.peak_region = assembler.peak, assembler.peak_region
    carry.cleared, carry.unsure = assembler.cleared, assembler.unsure
    carry.journal = (bytes(assembler.steps), assembler.sizes, b"\n".join(assembler.step_pids), assembler.refs)
    entries: Any = assembler._pids.values()
    carry.pids = (b"\n".join(assembler._pids), [
        (value.exe, value.comm, value.argv) if type(value) is Known else
        (value.kind, value.slot, value.a, value.b) if type(value) is _Sym else value for value in entries])
    return AuditPart.of(scanner.part(), carry)


def _judge_ahead(scanner: Scanner, carry: AuditCarry, assembler: _SpecAssembler) -> None:
    """Judge the undecided events with guessed values (see _guess), for the parent to take when the guess was
    right - most are: then it judges nothing itself. Not when judging would hit a limit (its warning must come
    in order: the parent judges that event)."""
    guess = _guess(assembler._pids)
    options = scanner.options
    hits: list[object] = []
    for index, (event, holes) in enumerate(carry.undecided):
        fields = _fill(event, holes, guess)
        _limits.activate(options.limits, lambda *hit: hits.append(hit))
        _limits.judging(event.source.file, event.source.line)
        try:
            detection = scanner.detector.run(event)
        finally:
            scanner._activate()
        if not hits:
            if not options.show_suppressed:  # (only counted by allowlist entry and time: no need to send them whole)
                detection = Detection(detection.alerts, cast("list[Alert]", [
                    _Counted(alert.suppressed_by, alert.timestamp) for alert in detection.suppressed]))
            carry.ahead[index] = (fields, detection)
        hits.clear()


class _Counted:
    """What the scan keeps of a suppressed alert when suppressed alerts are not shown (see Scanner.scan_event)."""

    __slots__ = ("suppressed_by", "timestamp")

    def __init__(self, suppressed_by: str | None, timestamp: datetime) -> None:
        self.suppressed_by, self.timestamp = suppressed_by, timestamp

    def __reduce__(self) -> tuple[type[_Counted], tuple[str | None, datetime]]:
        return _Counted, (self.suppressed_by, self.timestamp)


# -- the parent: the ranges stitched in file order ------------------------------------------------------


class _StitchAssembler(Assembler):
    """The true state between ranges; closes what is open at the end of the file only."""

    last = False

    def finish(self) -> None:
        if self.last:
            super().finish()


_SCRATCH = Assembler("", lambda skip: None)


def _resolved(value: Known | bytes | _LazyConnect | None) -> Known | None:
    """A pid map entry as a lookup resolves it (the assembler's own code, on a scratch map)."""
    if value is None or type(value) is Known:
        return value
    _SCRATCH._pids[b""] = value
    try:
        return _SCRATCH._known(b"")
    finally:
        _SCRATCH._pids.clear()


def _unpacked(value: Any) -> Known | bytes | _LazyConnect:
    """A pid map entry as sent by a worker (a Known as a plain tuple)."""
    return Known(*value) if type(value) is tuple else cast("Known | bytes | _LazyConnect", value)


def _evaluate(kind: int, slot: int, a: Any, b: str, bases: dict[int, Any]) -> Known | bytes | None:
    """The entry a _Sym stands for, given the bases the journal replay found (None: none, which only a guess
    meets - a range where it can happen is not accepted)."""
    base = bases.get(slot)
    if kind == _OTHER:
        return cast(Known, _resolved(base)) if isinstance(base, (Known, _LazyConnect)) else cast(bytes, a)
    if kind == _KNOWN_OTHER:
        return _resolved(base if isinstance(base, (Known, _LazyConnect)) else a)
    before = _resolved(base)
    return Known(a, b, before.argv if before is not None and before.exe == a else ())


def _fill(event: Event, holes: list[_Hole], known_of: Callable[[_Hole], Known | None]) -> Fields3:
    """Complete an undecided event with the values of its holes (the parent's name and path, the command line),
    the entries looked up given by `known_of`; returns the three fields."""
    process = event.process
    for hole in holes:
        known = known_of(hole)
        if hole.kind == _PARENT:
            process.parent_name = full_comm(known) if known is not None else ""
            process.parent_path = known.exe if known is not None else ""
        elif known is not None and known.argv and known.exe == hole.exe:
            process.command_line = join_argv(known.argv)
        else:
            process.command_line = hole.proctitle or ""
    return process.parent_name, process.parent_path, process.command_line


Fields3 = tuple[str, str, str]


def _truth(bases: dict[int, Any]) -> Callable[[_Hole], Known | None]:
    """The entries holes looked up, once the journal is replayed."""
    def known_of(hole: _Hole) -> Known | None:
        ref = hole.ref
        return hole.value if ref is None else cast(Known, _evaluate(ref.kind, ref.slot, ref.a, ref.b, bases))
    return known_of


def _guess(pids: OrderedDict[bytes, Any]) -> Callable[[_Hole], Known | None]:
    """A worker's guess of the entries holes looked up: nothing (no Known, no argv) before the range for a
    symbolic one, the pid's entry at the end of the range for one from before it (a parent is usually a
    daemon that stays what it is)."""
    def known_of(hole: _Hole) -> Known | None:
        value: Any = hole.ref if hole.ref is not None else pids.get(hole.pid)
        if type(value) is _Sym:
            value = _evaluate(value.kind, value.slot, value.a, value.b, {})
        return _resolved(value)
    return known_of


class _Given:
    """A detector that answers with a detection made before (by a worker, on the same event)."""

    def __init__(self, detection: Detection) -> None:
        self.detection = detection

    def run(self, event: Event) -> Detection:
        return self.detection


def _moved(event: Event, lines: int, events: int) -> None:
    source = event.source
    event.source = SourceRef(source.format, source.file, source.line + lines, source.record + events)


class _Stitcher:
    """One audit log's ranges in file order: the true state kept in a real parser, numbered from the start
    of the range about to be taken."""

    def __init__(self, scanner: Scanner, name: str) -> None:
        self.scanner = scanner
        self.name = name
        self.lines = 0  # lines before the range about to be taken
        self.events = 0  # syscall events before it
        self.records = 0
        self.parser = AuditdParser(name, self._skip, light=scanner.options.prefilter)
        self.assembler = self.parser.assembler = _StitchAssembler(name, self._skip)

    def _skip(self, skip: Skip) -> None:
        self.scanner._on_skip(replace(skip, line=skip.line + self.lines))

    def fits(self, carry: AuditCarry) -> str:
        """Why the range cannot be taken as the worker read it ("" when it can)."""
        state = self.assembler
        if state.open or state._done:
            return "an event is open at the cut"
        if carry.unsure:
            return "a pid map step depends on the past"
        for node, first in carry.floor.items():
            if state._newest.get(node, first) > first:
                return "a node's time goes back across the cut"
        if carry.peak_region and not carry.cleared and len(state.other) + carry.peak_region >= OTHER_MEMORY:
            return "the memory of other syscalls' events overflows"
        if state.other or state._closed:
            met = set(carry.keys)
            if any(hash(key) in met for key in state.other) or any(hash(key) in met for key in state._closed):
                return "a record of an event from before the cut"
        return ""

    def take(self, part: Part, carry: AuditCarry) -> None:
        """Merge an accepted range (its worker's state in the range's numbering) into the true state."""
        state = self.assembler
        bases = self._pids(carry)
        truth = _truth(bases)
        for seq, found in carry.done_holes.items():
            event = carry.done[seq]
            assert event is not None
            _fill(event, found, truth)
        base = state._next_seq
        if carry.cleared:
            state.other.clear()
        else:  # the oldest keys fall out as the range's own fill the memory
            for _ in range(len(state.other) - max(0, OTHER_MEMORY - carry.peak)):
                state.other.popitem(last=False)
        for key in carry.other:
            state.other[key] = None
        closed = state._closed
        for key, flag in carry.closed:
            closed[key] = flag
        while len(closed) > CLOSED_MEMORY:
            closed.popitem(last=False)
        newest = state._newest
        for node, moment in carry.newest.items():
            if moment > newest.get(node, moment - 1):
                newest[node] = moment
        for pending in carry.open:
            pending.seq += base
            if pending.call == LIGHT:
                pending.call = LIGHT  # (compared by identity; unpickled strings are other objects)
            state.open[pending.key] = pending
        state._done = {seq + base: event for seq, event in carry.done.items()}
        state._next_seq, state._release = base + carry.next_seq, base + carry.release
        state._events = carry.events
        state.light_newest_ms = max(state.light_newest_ms, carry.light_newest_ms)
        stats, more = state.stats, carry.stats
        stats.opened += more.opened
        stats.closed.update(more.closed)
        stats.late_records += more.late_records
        stats.max_open = max(stats.max_open, more.max_open)
        stats.truncated_arguments += more.truncated_arguments
        # the worker's findings, then its undecided events judged where it would have judged them
        notes, part.notes = part.notes, []
        skips_by_file, part.skips_by_file = part.skips_by_file, part.skips_by_file.__class__()
        _absorb(self.scanner, part, self.lines, self.events)
        marks = carry.marks
        undecided = carry.undecided
        taken = 0
        replayed: dict[tuple[str, str], int] = {}
        for index in range(len(notes) + 1):
            while taken < len(undecided) and marks[taken] == index:
                event, found = undecided[taken]
                fields = _fill(event, found, truth)
                _moved(event, self.lines, self.events)
                ahead = carry.ahead.get(taken)
                taken += 1
                if ahead is None or ahead[0] != fields:
                    self.scanner.scan_event(event)
                    OUTCOMES["undecided events judged by the parent"] += 1
                    continue
                OUTCOMES["undecided events judged ahead"] += 1
                detection = ahead[1]  # judged by the worker on these very values
                _shift(detection.alerts, self.lines, self.events)
                if self.scanner.options.show_suppressed:
                    _shift(detection.suppressed, self.lines, self.events)
                scanner: Any = self.scanner
                detector, scanner.detector = scanner.detector, _Given(detection)
                try:
                    scanner.scan_event(event)
                finally:
                    scanner.detector = detector
            if index == len(notes):
                break
            note = notes[index]
            if isinstance(note, str):
                self.scanner.options.warn(note)
                continue
            note = replace(note, line=note.line + self.lines)
            self.scanner._announce_skip(note)
            replayed[(note.file, note.reason)] = replayed.get((note.file, note.reason), 0) + 1
        shown = self.scanner._skip_shown
        for reason, count in skips_by_file.items():  # the rest of the range's skips: counted, never shown
            shown[reason] = shown.get(reason, 0) + count - replayed.get(reason, 0)
        self.records += carry.records
        self._advance(carry.lines)

    def _pids(self, carry: AuditCarry) -> dict[int, Any]:
        """Replay the worker's pid map journal on the true map, append the worker's entries; returns the bases
        of the worker's symbolic entries (by slot)."""
        state = self.assembler
        pids: OrderedDict[bytes, Any] = state._pids
        limit = state.max_pids
        bases: dict[int, Any] = {}
        steps, sizes, joined, refs = carry.journal
        missing = object()
        for step, pid, ref, size in zip(steps, joined.split(b"\n") if steps else (), refs, sizes, strict=True):
            if not pids:
                break  # (nothing of the past left: the rest were new in both maps)
            if step == _INSERT:
                before = pids.pop(pid, missing)
                if before is missing:
                    if len(pids) + size > limit:
                        pids.popitem(last=False)  # an old entry falls out
                elif ref >= 0:
                    bases[ref] = _unpacked(before)
                continue
            if type(pids.get(pid)) is tuple:
                pids[pid] = _unpacked(pids[pid])  # (in place)
            known = state._known(pid)  # resolved in place, as the lookup of one process does
            if step == _LOOKUP:
                cast(_Hole, ref).value = known
        keys, values = carry.pids
        for pid, value in zip(keys.split(b"\n") if values else (), values, strict=True):
            if type(value) is tuple and len(value) == 4:
                value = _evaluate(*value, bases)
                assert value is not None  # (see _evaluate)
            pids[pid] = value
        return bases

    def rescan(self, task: Task, last: bool) -> None:
        """Read a range with the true state, as the one-process scan does (may raise a read error)."""
        assert task.span is not None
        scanner = self.scanner
        parser, state = self.parser, self.assembler
        state.last = last
        parser._not_records = 0
        pids: OrderedDict[bytes, Any] = state._pids
        for pid, value in pids.items():
            if type(value) is tuple:
                pids[pid] = Known(*value)  # (in place)
        counts = ReadCounts(exhaustive=not scanner.options.prefilter)
        try:
            with open(task.name, "rb") as handle:
                for event in parser.events(cast(BinaryIO, _Slice(handle, *task.span)), counts):
                    scanner.summary.parsed += 1
                    _moved(event, self.lines, self.events)
                    scanner.scan_event(event)
        finally:
            self.records += counts.records
        self._advance(counts.records + parser._not_records)

    def _advance(self, lines: int) -> None:
        """Number the state from the start of the next range."""
        state = self.assembler
        events = state._events
        for pending in state.open.values():
            pending.line -= lines
            pending.deferred_line -= lines
            pending.index -= events
            if pending.consumed:
                pending.consumed = [(text, number - lines) for text, number in pending.consumed]
        for event in state._done.values():
            if event is not None:
                _moved(event, -lines, -events)
        state._events = 0
        self.lines += lines
        self.events += events


def merge_audit_file(scanner: Scanner, tasks: list[Task], part_of: Callable[[int], Part]) -> None:
    """Take the ranges `tasks` of one audit log in order into `scanner` (`part_of(i)`: what the worker found in
    ``tasks[i]``), as the one-process scan reads the file."""
    name = tasks[0].name
    options = scanner.options
    report = FileReport(name, AUDITD_ADAPTER.name)
    scanner.summary.files.append(report)
    if options.prefilter:
        scanner.summary.shortcuts.add(f"{AUDITD_ADAPTER.name} {AUDITD_ADAPTER.shortcut}")
    before_records, before_skips = scanner.summary.records, sum(scanner.summary.skipped.values())
    scanner._activate()  # (limits hit here count in this scan)
    stitcher = _Stitcher(scanner, name)
    broken = False
    collecting = gc.isenabled()
    gc.disable()  # the ranges' results hold ~50k small objects each: cyclic collections would double their cost
    try:
        for number, task in enumerate(tasks):
            result = part_of(number)
            assert isinstance(result, AuditPart)
            carry = result.carry
            last = number == len(tasks) - 1
            why = "the worker's read failed" if carry is None else stitcher.fits(carry)
            if carry is not None and not why:
                stitcher.take(result, carry)
                OUTCOMES["accepted"] += 1
            else:
                stitcher.rescan(task, last)
                OUTCOMES[f"rescanned: {why}"] += 1
    except READ_ERRORS as error:
        broken = True
        scanner._read_stopped(name, report, _describe(error))
    finally:
        if collecting:
            gc.enable()
        scanner.summary.records += stitcher.records
    newest = stitcher.assembler.light_newest_ms
    if not broken and newest >= 0:
        scanner._see_time(moment_of(newest))
    scanner._file_done(name, AUDITD_ADAPTER.name, report, scanner.summary.records - before_records,
                       sum(scanner.summary.skipped.values()) - before_skips)
