"""Reading logs whose `#` directive lines describe the lines after them (Zeek TSV `#fields`, W3C `#Fields:`).

Such a file cannot be cut into independent lines, so its adapter reads it whole, in blocks: every directive
line is handed over (it changes how the next lines read), and of the record lines only those the
line prefilter selects, unless the scan is exhaustive (`--no-prefilter`). Line and record numbers stay
exact; directive lines are not records.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .. import limits as _limits
from ..engine.lines import Oversized, bounded
from ..engine.lines import blocks as line_blocks
from ..engine.prefilter import Prefilter
from .base import ReadCounts

BLOCK_SIZE = 4 * 1024 * 1024


@dataclass(slots=True)
class Line:
    """A line handed to the adapter."""

    number: int  # 1-based
    record: int  # 0-based index among record lines (for a directive: the index the next record will get)
    text: bytes  # without the line break
    directive: bool


def _directive_starts(block: bytes) -> list[int]:
    starts = [0] if block.startswith(b"#") else []
    found = block.find(b"\n#")
    while found != -1:
        starts.append(found + 1)
        found = block.find(b"\n#", found + 1)
    return starts


def _all_spans(block: bytes) -> tuple[list[tuple[int, int]], list[int]]:
    spans: list[tuple[int, int]] = []
    blank_ends: list[int] = []
    start = 0
    while start < len(block):
        end = block.find(b"\n", start)
        if end == -1:
            end = len(block)
        if block[start:end].strip(b"\r") == b"":
            blank_ends.append(end + 1)
        else:
            spans.append((start, end))
        start = end + 1
    return spans, blank_ends


def read_lines(stream: BinaryIO, prefilter: Callable[[], Prefilter | None], counts: ReadCounts,
               oversized: Callable[[int, int], None] | None = None) -> Iterator[Line]:
    """Directive lines and the record lines worth parsing, in order, counting every record line read.

    `prefilter` is asked, for each run of record lines, which prefilter to plan it with: the adapter reads
    each directive before the lines after it are planned, so a `#fields` line can change it. None (or an
    exhaustive scan) parses every line. A line longer than ``limits.max_line_bytes`` is counted as a record,
    not kept, and handed to `oversized` (its number and the limit) for the adapter to report.
    """
    position = _Position()
    limit = _limits.active().max_line_bytes
    for block in bounded(line_blocks(stream, BLOCK_SIZE, limit), limit):
        if isinstance(block, Oversized):
            if oversized is not None:
                oversized(position.line, limit)
            _limits.hit("max_line_bytes")
            counts.records += 1
            position.line += 1
            position.record += 1
            continue
        start = 0
        for directive in [*_directive_starts(block), len(block)]:
            if directive > start:
                current = None if counts.exhaustive else prefilter()
                yield from _segment(block[start:directive], current, position, counts)
            if directive == len(block):
                break
            end = block.find(b"\n", directive)
            end = len(block) if end == -1 else end
            yield Line(position.line, position.record, block[directive:end].rstrip(b"\r"), True)
            position.line += 1
            start = end + 1


@dataclass(slots=True)
class _Position:
    line: int = 1  # of the next line
    record: int = 0  # of the next record line


def _segment(segment: bytes, prefilter: Prefilter | None, position: _Position, counts: ReadCounts) -> Iterator[Line]:
    """The selected record lines of a run of record lines (no directive among them)."""
    if prefilter is None:
        spans, blank_ends = _all_spans(segment)
    else:
        plan = prefilter.plan(segment)
        spans, blank_ends = plan.spans, plan.blank_ends
    counted_to = counted = 0
    for start, end in spans:
        counted += segment.count(b"\n", counted_to, start)
        counted_to = start
        blanks = bisect.bisect_right(blank_ends, start)
        text = segment[start:end].rstrip(b"\r")
        if text:
            yield Line(position.line + counted, position.record + counted - blanks, text, False)
    lines = segment.count(b"\n") + (0 if segment.endswith(b"\n") else 1)
    records = lines - len(blank_ends)
    counts.records += records
    position.line += lines
    position.record += records
