"""The C record cutter of CSV exports (``imds_detect._csv_records``) against the regular expression it replaces.

:func:`imds_detect.sources.csv_records.regex_records` is the reference: on generated blocks (every branch of a
plain record and every way to break one), on mutated slices of a real Defender export and on hostile blocks, the C
cutter must give the same record ends, the same blank lines and the same stop offset, for any start at a record
and any end (inside a record too).
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imds_detect.sources.csv_records import NATIVE_RECORDS, records, regex_records

ROOT = Path(__file__).resolve().parent.parent
DEFENDER = ROOT / "bench-data" / "defender-1GB.csv"  # (git-ignored: made by benchmarks/, absent in a fresh clone)

native = pytest.mark.skipif(NATIVE_RECORDS is None, reason="the C extension imds_detect._csv_records is not built "
                                                           "(no compiler at install, or IMDS_DETECT_PURE_PYTHON set)")

Result = tuple[list[int], list[int], int]


def assert_same_records(block: bytes, start: int, end: int, width: int) -> Result:
    """The C cutter's answer for ``block[start:end]`` is the regular expression's; returns it."""
    assert NATIVE_RECORDS is not None
    expected = regex_records(block, start, end, width)
    assert NATIVE_RECORDS(block, start, end, width) == expected
    return expected


# -- generated blocks -------------------------------------------------------------------------------------------
UNQUOTED_PIECES = [b"a", b"xyz", b" ", b"\t", b"1.5", b"\x00", b"\xc3\xa9", b"\xff", b"'", b"\\"]
QUOTED_PIECES = [b"a", b'""', b'""', b"\n", b"\r", b"\r\n", b",", b" ", b"\x00", b"\xc3\xa9", b"\xff\xfe", b"{",
                 b'\\""']
BROKEN_FIELDS = [
    b'a"b', b'a"', b'"a"b', b'"a" ', b'""x', b'"abc', b'"', b'"a""', b"a\rb", b"\r", b"a\r", b'"a"\r', b'x""',
]
TERMINATORS = [b"\n", b"\r\n"]
BAD_TERMINATORS = [b"\r", b"\r\r\n", b"", b'"\n', b"\n\r", b" \n"]
JUNK_BYTES = [b'"', b",", b"\r", b"\n", b"a", b"\x00", b"\xff", b'""']

unquoted_fields = st.lists(st.sampled_from(UNQUOTED_PIECES), max_size=4).map(b"".join)
quoted_fields = st.lists(st.sampled_from(QUOTED_PIECES), max_size=5).map(lambda pieces: b'"' + b"".join(pieces) + b'"')
fields = st.one_of(unquoted_fields, quoted_fields)
junk = st.lists(st.sampled_from(JUNK_BYTES), min_size=1, max_size=8).map(b"".join)


@st.composite
def chunks(draw: st.DrawFn, width: int) -> bytes:
    """A blank line, junk, a plain record, or a record broken in one way (a field, the count, the terminator)."""
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return draw(st.sampled_from([b"\n", b"\r\n"]))
    if kind == 1:
        return draw(junk)
    count = draw(st.integers(max(0, width - 2), width + 2)) if kind == 2 else width
    record = [draw(fields) for _ in range(count)]
    if kind == 3 and record:
        record[draw(st.integers(0, len(record) - 1))] = draw(st.sampled_from(BROKEN_FIELDS))
    terminator = draw(st.sampled_from(BAD_TERMINATORS if kind == 4 else TERMINATORS))
    return b",".join(record) + terminator


@st.composite
def cuts(draw: st.DrawFn) -> tuple[bytes, int, int, int]:
    """(block, start at a chunk's start, end anywhere from there, width 1..8)."""
    width = draw(st.integers(1, 8))
    parts = draw(st.lists(chunks(width), max_size=20))
    starts, offset = [0], 0
    for part in parts:
        offset += len(part)
        starts.append(offset)
    block = b"".join(parts)
    start = draw(st.sampled_from(starts[: max(1, len(starts) // 4)]))  # mostly early: long runs to cut
    end = draw(st.one_of(st.just(len(block)), st.sampled_from(starts[starts.index(start):]),
                         st.integers(start, len(block))))
    return block, start, end, width


@native
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=cuts())
def test_generated_blocks_cut_alike(cut: tuple[bytes, int, int, int]) -> None:
    block, start, end, width = cut
    ends, blanks, stop = assert_same_records(block, start, end, width)
    assert start <= stop <= end and ends == sorted(set(ends)) and (not ends or ends[-1] == stop)
    assert all(block[ends[index] - 1:ends[index]] == b"\n" for index in blanks)


@native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 8), parts=st.lists(st.one_of(st.sampled_from(JUNK_BYTES), fields), max_size=40),
       data=st.data())
def test_random_bytes_cut_alike(width: int, parts: list[bytes], data: st.DataObject) -> None:
    """Blocks with no record structure at all: quotes, commas, CR and LF anywhere."""
    block = b"".join(parts)
    start = data.draw(st.integers(0, len(block)))
    assert_same_records(block, start, data.draw(st.integers(start, len(block))), width)


# -- a real Defender export, mutated ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def defender_sample() -> bytes:
    if not DEFENDER.is_file():
        pytest.skip(f"no Defender benchmark export at {DEFENDER} (benchmarks/ generates it)")
    with DEFENDER.open("rb") as file:
        return file.read(2_000_000)


def header_width(sample: bytes) -> int:
    return sample[:sample.index(b"\n")].count(b",") + 1


@native
def test_defender_export_is_cut_whole() -> None:
    """Guard against a vacuous comparison: the real export is plain records to its last whole line."""
    sample = defender_sample()
    start, last = sample.index(b"\n") + 1, sample.rindex(b"\n") + 1
    ends, blanks, stop = assert_same_records(sample, start, len(sample), header_width(sample))
    assert len(ends) > 1000 and blanks == [] and stop == ends[-1] == last


@native
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_defender_slices_cut_alike(data: st.DataObject) -> None:
    sample = defender_sample()
    width = header_width(sample)
    offset = sample.index(b"\n", data.draw(st.integers(0, len(sample) - 100_000))) + 1
    block = bytearray(sample[offset:offset + data.draw(st.integers(0, 60_000))])
    for _ in range(data.draw(st.integers(0, 6))):
        at = data.draw(st.integers(0, len(block)))
        byte = data.draw(st.sampled_from([b'"', b",", b"\r", b"\n", b"\x00", b"\xff", b""]))
        if data.draw(st.booleans()) and at < len(block):
            block[at:at + 1] = byte  # a flip (or a deletion)
        else:
            block[at:at] = byte or b'""'
    starts = [0] + [index + 1 for index, value in enumerate(block[:2000]) if value == ord("\n")]
    start = data.draw(st.sampled_from(starts))
    end = data.draw(st.one_of(st.just(len(block)), st.integers(start, len(block))))
    assert_same_records(bytes(block), start, end, data.draw(st.sampled_from([width, width, width - 1, width + 1])))


# -- edge cases, with the answer written out (both implementations) ---------------------------------------------
CASES = [
    (b"", 0, 0, 1, ([], [], 0)),
    (b"a\n", 1, 1, 1, ([], [], 1)),
    (b"a\n", 0, 0, 1, ([], [], 0)),
    (b"\n", 0, 1, 1, ([1], [0], 1)),  # blank first: with width 1, LF alone is a blank line, not an empty field
    (b'""\n', 0, 3, 1, ([3], [], 3)),  # one empty quoted field
    (b"\r\n\n", 0, 3, 1, ([2, 3], [0, 1], 3)),
    (b"a,b\r\n", 0, 4, 2, ([], [], 0)),  # the end cuts CR LF
    (b"a,b\r\n", 0, 5, 2, ([5], [], 5)),
    (b"\r\n", 0, 1, 1, ([], [], 0)),
    (b"a,b\n", 0, 3, 2, ([], [], 0)),  # no terminator before the end
    (b'"a"b,c\n', 0, 7, 2, ([], [], 0)),  # text after a closing quote
    (b'a"b,c\n', 0, 6, 2, ([], [], 0)),  # a quote in an unquoted field
    (b"a\rb,c\n", 0, 6, 2, ([], [], 0)),  # a lone CR
    (b"a,b\r\r\n", 0, 6, 2, ([], [], 0)),
    (b"a,b\n", 0, 4, 1, ([], [], 0)),  # too many fields
    (b"a,b\n", 0, 4, 3, ([], [], 0)),  # too few
    (b",\n,,\n", 0, 5, 2, ([2], [], 2)),
    (b'"a""b","x\r\ny\n",\n', 0, 16, 3, ([16], [], 16)),  # doubled quote, CR LF and LF quoted, an empty last field
    (b'"a""\n', 0, 5, 1, ([], [], 0)),  # `a"` then no closing quote
    (b'"\x00\xff",\xc3\xa9\n\n"', 0, 10, 2, ([8, 9], [1], 9)),
    (b'x\n"unclosed\n', 0, 12, 1, ([2], [], 2)),
    (b"a\nb\n", 2, 4, 1, ([4], [], 4)),
]


@pytest.mark.parametrize(("block", "start", "end", "width", "expected"), CASES)
def test_edge_cases(block: bytes, start: int, end: int, width: int, expected: Result) -> None:
    assert regex_records(block, start, end, width) == expected
    if NATIVE_RECORDS is not None:
        assert NATIVE_RECORDS(block, start, end, width) == expected


@pytest.mark.parametrize(("start", "end", "width"), [
    (0, 2, 0), (0, 2, -1), (-1, 2, 1), (2, 1, 1), (0, 3, 1), (3, 3, 1), (0, -1, 1), (2**70, 2**70, 1), (0, 2**70, 1),
    (-(2**70), 0, 1),
])
def test_bad_arguments_are_refused(start: int, end: int, width: int) -> None:
    implementations = [regex_records] + ([NATIVE_RECORDS] if NATIVE_RECORDS is not None else [])
    for implementation in implementations:
        with pytest.raises(ValueError, match="width must be at least 1"):
            implementation(b"a\n", start, end, width)


@native
def test_any_buffer_is_read() -> None:
    assert NATIVE_RECORDS is not None
    block = b'"a",b\n\r\nc,"d\n"\n'
    expected = regex_records(block, 0, len(block), 2)
    assert expected == ([6, 8, 15], [1], 15)
    cut: Any = NATIVE_RECORDS  # (typed for bytes; any contiguous buffer is read)
    assert cut(bytearray(block), 0, len(block), 2) == expected
    assert cut(memoryview(block), 0, len(block), 2) == expected


# -- hostile blocks: linear time, no read past the end ----------------------------------------------------------
@native
@pytest.mark.parametrize(("block", "width", "expected"), [
    (b'"' + b"a" * 1_000_000, 1, ([], [], 0)),  # 1 MB inside an unclosed quote
    (b'"' + b"a\n" * 500_000, 3, ([], [], 0)),
    (b"," * 1_000_000, 2, ([], [], 0)),
    (b"," * 1_000_000 + b"\n", 1_000_001, ([1_000_001], [], 1_000_001)),
    (b'"' * 1_000_000 + b"\n", 1, ([1_000_001], [], 1_000_001)),  # one field of doubled quotes
    (b'"' + b'""' * 500_000, 1, ([], [], 0)),
    (b"\r" * 1_000_000, 1, ([], [], 0)),
    (b"\n" * 1_000_000, 4, (list(range(1, 1_000_001)), list(range(1_000_000)), 1_000_000)),
], ids=["unclosed-quote", "unclosed-quote-lines", "commas", "one-wide-record", "quotes", "doubled-unclosed", "crs",
        "blank-lines"])
def test_hostile_blocks_are_cut_promptly(block: bytes, width: int, expected: Result) -> None:
    assert NATIVE_RECORDS is not None
    assert NATIVE_RECORDS(block, 0, len(block), width) == expected
    shorter = len(block) - 1  # (and with the last byte left out)
    assert NATIVE_RECORDS(block, 0, shorter, width) == regex_records(block, 0, shorter, width)


@native
def test_end_is_never_read_past() -> None:
    """The byte at `end` would complete the record: it must not be looked at (a quote, a LF after CR, a LF)."""
    assert NATIVE_RECORDS is not None
    for block, width in [(b'"a""', 1), (b'"a"\r\n', 1), (b"a,b\r\n", 2), (b'"a",""', 2), (b'"a\n"\n', 1)]:
        for end in range(len(block)):
            assert NATIVE_RECORDS(block, 0, end, width) == regex_records(block, 0, end, width) == ([], [], 0)
        assert NATIVE_RECORDS(block, 0, len(block), width) == regex_records(block, 0, len(block), width)


def test_pure_python_switch_keeps_the_regular_expression() -> None:
    code = "from imds_detect.sources import csv_records as c; print('regex' if c.records is c.regex_records else 'C')"
    environment = {**os.environ, "IMDS_DETECT_PURE_PYTHON": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "regex"
    assert records is (NATIVE_RECORDS or regex_records)
