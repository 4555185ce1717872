"""`--jobs N`: the scan in worker processes, with exactly the result of the one-process scan.

Work is cut into tasks:

- a **whole input** (any format, plain or gzip) is scanned by one worker exactly as
  :meth:`Scanner.scan_file` does;
- a large, plain (not gzip), **line-oriented** file (Defender JSON lines: adapters with ``parse_line``)
  is cut into **byte ranges**. Ranges start and end on the block boundaries of the one-process scan
  (:func:`.scan._blocks` cuts each block at the last newline before a read end; the read ends are fixed
  offsets, see :func:`read_end`), and each worker reads its range with the same read ends; so every
  block, every prefilter plan and every counter is the one the one-process scan would see;
- a large, plain **raw audit log** (auditd: stateful - events assembled over records, a pid map fed by
  earlier events) is cut at line boundaries where the audit trail is quiet, and each worker reads its
  range as if nothing came before it, noting what it assumed about the past: the parent keeps the true
  reader state between ranges, takes a range as read when the assumptions hold (replaying the pid map's
  journal, filling the few events that depend on earlier ones and judging them) and reads it itself when
  they do not (see :mod:`.parallel_auditd`);
- standard input is read by the parent itself when its turn comes (workers have no standard input).

Workers are forked (``fork`` start method) after the parent has loaded what they share: options, the
allowlist, the prefilter databases of the line-oriented files about to be split and the indicator gate,
so no worker compiles or reloads a Hyperscan database the parent already had. A worker streams its task
in blocks and sends back only what the one-process scanner would keep: alerts *before* the window and
severity filters (a relative ``--since 24h`` needs the newest event of the whole input), suppressed
alerts (or only their times), the newest time seen, counters, the numbers of lines and records of a
range, and the first few skips of each reason with the warnings, in order.

The parent merges the tasks in input order (files in command-line and directory order, ranges in file
order): it shifts the line and record numbers of each range by the lines and records (audit logs: syscall
events) of the ranges before it, replays skip warnings through the one-process rule (first five per file
and reason, then one "further ... only counted" line), closes each file's report as the one-process scan
does, and finishes with the same window, severity filter and newest-first order. So alerts, suppressed
alerts, the summary and the warnings are those of ``jobs=1``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.pool import AsyncResult
from typing import BinaryIO

from ..cloud.collector import CloudCollector
from ..knowledge.indicators import could_mention_bytes
from ..model import Alert, SourceRef
from ..sources.base import LineSource, Skip, SourceAdapter
from ..sources.registry import ADAPTERS, BY_NAME, detect_format
from . import scan as _scan
from .inputs import GZIP_MAGIC, HEAD_SIZE, STDIN, InputFile, discover
from .interrupt import ScanInterrupted, interruptible
from .lines import blocks as line_blocks
from .prefilter import Prefilter, for_adapter
from .scan import READ_ERRORS, SKIP_MESSAGES_PER_REASON, Scanner, ScanOptions, ScanResult, _describe
from .summary import FileReport

__all__ = ["Task", "plan_ranges", "range_blocks", "read_end", "scan_parallel", "usable_cores"]

GZIP_COST = 6  # a gzip file takes about this many times longer per byte than a plain one (for scheduling)
_BACK_STEP = 65536  # how far back at a time to look for the newline before a cut


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int) -> int:
    """`jobs`, with 0 meaning every usable core; raises ValueError when negative."""
    if jobs < 0:
        raise ValueError(f"jobs must be 0 (all usable cores) or a positive number, not {jobs}")
    return usable_cores() if jobs == 0 else jobs


# -- ranges ---------------------------------------------------------------------------------------


def read_end(index: int, head_size: int, block_size: int) -> int:
    """The file offset where the one-process scan's read number `index` (0-based) ends.

    The scanner's stream first returns the head that format detection read (`head_size` bytes, at most
    `block_size` per read), then reads of `block_size` bytes from the file.
    """
    head_reads = -(-head_size // block_size)
    if index < head_reads:
        return min((index + 1) * block_size, head_size)
    return head_size + (index - head_reads + 1) * block_size


def _last_newline(handle: BinaryIO, before: int, floor: int) -> int | None:
    """The offset of the last newline in [floor, before), or None."""
    end = before
    while end > floor:
        start = max(floor, end - _BACK_STEP)
        handle.seek(start)
        data = handle.read(end - start)
        found = data.rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
    return None


@dataclass(frozen=True)
class Range:
    """Bytes [start, the last newline before read `last_read`] of a file; `last_read` None: to its end.

    `start` is 0 or just after the last newline before read `first_read - 1` ends (a block boundary).
    """

    start: int
    first_read: int
    last_read: int | None


def plan_ranges(handle: BinaryIO, size: int, head_size: int, pieces: int) -> list[Range]:
    """Cut a file of `size` bytes into about `pieces` ranges of whole blocks (fewer when it has fewer
    blocks or lacks newlines where a cut would go)."""
    block_size = _scan.BLOCK_SIZE
    ends: list[int] = []
    while len(ends) < 1 << 24:
        end = read_end(len(ends), head_size, block_size)
        if end >= size:
            break
        ends.append(end)
    pieces = min(pieces, len(ends) + 1)
    cuts: list[tuple[int, int]] = []  # (read index, offset just after its last newline)
    floor = 0
    for piece in range(1, pieces):
        target = size * piece // pieces
        index = bisect_left(ends, target)
        if index == len(ends) or (index > 0 and target - ends[index - 1] <= ends[index] - target):
            index -= 1  # the nearest read end
        if index < 0 or (cuts and index <= cuts[-1][0]):
            continue
        newline = _last_newline(handle, ends[index], floor)
        if newline is None:
            continue
        cuts.append((index, newline + 1))
        floor = newline + 1
    ranges: list[Range] = []
    start, first_read = 0, 0
    for index, offset in cuts:
        ranges.append(Range(start, first_read, index))
        start, first_read = offset, index + 1
    ranges.append(Range(start, first_read, None))
    return ranges


def range_blocks(handle: BinaryIO, cut: Range, head_size: int) -> Iterator[bytes]:
    """The blocks :func:`.scan._blocks` yields for the bytes of `cut` when it reads the whole file: the same reads
    (up to the same read ends), each cut at its last newline (the range ends at the last newline before its last
    read end: the rest is the next range's)."""
    block_size = _scan.BLOCK_SIZE
    handle.seek(cut.start)

    def reads() -> Iterator[int]:
        position, index = cut.start, cut.first_read
        while cut.last_read is None or index <= cut.last_read:
            end = read_end(index, head_size, block_size)
            yield end - position
            position, index = end, index + 1

    return line_blocks(handle, block_size, None, reads())  # type: ignore[return-value]  # (no limit: no Oversized)


# -- tasks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One unit of work: a whole input, or a range of a line-oriented file (`adapter` set)."""

    item: int  # the input's position among all inputs
    name: str
    cost: int  # bytes (gzip weighted), for scheduling: the costliest tasks start first
    adapter: str = ""  # a range: the line-oriented adapter the whole file is read with
    cut: Range | None = None
    head_size: int = 0
    span: tuple[int, int] | None = None  # a range of a raw audit log: [start, end) bytes, end -1 for the rest


@dataclass
class Part:
    """What a worker found in one task: everything the one-process scanner keeps, before any filter."""

    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    suppressed_times: dict[str, array[float]] = field(default_factory=dict)
    newest: datetime | None = None
    records: int = 0
    parsed: int = 0
    usable: int = 0
    prefiltered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skips_by_file: Counter[tuple[str, str]] = field(default_factory=Counter)  # (file, reason)
    prefilter_engine: str = "off"
    notes: list[Skip | str] = field(default_factory=list)  # the first skips of each reason, and warnings
    report: FileReport | None = None  # a whole input
    lines: int = 0  # a range: its lines and records
    range_records: int = 0
    error: str | None = None  # a range: why reading stopped
    shortcuts: set[str] = field(default_factory=set)  # see Summary.shortcuts
    cloud: CloudCollector | None = None  # cloud calls seen (judged by the parent in finish(), with all others)
    limits: Counter[str] = field(default_factory=Counter)  # limits hit (see Summary.limits)
    outside_window: int = 0  # alerts dropped early as outside --since/--until (see Scanner._prune)


class _TaskScanner(Scanner):
    """A scanner for one task: warnings and the first skips of each reason are noted, not printed."""

    def __init__(self, options: ScanOptions, prefilters: dict[str, Prefilter]) -> None:
        self.notes: list[Skip | str] = []
        super().__init__(replace(options, warn=self.notes.append, on_alert=None, jobs=1), prefilters)
        self.skips_by_file: Counter[tuple[str, str]] = Counter()

    def _on_skip(self, skip: Skip) -> None:
        self.summary.skipped[skip.reason] += 1
        key = (skip.file, skip.reason)
        self.skips_by_file[key] += 1
        if self.skips_by_file[key] <= SKIP_MESSAGES_PER_REASON + 1:  # enough to replay "further ..."
            self.notes.append(skip)

    def part(self) -> Part:
        summary = self.summary
        part = Part(self.alerts, self.suppressed, self._suppressed_times, self.newest, summary.records,
                    summary.parsed, summary.usable, summary.prefiltered, summary.skipped, self.skips_by_file,
                    summary.prefilter_engine, self.notes, summary.files[0] if summary.files else None)
        part.cloud = self.cloud if self.cloud.events else None
        part.shortcuts = summary.shortcuts
        part.limits = summary.limits
        part.outside_window = summary.outside_window
        return part


@dataclass
class _Shared:
    """What every task needs; set before the workers are forked, so it is never pickled."""

    options: ScanOptions
    prefilters: dict[str, Prefilter]


_SHARED: _Shared | None = None


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent ends its workers with SIGTERM when it stops


def run_task(task: Task) -> Part:
    """Scan one task (in a worker, or in the parent for standard input)."""
    assert _SHARED is not None
    if task.span is not None:
        from .parallel_auditd import run_audit_range

        return run_audit_range(task)
    scanner = _TaskScanner(_SHARED.options, _SHARED.prefilters)
    if task.cut is None:
        scanner.scan_file(InputFile(task.name))
        return scanner.part()
    lines = records = 0
    error = None
    try:
        with open(task.name, "rb") as handle:
            adapter: LineSource = BY_NAME[task.adapter]  # type: ignore[assignment]
            lines, records = scanner._scan_blocks(range_blocks(handle, task.cut, task.head_size), adapter,
                                                  task.name)
    except READ_ERRORS as problem:
        error = _describe(problem)
    part = scanner.part()
    part.lines, part.range_records, part.error = lines, records, error
    return part


def _line_adapter(options: ScanOptions, head: bytes) -> SourceAdapter | None:
    """The adapter a file with `head` is read with, when it reads it line by line."""
    if options.format != "auto":
        adapter: SourceAdapter | None = BY_NAME[options.format]
    elif not head.strip():
        return None
    else:
        adapter = detect_format(head)
    return adapter if adapter is not None and Scanner._line_oriented(adapter, head) else None


def _plan_file(item: int, name: str, options: ScanOptions, jobs: int) -> list[Task]:
    """The tasks of one input: its ranges when it is a large plain line-oriented file, else itself."""
    if name == STDIN:
        return [Task(item, name, 0)]
    try:
        size = os.stat(name).st_size
    except OSError:
        return [Task(item, name, 0)]  # the task reports it as the one-process scan would
    whole = [Task(item, name, size)]
    from .parallel_auditd import audit_tasks

    audit = audit_tasks(item, name, size, options, jobs)  # a raw audit log: ranges cut where the trail is quiet
    if audit is not None:
        return audit
    if size <= HEAD_SIZE + _scan.BLOCK_SIZE:
        return whole
    try:
        with open(name, "rb") as handle:
            head = handle.read(HEAD_SIZE)
            if head[:2] == GZIP_MAGIC:
                return [Task(item, name, size * GZIP_COST)]
            adapter = _line_adapter(options, head)
            if adapter is None:
                return whole
            pieces = math.ceil(size / max(1, options.chunk_bytes))
            pieces = jobs * math.ceil(pieces / jobs)  # at least one per job, and a whole round per job
            ranges = plan_ranges(handle, size, len(head), pieces)
    except OSError:
        return whole
    if len(ranges) == 1:
        return whole
    ends = [cut.start for cut in ranges[1:]] + [size]
    return [Task(item, name, end - cut.start, adapter.name, cut, len(head))
            for cut, end in zip(ranges, ends, strict=True)]


def _databases(options: ScanOptions) -> dict[str, Prefilter]:
    """Load, before forking, the Hyperscan databases tasks use (from the on-disk cache; compiled only when
    missing): the indicator gate of the detections and the prefilter of every line-oriented format.
    Workers inherit them and build none (about 40 ms here, instead of once per worker)."""
    could_mention_bytes(b"")
    prefilters: dict[str, Prefilter] = {}
    if options.prefilter:
        for adapter in ADAPTERS:
            if hasattr(adapter, "parse_line") and hasattr(adapter, "is_line_oriented"):
                prefilters[adapter.name] = for_adapter(adapter)
    return prefilters


# -- merging --------------------------------------------------------------------------------------


def _shift(alerts: list[Alert], lines: int, records: int) -> None:
    """Make a range's line and record numbers the file's (alerts of one event share a SourceRef)."""
    if lines == 0 and records == 0:
        return
    for alert in alerts:
        source = alert.source
        alert.source = SourceRef(source.format, source.file, source.line + lines, source.record + records)


def _absorb(scanner: Scanner, part: Part, lines: int = 0, records: int = 0) -> None:
    """Add a task's findings and counters to the parent scanner, in input order."""
    _shift(part.alerts, lines, records)
    _shift(part.suppressed, lines, records)
    scanner.alerts.extend(part.alerts)
    scanner.suppressed.extend(part.suppressed)
    for entry, times in part.suppressed_times.items():
        scanner._suppressed_times.setdefault(entry, array("d")).extend(times)
    scanner._see_time(part.newest)
    if part.cloud is not None:
        scanner.cloud.merge(part.cloud)
    summary = scanner.summary
    summary.records += part.records
    summary.parsed += part.parsed
    summary.usable += part.usable
    summary.prefiltered += part.prefiltered
    summary.skipped.update(part.skipped)
    if part.prefilter_engine != "off":
        summary.prefilter_engine = part.prefilter_engine
    summary.shortcuts |= part.shortcuts
    summary.limits.update(part.limits)
    summary.outside_window += part.outside_window
    scanner.prune_if_due()
    replayed: Counter[tuple[str, str]] = Counter()
    for note in part.notes:
        if isinstance(note, str):
            scanner.options.warn(note)
            continue
        if lines:
            note = replace(note, line=note.line + lines)
        scanner._announce_skip(note)
        replayed[(note.file, note.reason)] += 1
    for key, count in part.skips_by_file.items():  # the rest of the task's skips: counted, never shown
        scanner._skip_shown[key] = scanner._skip_shown.get(key, 0) + count - replayed[key]


def scan_parallel(paths: Iterable[str], options: ScanOptions) -> ScanResult:
    """:func:`.scan.scan` with `options.jobs` worker processes (0: every usable core)."""
    global _SHARED
    if options.on_alert is not None:
        raise ValueError("streaming alerts (on_alert) needs jobs=1")
    jobs = resolve_jobs(options.jobs)
    if jobs == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return Scanner(replace(options, jobs=1)).scan_paths(paths)
    scanner = Scanner(options)
    inputs = list(discover(list(paths)))
    tasks = [task for item, entry in enumerate(inputs) if isinstance(entry, InputFile)
             for task in _plan_file(item, entry.name, options, jobs)]
    pooled = [task for task in tasks if task.name != STDIN]
    _SHARED = _Shared(options, _databases(options))
    pending: dict[int, AsyncResult[Part]] = {}
    pool = None
    try:
        if len(pooled) > 1:
            pool = multiprocessing.get_context("fork").Pool(min(jobs, len(pooled)), _worker_init)
            for number in sorted(range(len(tasks)), key=lambda number: -tasks[number].cost):
                if tasks[number].name != STDIN:
                    pending[number] = pool.apply_async(run_task, (tasks[number],))
        with interruptible():
            _merge(scanner, inputs, tasks, pending)
    except ScanInterrupted as stop:  # what was merged stands; the workers are ended below
        scanner.interrupted(stop.reason)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _SHARED = None
    return scanner.finish()


def _merge(scanner: Scanner, inputs: list[InputFile | tuple[str, str]], tasks: list[Task],
           pending: dict[int, AsyncResult[Part]]) -> None:
    """Take the tasks' parts in input order, as the one-process scan would have produced them."""
    by_item: dict[int, list[int]] = {}
    for number, task in enumerate(tasks):
        by_item.setdefault(task.item, []).append(number)

    def part_of(number: int) -> Part:
        result = pending.pop(number, None)
        return result.get() if result is not None else run_task(tasks[number])

    for item, entry in enumerate(inputs):
        if not isinstance(entry, InputFile):
            scanner.summary.missing.append(entry)
            scanner.options.warn(f"{entry[0]}: {entry[1]}")
            continue
        numbers = by_item[item]
        first = tasks[numbers[0]]
        if first.span is not None:
            from .parallel_auditd import merge_audit_file

            merge_audit_file(scanner, [tasks[number] for number in numbers],
                             lambda index, numbers=numbers: part_of(numbers[index]))  # type: ignore[misc]
            continue
        if first.cut is None:
            part = part_of(numbers[0])
            if part.report is not None:
                scanner.summary.files.append(part.report)
            _absorb(scanner, part)
            continue
        report = FileReport(first.name, first.adapter)
        scanner.summary.files.append(report)
        before_records, before_skips = scanner.summary.records, sum(scanner.summary.skipped.values())
        lines = records = 0
        for number in numbers:
            part = part_of(number)
            _absorb(scanner, part, lines, records)
            if part.error is not None:  # as in one process: what came before the error was scanned
                scanner._read_stopped(first.name, report, part.error)
                break
            lines += part.lines
            records += part.range_records
        scanner._file_done(first.name, first.adapter, report, scanner.summary.records - before_records,
                           sum(scanner.summary.skipped.values()) - before_skips)
