"""The raw-bytes prefilter for line-oriented formats: only lines that could alert are parsed.

One scan of a block (Hyperscan when installed) finds:
- lines with a strong indicator (literals, encodings, Unicode-folding characters; see
  `knowledge/indicators.py`);
- lines with a numeric host shape in free text (command lines, URLs) whose token really reads as a
  metadata address; address fields (RemoteIP, LocalIP) are machine-written and parsed strictly, so
  numbers there would only make every network record a candidate;
- lines that do not start and end with the format's record delimiters, and lines holding a control byte
  that no log line writes raw (binary junk, a UTF-16 line): possibly malformed, they are parsed so that the
  problem is reported with its line, never silently cleared;
- blank lines (not records), so record numbers stay exact without counting passes in Python.

Web, proxy and network logs (see `for_adapter`) tune two things: numeric shapes count only after a character
that can precede a host in a URL or field (`numeric_after`, so the client address that starts a log line
is no candidate), and lines whose only indicator is a percent escape (`decode_percent`, common in URLs) are
percent-decoded, as the detections decode them, and selected only when the decoded text has an indicator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from ..knowledge.indicators import (
    PERCENT_ESCAPE,
    PatternSet,
    native_numeric_pass,
    numeric_patterns,
    numeric_token,
    strong_patterns,
    token_names_metadata,
)
from ..limits import active as active_limits

STRONG, NUMERIC, SUSPECT, BLANK, PERCENT = 0, 1, 2, 3, 4
_LINE_BREAKS_TO_SPACE = bytes.maketrans(b"\r\n", b"  ")


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


def _edge_patterns(edges: tuple[bytes | None, bytes | None] | None) -> tuple[bytes, ...]:
    """Lines that do not start with a byte of edges[0] or do not end with a byte of edges[1] (CR before LF
    allowed); a side that is None is not checked."""
    if edges is None:
        return ()
    first, last = edges
    patterns = []
    if first is not None:
        patterns.append(rb"(?:^|\n)[^" + re.escape(first) + rb"\n]")
    if last is not None:
        patterns.append(rb"[^" + re.escape(last) + rb"\r\n]\r?(?:\n|$)")
    # Two or more CRs before a LF: a run always ends in `\r\r\n`, at the same end offset (`\r\r+\n`, searched
    # unanchored by `re`, would read a long run of CRs again from each of them: quadratic).
    return (*patterns, rb"\r\r\n")


BLANK_PATTERNS = (rb"(?:^|\n)\r?\n",)
# Bytes no line format writes raw (JSON forbids them in strings, text logs escape them): junk when present.
CONTROL_PATTERNS = (rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]",)


def _prefixed_numeric_patterns(after: bytes) -> tuple[bytes, ...]:
    """Numeric host shapes that are a whole token: after a match of `after`, and not followed by a digit or by a
    dot and a digit (`Chrome/131.0.6778.81` is no 3-part host). None when `after` is empty (no free text)."""
    if not after:
        return ()
    end = rb"(?:[^0-9.]|\.(?:[^0-9]|$))"
    return tuple(b"(?:" + after + b")(?:" + shape.removesuffix(b"[^0-9]") + b")" + end for shape in numeric_patterns())


class Prefilter:
    """Plans which lines of a block to parse."""

    def __init__(self, free_text_keys: tuple[str, ...] = (),
                 record_edges: tuple[bytes | None, bytes | None] | None = None,
                 use_hyperscan: bool = True, numeric_after: bytes | None = None,
                 decode_percent: bool = False, use_numeric_native: bool = True) -> None:
        # JSON free text: the C numeric pass when built (knowledge.indicators.native_numeric_pass: the same tokens,
        # read in C, and only those that name metadata come back), else the numeric patterns.
        self._numeric_tokens = (native_numeric_pass(free_text_keys)
                                if numeric_after is None and free_text_keys and use_numeric_native else None)
        numeric = (_json_numeric_patterns(free_text_keys) if numeric_after is None
                   else _prefixed_numeric_patterns(numeric_after))
        strong = strong_patterns()
        percent: tuple[bytes, ...] = ()
        if decode_percent:
            strong = tuple(pattern for pattern in strong if pattern != PERCENT_ESCAPE)
            percent = (PERCENT_ESCAPE,)
        groups = (strong, () if self._numeric_tokens is not None else numeric,
                  (*_edge_patterns(record_edges), *CONTROL_PATTERNS), BLANK_PATTERNS, percent)
        self.patterns = PatternSet(groups, use_hyperscan)
        self.engine = self.patterns.engine
        # What a percent-decoded line is checked with: the strong and numeric groups only (the numeric patterns
        # even with the C pass: decoded lines are few).
        self._decoded = PatternSet((strong, numeric), use_hyperscan) if decode_percent else None

    def plan(self, block: bytes) -> BlockPlan:
        """The candidate lines and blank lines of `block`."""
        spans: list[tuple[int, int]] = []
        blank_ends: list[int] = []
        current_end = -1  # end of the last selected line
        pending: tuple[int, int] | None = None  # a line seen so far only with percent escapes
        token_end = -1  # end of the last numeric token read (see numeric_token)
        matches = self.patterns.matches(block)
        if self._numeric_tokens is not None:
            matches.extend((NUMERIC, end) for end in self._numeric_tokens(block))
        for group, end_offset in sorted(matches, key=lambda hit: hit[1]):
            if group == BLANK:
                if not blank_ends or blank_ends[-1] != end_offset:
                    blank_ends.append(end_offset)
                continue
            offset = max(end_offset - 1, 0)
            if group == SUSPECT and block[offset:offset + 1] == b"\n":
                offset -= 1  # the match ended on the newline after the line it is about
            if offset <= current_end:
                continue
            if pending is not None and offset > pending[1]:  # the escaped line has no other indicator
                if self._decoded_is_candidate(block[pending[0]:pending[1]]):
                    spans.append(pending)
                    current_end = pending[1]
                pending = None
            if group == NUMERIC:  # a token read already (None) did not name metadata
                token, token_end = numeric_token(block, end_offset, token_end)
                if token is None or not token_names_metadata(token):
                    continue
            start = block.rfind(b"\n", 0, offset) + 1
            end = block.find(b"\n", offset)
            if end == -1:
                end = len(block)
            if group == PERCENT:
                pending = pending or (start, end)
                continue
            spans.append((start, end))
            current_end = end
            pending = None  # when it was this line, it is selected now
        if pending is not None and self._decoded_is_candidate(block[pending[0]:pending[1]]):
            spans.append(pending)
        if block.endswith(b"\r") and block.rfind(b"\n") == len(block) - 2:  # an unterminated last line of a lone
            spans = [span for span in spans if span[0] != len(block) - 1]  # CR is blank, as with no prefilter
            blank_ends.append(len(block) + 1)
        return BlockPlan(spans, blank_ends)

    def _decoded_is_candidate(self, line: bytes) -> bool:
        """Whether a line with percent escapes has an indicator once decoded (as many rounds as the detections
        decode; still escaped after them, or decoded to bytes that are not UTF-8: kept, to be safe)."""
        assert self._decoded is not None
        data = line
        for _ in range(active_limits().max_decode_depth):
            decoded = unquote_to_bytes(data).translate(_LINE_BREAKS_TO_SPACE)
            if decoded == data:
                return False
            data = decoded
            if not data.isascii():
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    return True  # Latin-1 bytes the URL reader may fold into host characters
            probe = data + b"\n"  # as in a block, a line ends with a newline (a host at its end has its boundary)
            for group, end_offset in self._decoded.matches(probe):
                if group == STRONG or token_names_metadata(numeric_token(probe, end_offset)[0] or b""):
                    return True
            if b"%" not in data:
                return False
        return True


def for_adapter(adapter: Any, use_hyperscan: bool = True) -> Prefilter:
    """The prefilter of a line-oriented source adapter, from its optional attributes: `free_text_keys`,
    `record_edges`, `numeric_after` and `decode_percent` (see the module docstring)."""
    return Prefilter(getattr(adapter, "free_text_keys", ()), getattr(adapter, "record_edges", None), use_hyperscan,
                     getattr(adapter, "numeric_after", None), getattr(adapter, "decode_percent", False))
