"""The raw-bytes prefilter for line-oriented formats: only lines that could alert are parsed.

One scan of a block (Hyperscan when installed) finds:
- lines with a strong indicator (literals, encodings, Unicode-folding characters; see
  `knowledge/indicators.py`);
- lines with a numeric host shape in free text (command lines, URLs) whose token really reads as a
  metadata address; address fields (RemoteIP, LocalIP) are machine-written and parsed strictly, so
  numbers there would only make every network record a candidate;
- lines that do not start and end with the format's record delimiters (possibly malformed: they are
  parsed so that the problem is reported with its line, never silently cleared);
- blank lines (not records), so record numbers stay exact without counting passes in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..knowledge.indicators import PatternSet, numeric_patterns, strong_patterns, token_around, token_names_metadata

STRONG, NUMERIC, SUSPECT, BLANK = 0, 1, 2, 3


@dataclass
class BlockPlan:
    """What to parse in a block: candidate line spans (start, end without newline) and blank-line ends."""

    spans: list[tuple[int, int]]
    blank_ends: list[int]  # offset just after each blank line's newline, ascending


def _json_numeric_patterns(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    """Numeric host shapes where a free-text value can hold them, not in address fields.

    A shape counts when something other than a bare quote precedes it (inside a command line or URL,
    including an escaped quote `\\"`), or when it starts the value of one of `keys` (`"RemoteUrl":"2852039166"`,
    also as an escaped key inside a nested JSON string). A value like `"RemoteIP":"10.1.2.3"` matches neither,
    so address columns do not make every network record a candidate; they are parsed strictly.
    """
    shapes = numeric_patterns()
    if not keys:
        return shapes
    key_group = b"|".join(re.escape(key.encode()) for key in keys)
    value_start = rb'\\?"(?:' + key_group + rb')\\?"\s*:\s*\\?"'
    inside = rb'(?:[^"0-9A-Za-z._\-]|\\")'  # '-' or '_' before digits: part of a name or SID
    return tuple(prefix + b"(?:" + shape + b")" for shape in shapes for prefix in (inside, value_start))


def _edge_patterns(edges: tuple[bytes, bytes] | None) -> tuple[bytes, ...]:
    """Lines that do not start with edges[0] or do not end with edges[1] (CR before LF allowed)."""
    if edges is None:
        return ()
    first, last = (re.escape(edge) for edge in edges)
    return (
        rb"(?:^|\n)[^" + first + rb"\n]",
        rb"[^" + last + rb"\r\n]\r?(?:\n|$)",
        rb"\r\r+\n",
    )


BLANK_PATTERNS = (rb"(?:^|\n)\r?\n",)


class Prefilter:
    """Plans which lines of a block to parse."""

    def __init__(self, free_text_keys: tuple[str, ...] = (), record_edges: tuple[bytes, bytes] | None = None,
                 use_hyperscan: bool = True) -> None:
        groups = (strong_patterns(), _json_numeric_patterns(free_text_keys), _edge_patterns(record_edges),
                  BLANK_PATTERNS)
        self.patterns = PatternSet(groups, use_hyperscan)
        self.engine = self.patterns.engine

    def plan(self, block: bytes) -> BlockPlan:
        """The candidate lines and blank lines of `block`."""
        spans: list[tuple[int, int]] = []
        blank_ends: list[int] = []
        current_end = -1  # end of the last selected line
        for group, end_offset in sorted(self.patterns.matches(block), key=lambda hit: hit[1]):
            if group == BLANK:
                if not blank_ends or blank_ends[-1] != end_offset:
                    blank_ends.append(end_offset)
                continue
            offset = max(end_offset - 1, 0)
            if group == SUSPECT and block[offset:offset + 1] == b"\n":
                offset -= 1  # the match ended on the newline after the line it is about
            if offset <= current_end:
                continue
            if group == NUMERIC and not token_names_metadata(token_around(block, max(end_offset - 2, 0))):
                continue  # the digit run ends just before the boundary character at end_offset - 1
            start = block.rfind(b"\n", 0, offset) + 1
            end = block.find(b"\n", offset)
            if end == -1:
                end = len(block)
            spans.append((start, end))
            current_end = end
        return BlockPlan(spans, blank_ends)
