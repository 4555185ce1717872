"""Cutting a block of a CSV export into whole records without parsing them (the fast path of the Defender CSV
reader, see :mod:`.mde_csv`).

A record is taken here only when it is *plain*: exactly `width` fields separated by commas, each either unquoted
(no quote, comma, CR or LF in it) or quoted (``"`` ... ``"``, quotes inside doubled, anything else including
newlines between them), then LF or CR LF. For such a record, ``csv.reader(strict=True)`` on the file's lines reads
exactly these fields and ends the record exactly there, so the reader can count it, or gate it, without parsing
it. A blank line (LF or CR LF alone) is taken too (csv.reader gives an empty row for it). Anything else - a quote
inside an unquoted field, a lone CR, text after a closing quote, another number of fields, a record that is not
whole before the end given - stops the cut: the reader hands that record to csv.reader.

:func:`regex_records` is the reference (and the fallback when the C extension is not built); ``records`` is the C
version when built (``native/csv_records.c``), tested against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ..accelerators import native_function

__all__ = ["records", "regex_records"]

_FIELD = rb'(?:"(?:[^"]|"")*"|[^",\r\n]*)'


@lru_cache(maxsize=16)
def _record(width: int) -> re.Pattern[bytes]:
    """A blank line, or a plain record of `width` fields (group 1 set)."""
    return re.compile(rb"\r?\n|(" + rb"(?:" + _FIELD + rb",){%d}" % (width - 1) + _FIELD + rb"\r?\n)")


def regex_records(block: bytes, start: int, end: int, width: int) -> tuple[list[int], list[int], int]:
    """The records of ``block[start:end]`` from `start` (a record's start) while they are plain or blank lines.

    Returns (the end offset of each, just after its LF; the indexes of the blank lines among them; the offset where
    the cut stopped: `end`, or the start of the first record that is neither, or not whole before `end`).
    """
    if width < 1 or not 0 <= start <= end <= len(block):
        raise ValueError("records: width must be at least 1, and 0 <= start <= end <= len(block)")
    pattern = _record(width)
    ends: list[int] = []
    blanks: list[int] = []
    position = start
    while position < end:
        match = pattern.match(block, position, end)
        if match is None:
            break
        if match.group(1) is None:
            blanks.append(len(ends))
        position = match.end()
        ends.append(position)
    return ends, blanks, position


NATIVE_RECORDS: Callable[[bytes, int, int, int], tuple[list[int], list[int], int]] | None = native_function(
    "_csv_records", "records")
records: Callable[[bytes, int, int, int], tuple[list[int], list[int], int]] = NATIVE_RECORDS or regex_records
