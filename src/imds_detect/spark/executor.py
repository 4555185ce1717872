"""The Python side of a Spark scan: candidate lines in, alerts and counters out (runs on the executors).

A partition's candidate rows arrive in file order (Spark reads each split of a file in order), each with
its file, split and two position counters from which the exact line and record numbers follow (see
engine.py). They are joined into blocks of whole lines and planned by the local prefilter again, so the
lines parsed, the skips reported and the alerts are those of the local engine for the same lines.
"""

from __future__ import annotations

import bisect
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..detect.allowlist import Allowlist
from ..engine.prefilter import BlockPlan, Prefilter
from ..engine.scan import BLOCK_SIZE, SKIP_MESSAGES_PER_REASON, Scanner, ScanOptions, _plan_all
from ..model import Alert
from ..sources.base import LineSource, Skip
from ..sources.registry import BY_NAME


@dataclass(frozen=True)
class Split:
    """Where a split's lines start: numbers of its first line and record, and its position counters."""

    name: str  # the file's name in alerts
    line_base: int  # lines of the file before the split
    first_row: int  # monotonically_increasing_id of the split's first line
    record_base: int  # records (non-blank lines) of the file before the split
    first_record_row: int  # the second id (counted over non-blank lines) of the split's first record


@dataclass
class Job:
    """What every partition needs; pickled into the task closure."""

    splits: dict[tuple[str, int], Split]  # by (Spark file path, split start)
    allowlist: Allowlist
    adapter: str
    prefilter: bool
    show_suppressed: bool


@dataclass
class FilePart:
    """One file's findings in one partition, before any filter (as the local scanner keeps them)."""

    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    suppressed_times: dict[str, array[float]] = field(default_factory=dict)
    newest: datetime | None = None
    parsed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[Skip] = field(default_factory=list)  # the first skips of each reason, in line order


@dataclass
class Part:
    """A partition's result."""

    files: dict[tuple[str, int], FilePart] = field(default_factory=dict)  # by (file name, split start)
    candidates: int = 0  # lines that reached Python
    engine: str = "off"


class _FileScanner(Scanner):
    """A scanner for one file of one partition: skips are noted (the driver replays the warnings)."""

    def __init__(self, options: ScanOptions) -> None:
        super().__init__(options)
        self.part = FilePart()

    def _on_skip(self, skip: Skip) -> None:
        self.part.skipped[skip.reason] += 1
        if self.part.skipped[skip.reason] <= SKIP_MESSAGES_PER_REASON + 1:  # enough to replay "further ..."
            self.part.notes.append(skip)

    def done(self) -> FilePart:
        part = self.part
        part.alerts, part.suppressed, part.suppressed_times = self.alerts, self.suppressed, self._suppressed_times
        part.newest, part.parsed = self.newest, self.summary.parsed
        return part


_PREFILTERS: dict[str, Prefilter] = {}  # per Python worker (workers are reused between tasks)


def _prefilter(adapter: LineSource) -> Prefilter:
    prefilter = _PREFILTERS.get(adapter.name)
    if prefilter is None:
        prefilter = Prefilter(getattr(adapter, "free_text_keys", ()), getattr(adapter, "record_edges", None))
        _PREFILTERS[adapter.name] = prefilter
    return prefilter


def scan_partition(job: Job, rows: Iterable[Any]) -> Iterator[Part]:
    """Scan a partition's candidate rows (file path, split start, id, record id, raw line); yield one Part."""
    adapter: LineSource = BY_NAME[job.adapter]  # type: ignore[assignment]
    prefilter = _prefilter(adapter) if job.prefilter else None
    options = ScanOptions(allowlist=job.allowlist, show_suppressed=job.show_suppressed, prefilter=job.prefilter)
    part = Part(engine=prefilter.engine if prefilter is not None else "off")
    scanners: dict[tuple[str, int], _FileScanner] = {}  # one per split: its rows come in line order
    lines: list[bytes] = []
    numbers: list[tuple[int, int]] = []
    size = 0
    current: _FileScanner | None = None
    current_key: tuple[str, int] | None = None
    current_name = ""

    def flush() -> None:
        nonlocal size
        if lines and current is not None:
            _scan_block(current, adapter, prefilter, current_name, lines, numbers)
        lines.clear()
        numbers.clear()
        size = 0

    for file_path, block_start, row, record_row, raw in rows:
        part.candidates += 1
        split = job.splits[(file_path, block_start)]
        if (file_path, block_start) != current_key or size >= BLOCK_SIZE:
            flush()
            current_key, current_name = (file_path, block_start), split.name
            current = scanners.get((split.name, block_start))
            if current is None:
                current = scanners[(split.name, block_start)] = _FileScanner(options)
        line = bytes(raw)
        lines.append(line)
        numbers.append((split.line_base + row - split.first_row + 1,
                        split.record_base + record_row - split.first_record_row))
        size += len(line) + 1
    flush()
    part.files = {key: scanner.done() for key, scanner in scanners.items()}
    yield part


def _scan_block(scanner: _FileScanner, adapter: LineSource, prefilter: Prefilter | None, name: str,
                lines: list[bytes], numbers: list[tuple[int, int]]) -> None:
    """Plan the block of candidate lines as the local engine plans a block, and scan what it selects."""
    block = b"\n".join(lines) + b"\n"  # every line ends with a newline, as inside a file
    starts = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    plan: BlockPlan = prefilter.plan(block) if prefilter is not None else _plan_all(block)
    for start, end in plan.spans:
        line = block[start:end].rstrip(b"\r")
        if not line:
            continue
        scanner.summary.parsed += 1
        line_number, record = numbers[bisect.bisect_right(starts, start) - 1]
        event = adapter.parse_line(line, name, line_number, record, scanner._on_skip)
        if event is not None:
            scanner.scan_event(event)
