"""Reading line-oriented input in blocks of whole lines, with a bound on the length of one line.

A line longer than the limit (``limits.max_line_bytes``, or ``max_json_record_bytes`` for JSON lines) is never
kept whole: :func:`blocks` passes over the rest of it once it has grown past the limit, and :func:`bounded`
cuts it out of a block; either way it is given as one :data:`OVERSIZED` in its place, so that line numbers
stay exact and the reader reports it (file and line) instead of parsing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..accelerators import native_function

__all__ = ["OVERSIZED", "Oversized", "blocks", "bounded", "may_hold_long_lines", "newlines_before"]


@dataclass(frozen=True)
class Oversized:
    """A line longer than the line limit, in place of its bytes (they were not kept)."""


OVERSIZED = Oversized()


def blocks(stream: BinaryIO, size: int, limit: int | None = None,
           reads: Iterable[int] | None = None) -> Iterator[bytes | Oversized]:
    """Blocks of about `size` bytes that end at a line boundary (the last one may not). A line that grows past
    `limit` bytes without a newline is not kept: it is passed over and given as one `Oversized`.

    With `reads` (a regular file), read exactly those byte counts, one block per read (each up to its last newline),
    and stop after the last one without giving what follows that newline: the blocks of a range of a file that
    another reader reads on (see :func:`.parallel.range_blocks`).

    Reads go into one reused buffer, after the line begun in the previous read, and each block is copied out of
    it once (joining and cutting bytes objects copied every block twice, into fresh memory).
    """
    buffer = bytearray(size)
    have = 0  # bytes at the front of `buffer`: a line begun in the previous read (no newline in them)
    discarding = False  # passing over the rest of an over-long line
    planned = iter(reads) if reads is not None else None
    while True:
        if planned is not None:
            size = next(planned, 0)
            if not size:
                return
        if len(buffer) < have + size:
            buffer.extend(bytes(have + size - len(buffer)))
        with memoryview(buffer) as view:
            got = (read_into(stream, view[have: have + size]) if planned is None
                   else read_fully(stream, view[have: have + size]))
        if not got:
            if discarding:
                yield OVERSIZED
            elif have:
                yield bytes(buffer[:have])
            return
        end = have + got
        if discarding:  # (nothing is kept while discarding: have == 0)
            newline = buffer.find(b"\n", 0, end)
            if newline < 0:
                continue
            yield OVERSIZED
            discarding = False
            buffer[: end - newline - 1] = buffer[newline + 1: end]
            end -= newline + 1
        cut = buffer.rfind(b"\n", 0, end) + 1
        if cut:
            with memoryview(buffer) as view:
                block = bytes(view[:cut])
            yield block
        have = end - cut
        if limit is not None and have > limit:
            have, discarding = 0, True
        elif have:
            buffer[:have] = buffer[cut:end]


def read_into(stream: BinaryIO, view: memoryview) -> int:
    """Read up to ``len(view)`` bytes of `stream` into `view` (``readinto`` when the stream has it); the count."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def read_fully(stream: BinaryIO, view: memoryview) -> int:
    """Read ``len(view)`` bytes of `stream` into `view`, fewer only at its end; the count."""
    got = 0
    while got < len(view):
        count = read_into(stream, view[got:])
        if not count:
            break
        got += count
    return got


def may_hold_long_lines(block: bytes, limit: int, end: int | None = None) -> bool:
    """False when no line of ``block[:end]`` is longer than `limit` bytes (a newline in every half-window)."""
    end = len(block) if end is None else end
    if end <= limit:
        return False
    step = max(1, limit // 2)
    return any(block.find(b"\n", offset, offset + step) < 0 for offset in range(0, end - step, step))


def bounded(pieces: Iterable[bytes | Oversized], limit: int) -> Iterator[bytes | Oversized]:
    """`pieces` with every line longer than `limit` bytes (CR aside) given as an `Oversized` between the whole
    lines around it."""
    for block in pieces:
        if isinstance(block, Oversized) or not may_hold_long_lines(block, limit):
            yield block
            continue
        start = position = 0
        while position < len(block):
            end = block.find(b"\n", position)
            stop = len(block) if end < 0 else end
            if stop - position > limit and len(block[position:stop].rstrip(b"\r")) > limit:
                if position > start:
                    yield block[start:position]
                yield OVERSIZED
                start = stop + 1
            position = stop + 1
        if start < len(block):
            yield block[start:]


def _newlines_before(block: bytes, offsets: list[int]) -> tuple[list[int], int]:
    """The number of newlines in ``block[:offset]`` for each of the ascending `offsets`, and in the whole block."""
    counts: list[int] = []
    count = previous = 0
    for offset in offsets:
        count += block.count(b"\n", previous, offset)
        previous = offset
        counts.append(count)
    return counts, count + block.count(b"\n", previous)


# (the C version - ``imds_detect._line_numbers`` - jumps from newline to newline with memchr)
newlines_before: Callable[[bytes, list[int]], tuple[list[int], int]] = (
    native_function("_line_numbers", "newlines_before") or _newlines_before)
