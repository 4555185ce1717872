"""Time slicing: query a long window in slices, and split a slice whose answer was truncated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

MIN_SLICE = timedelta(seconds=1)


class Truncated(Exception):
    """The service cut the answer of a slice (row or size limit): the slice must be split."""


def slices(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive [a, b) slices of at most `size` covering [start, end)."""
    cursor = start
    while cursor < end:
        stop = min(end, cursor + size)
        yield cursor, stop
        cursor = stop


def fetch_sliced(fetch: Callable[[datetime, datetime], list[dict[str, Any]]], start: datetime, end: datetime,
                 size: timedelta, on_split: Callable[[datetime, datetime], None] = lambda a, b: None,
                 ) -> Iterator[dict[str, Any]]:
    """Rows of every slice in time order; a truncated slice is halved until it fits (or reaches MIN_SLICE)."""
    pending = list(slices(start, end, size))
    pending.reverse()
    while pending:
        low, high = pending.pop()
        try:
            rows = fetch(low, high)
        except Truncated:
            if high - low <= MIN_SLICE:
                raise
            on_split(low, high)
            middle = low + (high - low) / 2
            pending += [(middle, high), (low, middle)]
            continue
        yield from rows
