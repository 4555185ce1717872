"""Parquet files of the Defender XDR / Sentinel Device* tables (exports landed in a data lake), read column-wise.

The rows are the Defender / Sentinel rows the ``mde`` adapter reads (same column names: ``Timestamp`` or
``TimeGenerated``, ``Type``, ``ActionType``, ``RemoteIP``, ``ProcessCommandLine``, ``AdditionalFields`` ...);
each row that is built goes through :func:`imds_detect.sources.mde.event_from_row`, so the tables, actions,
skips and events are exactly those of the other Defender exports.

Reading (pyarrow, an optional dependency: ``pip install 'imds-detect[parquet]'``):

- Record batches of at most :data:`BATCH_ROWS` rows, column chunks read through a small buffer: memory
  follows the batch size (and a row group's dictionaries), never the file size.
- Parquet needs random access (its metadata is at the end). A file named on the command line is opened by
  its path; a stream that is neither seekable nor that file (stdin, a gzipped Parquet file) is first
  copied to an anonymous temporary file, with a warning giving the size.
- The column prefilter (off with ``--no-prefilter``): for each batch, every value of every column that
  is not a time (strings, numbers, the leaves of struct / map / list columns such as a struct
  ``AdditionalFields``) is tested with the knowledge-derived gate of
  :func:`imds_detect.knowledge.indicators.could_mention_metadata` (strong literal / encoding / folding /
  base64 patterns, and numeric host shapes confirmed by ``numbers_name_metadata``), one pattern scan per
  column over its distinct values joined by newlines. Only rows where some value passes become Python dicts and
  events; the gate is a necessary condition of every detection, so the alerts are the same as without
  it. Rows it clears are counted as records read but not parsed (like cleared JSON lines, their skips,
  e.g. rows of other tables, are not reported).
- Timestamps: Parquet timestamp columns (any unit, with or without a time zone; without one they are
  taken as UTC, as Defender and Sentinel store UTC) become ISO 8601 text for ``event_from_row``; string
  timestamps are passed as they are. Nulls are absent values.
- Positions: ``SourceRef.line`` is the 1-based row number in the file, ``record`` the 0-based one.

Unusable files do not raise: a missing pyarrow or a file whose Parquet metadata cannot be read (truncated,
corrupt, not Parquet under ``--format parquet``) is reported as one skipped record naming the problem, so
the file shows as unusable in the summary. A read error after some rows were scanned stops the file as
*partial* (an ``OSError`` for the engine), like a truncated gzip.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from ..engine.inputs import read_up_to
from ..knowledge.indicators import PatternSet, numbers_name_metadata, numeric_patterns, strong_patterns
from ..model import Event
from .base import CountingSource, ReadCounts, Skip, SkipSink
from .mde import RAW_LIMIT, event_from_row
from .timeparse import parse_timestamp

__all__ = ["BATCH_ROWS", "FORMAT", "MAGIC", "PARQUET_ADAPTER", "ParquetAdapter", "candidate_rows"]

FORMAT = "parquet"
MAGIC = b"PAR1"
BATCH_ROWS = 16384  # about 30 MB of decoded Defender rows
READ_BUFFER = 1 << 20
TIME_COLUMNS = ("Timestamp", "TimeGenerated")  # in event_from_row's order of preference
INSTALL_HINT = "reading Parquet needs pyarrow: pip install 'imds-detect[parquet]'"
_COMPARE_BYTES = 65536  # how much of a named file must equal the stream to read the file by its path
_SPOOL_CHUNK = 1 << 20
_STRONG, _NUMERIC = 0, 1
_LEARN_ROWS = 1024  # a leaf is judged mostly unique (not worth deduplicating) from a batch this long

log = logging.getLogger(__name__)


class _Arrow:
    """pyarrow's modules, imported on first use (pyarrow is optional)."""

    __slots__ = ("pa", "pc", "pq")

    def __init__(self, pa: Any, pc: Any, pq: Any) -> None:
        self.pa, self.pc, self.pq = pa, pc, pq


def _arrow() -> _Arrow | None:
    """pyarrow, or None when it is not installed (not cached, so that tests can hide it)."""
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.compute  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError:
        return None
    return _Arrow(pyarrow, pyarrow.compute, pyarrow.parquet)


# --------------------------------------------------------------------------- the column prefilter


class _Gate:
    """`could_mention_metadata` over all values of a column at once."""

    def __init__(self, use_hyperscan: bool = True) -> None:
        self.patterns = PatternSet((strong_patterns(), numeric_patterns()), use_hyperscan)

    def passing(self, arrow: _Arrow, leaf: Any, distinct: bool = True) -> tuple[list[int], int | None]:
        """Indices (ascending) of the values of `leaf` that could mention a metadata endpoint, and the
        number of distinct values when each distinct value was tested once (else None).

        With `distinct`, each distinct value is tested once (Defender columns repeat: paths, hashes, SIDs,
        addresses); without, every value is (cheaper for columns of mostly unique values).
        """
        pa, pc = arrow.pa, arrow.pc
        if len(leaf) == 0 or leaf.null_count == len(leaf):
            return [], None
        if not distinct and not pa.types.is_dictionary(leaf.type):
            return self.distinct_passing(arrow, _as_binary(arrow, leaf)), None
        encoded = leaf if pa.types.is_dictionary(leaf.type) else _dictionary_encode(arrow, leaf)
        chosen = self.distinct_passing(arrow, _as_binary(arrow, encoded.dictionary))
        if not chosen:
            return [], len(encoded.dictionary)
        mask = pc.is_in(encoded.indices, value_set=pa.array(chosen, encoded.indices.type))
        indices: list[int] = pc.indices_nonzero(mask).to_pylist()
        return indices, len(encoded.dictionary)

    def distinct_passing(self, arrow: _Arrow, values: Any) -> list[int]:
        """Indices (ascending) of the values of a binary array that pass the gate."""
        pa, pc = arrow.pa, arrow.pc
        # Each value (null: empty) is followed by two newlines: a match ends inside its own value or, for
        # the numeric shapes (which need a non-digit after the digits), on the first newline, never in the
        # next value (the `re` engine reports non-overlapping matches, so the second newline is free).
        newline = pa.scalar(b"\n\n", pa.large_binary())
        joined = pc.binary_join_element_wise(values, pa.scalar(b"", pa.large_binary()), newline,
                                             null_handling="replace", null_replacement=b"")
        _, offsets_buffer, data_buffer = joined.buffers()
        words = memoryview(offsets_buffer)
        offsets = words[:len(words) // 8 * 8].cast("q")[joined.offset:joined.offset + len(joined) + 1]
        base = offsets[0]
        data = memoryview(data_buffer)[base:offsets[-1]].tobytes()
        hits: set[int] = set()
        numeric: set[int] = set()
        index, start, stop = -1, 0, 0  # the value of the previous match: matches come mostly in order
        for group, end in self.patterns.matches(data):
            position = base + end - 1
            if not start <= position < stop:
                index = bisect_right(offsets, position) - 1
                start, stop = offsets[index], offsets[index + 1]
            (hits if group == _STRONG else numeric).add(index)
        for index in numeric - hits:
            if numbers_name_metadata(data[offsets[index] - base:offsets[index + 1] - base]):
                hits.add(index)
        return sorted(hits)


def _dictionary_encode(arrow: _Arrow, leaf: Any) -> Any:
    try:
        return arrow.pc.dictionary_encode(leaf)
    except arrow.pa.ArrowNotImplementedError:  # a type without a hash kernel: encode its text
        return arrow.pc.dictionary_encode(_as_binary(arrow, leaf))


def _leaves(arrow: _Arrow, array: Any, parents: Any = None) -> Iterator[tuple[Any, Any]]:
    """(values, row index of each value or None when aligned with the rows) of every non-temporal leaf
    of `array`: the array itself, or the fields of a struct, the items of a list or the keys and values
    of a map (recursively)."""
    pa, pc = arrow.pa, arrow.pc
    kind = array.type
    types = pa.types
    if types.is_struct(kind):
        for child in array.flatten():  # children carry the struct's nulls
            yield from _leaves(arrow, child, parents)
        return
    if types.is_map(kind):
        array = array.cast(pa.list_(pa.struct([kind.key_field, kind.item_field])))
        kind = array.type
    if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
        owners = pc.list_parent_indices(array)
        yield from _leaves(arrow, pc.list_flatten(array), owners if parents is None else pc.take(parents, owners))
        return
    value_kind = kind.value_type if types.is_dictionary(kind) else kind
    if types.is_temporal(value_kind) or types.is_null(value_kind):
        return  # a time cannot name a metadata endpoint
    if types.is_dictionary(kind) and (types.is_struct(value_kind) or types.is_list(value_kind)):
        yield from _leaves(arrow, array.dictionary_decode(), parents)
        return
    yield array, parents


def _as_binary(arrow: _Arrow, array: Any) -> Any:
    """The values of a flat array as large_binary (text as UTF-8, numbers and others as their text)."""
    pa = arrow.pa
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return array.cast(pa.large_binary())
    try:
        return array.cast(pa.large_string()).cast(pa.large_binary())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # an exotic type: its Python text
        return pa.array([None if value is None else str(value).encode("utf-8", "surrogatepass")
                         for value in array.to_pylist()], pa.large_binary())


class _BatchFilter:
    """The candidate rows of the record batches of one file (one schema)."""

    def __init__(self, arrow: _Arrow, gate: _Gate) -> None:
        self.arrow = arrow
        self.gate = gate
        self.mostly_unique: set[tuple[int, int]] = set()  # leaves (column, leaf) not worth deduplicating

    def rows(self, batch: Any) -> list[int]:
        """Indices (ascending) of the rows of `batch` that could alert; the others cannot."""
        pa, pc = self.arrow.pa, self.arrow.pc
        rows: set[int] = set()
        for number, column in enumerate(batch.columns):
            for leaf_number, (leaf, parents) in enumerate(_leaves(self.arrow, column)):
                key = (number, leaf_number)
                passing, distinct = self.gate.passing(self.arrow, leaf, key not in self.mostly_unique)
                if distinct is not None and len(leaf) >= _LEARN_ROWS and distinct * 2 > len(leaf) \
                        and not pa.types.is_dictionary(leaf.type):
                    self.mostly_unique.add(key)
                if parents is None:
                    rows.update(passing)
                elif passing:
                    rows.update(pc.take(parents, pa.array(passing, pa.int64())).to_pylist())
        return sorted(rows)


def candidate_rows(batch: Any) -> list[int]:
    """Indices (ascending) of the rows of a record batch that could alert; the others cannot."""
    arrow = _arrow()
    if arrow is None:
        raise ImportError(INSTALL_HINT)
    return _BatchFilter(arrow, _default_gate()).rows(batch)


_GATE: list[_Gate] = []


def _default_gate() -> _Gate:
    if not _GATE:
        _GATE.append(_Gate())
    return _GATE[0]


# --------------------------------------------------------------------------- rows


def _converter(arrow: _Arrow, kind: Any) -> Callable[[Any], Any] | None:
    """How to turn a Python value of type `kind` (from ``to_pylist``) into what ``event_from_row`` reads:
    maps become dicts (``AdditionalFields`` as a map), bytes become text. None: as it is."""
    types = arrow.pa.types
    if types.is_binary(kind) or types.is_large_binary(kind) or types.is_fixed_size_binary(kind):
        return lambda value: value if value is None else value.decode("utf-8", "replace")
    if types.is_map(kind):
        key = _converter(arrow, kind.key_type) or _same
        item = _converter(arrow, kind.item_type) or _same
        return lambda value: value if value is None else {key(k): item(v) for k, v in value}
    if types.is_struct(kind):
        fields = {kind.field(i).name: _converter(arrow, kind.field(i).type) for i in range(kind.num_fields)}
        changed = {name: convert for name, convert in fields.items() if convert is not None}
        if not changed:
            return None
        return lambda value: value if value is None else {
            name: (changed[name](v) if name in changed else v) for name, v in value.items()}
    if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
        inner = _converter(arrow, kind.value_type)
        if inner is None:
            return None
        return lambda value: value if value is None else [inner(v) for v in value]
    if types.is_dictionary(kind):
        return _converter(arrow, kind.value_type)
    return None


def _microseconds(arrow: _Arrow, kind: Any) -> Any:
    """`kind` with nanosecond timestamps, times and durations (also nested) made microseconds."""
    pa = arrow.pa
    types = pa.types
    if getattr(kind, "unit", None) == "ns":
        if types.is_timestamp(kind):
            return pa.timestamp("us", tz=kind.tz)
        if types.is_time64(kind):
            return pa.time64("us")
        if types.is_duration(kind):
            return pa.duration("us")
    if types.is_struct(kind):
        return pa.struct([kind.field(i).with_type(_microseconds(arrow, kind.field(i).type))
                          for i in range(kind.num_fields)])
    if types.is_map(kind):
        return pa.map_(_microseconds(arrow, kind.key_type), _microseconds(arrow, kind.item_type))
    if types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_microseconds(arrow, kind.value_type)))
    if types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(_microseconds(arrow, kind.value_type)))
    return kind


def _same(value: Any) -> Any:
    return value


class _RowMaker:
    """Python dict rows of chosen record-batch rows, with timestamps as ISO 8601 UTC text."""

    def __init__(self, arrow: _Arrow, schema: Any) -> None:
        self.arrow = arrow
        self.names: list[str] = list(schema.names)
        self.times = [i for i, field in enumerate(schema) if arrow.pa.types.is_timestamp(field.type)]
        self.converters = [(field.name, convert) for field in schema
                           if (convert := _converter(arrow, field.type)) is not None]
        # other columns holding nanosecond values (nested timestamps, times, durations), which Python
        # cannot hold: cast to microseconds
        self.coarser = {i: coarse for i, field in enumerate(schema) if i not in self.times
                        and (coarse := _microseconds(arrow, field.type)) != field.type}

    def rows(self, batch: Any, indices: list[int] | None) -> list[dict[str, Any]]:
        pa, pc = self.arrow.pa, self.arrow.pc
        if indices is not None:
            batch = batch.take(pa.array(indices, pa.int64()))
        if self.times or self.coarser:
            columns = list(batch.columns)
            for i in self.times:
                utc = columns[i].cast(pa.timestamp(columns[i].type.unit, tz="UTC"))
                columns[i] = pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
            for i, coarse in self.coarser.items():
                columns[i] = columns[i].cast(coarse, safe=False)
            batch = pa.RecordBatch.from_arrays(columns, names=self.names)
        rows: list[dict[str, Any]] = batch.to_pylist()
        for name, convert in self.converters:
            for row in rows:
                row[name] = convert(row[name])
        return rows


def _raw(row: dict[str, Any]) -> str:
    """The row's non-null columns as JSON (the evidence shown with an alert)."""
    present = {name: value for name, value in row.items() if value is not None}
    data = orjson.dumps(present, default=str, option=orjson.OPT_NON_STR_KEYS)
    return data[:RAW_LIMIT * 4].decode("utf-8", "replace")[:RAW_LIMIT]


# --------------------------------------------------------------------------- newest time


def _newest(arrow: _Arrow, batch: Any) -> datetime | None:
    """The newest time of the batch's rows (``Timestamp``, else ``TimeGenerated``), whatever their table,
    so that relative windows do not depend on which rows the prefilter cleared."""
    pc = arrow.pc
    effective = None
    for name in TIME_COLUMNS:
        index = batch.schema.get_field_index(name)
        if index < 0:
            continue
        times = _as_times(arrow, batch.column(index))
        if times is not None:
            effective = times if effective is None else pc.coalesce(effective, times)
    if effective is None:
        return None
    newest = pc.max(effective).as_py()
    return newest if isinstance(newest, datetime) else None


def _as_times(arrow: _Arrow, column: Any) -> Any:
    """A timestamp[us, UTC] array of a time column (null where absent or unreadable), or None."""
    pa, pc = arrow.pa, arrow.pc
    kind = column.type
    target = pa.timestamp("us", tz="UTC")
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if pa.types.is_timestamp(kind):
        return column.cast(pa.timestamp(kind.unit, tz="UTC")).cast(target, safe=False)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    column = pc.if_else(pc.equal(pc.utf8_trim_whitespace(column), ""), pa.scalar(None, kind), column)
    try:  # ISO 8601 with a zone, the usual case: vectorised (fractions beyond microseconds truncated)
        return column.cast(pa.timestamp("ns", tz="UTC")).cast(target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    parsed: dict[str, datetime | None] = {}
    for value in pc.unique(column.drop_null()).to_pylist():  # other forms: the source's own parser
        try:
            parsed[value] = parse_timestamp(value)
        except (ValueError, OverflowError):
            parsed[value] = None
    return pa.array([None if value is None else parsed[value] for value in column.to_pylist()], target)


# --------------------------------------------------------------------------- opening


def _open_source(stream: BinaryIO, file: str) -> tuple[Any, Callable[[], None]]:
    """Something pyarrow can read with random access, and how to release it.

    A seekable stream is used as it is; else the named file when its content is the stream's (not
    gzipped); else the stream is spooled to a temporary file.
    """
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        return stream, _nothing
    head = read_up_to(stream, _COMPARE_BYTES)
    if file != "-" and os.path.isfile(file):
        try:
            with open(file, "rb") as handle:
                same = handle.read(len(head)) == head
        except OSError:
            same = False
        if same:
            return file, _nothing
    spool = tempfile.TemporaryFile(prefix="imds-detect-", suffix=".parquet")  # noqa: SIM115
    try:
        spool.write(head)
        shutil.copyfileobj(stream, spool, _SPOOL_CHUNK)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    log.warning("%s: Parquet needs random access; spooled %s of decompressed input to a temporary file",
                file, _size(size))
    return spool, spool.close


def _nothing() -> None:
    return None


def _size(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GiB"
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count} bytes"


# --------------------------------------------------------------------------- the adapter


class ParquetAdapter:
    """Defender / Sentinel Device* rows in Parquet files."""

    name = FORMAT
    shortcut = "column prefilter"  # the summary's name for what clears rows unbuilt

    def sniff(self, head: bytes) -> bool:
        """Parquet files start (and end) with ``PAR1``; recognised with or without pyarrow installed."""
        return head[:4] == MAGIC

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file in row order (every row built, no prefilter)."""
        yield from self.parse_counted(stream, file, on_skip, ReadCounts(exhaustive=True))

    def parse_counted(self, stream: BinaryIO, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
        """As :meth:`parse`, counting every row read; without `counts.exhaustive` only candidate rows are
        built (the column prefilter)."""
        arrow = _arrow()
        if arrow is None:
            counts.records += 1  # the file, so that the summary reports it unusable rather than empty
            on_skip(Skip("missing-dependency", file, 1, INSTALL_HINT))
            return
        source, release = _open_source(stream, file)
        try:
            yield from _events(arrow, source, file, on_skip, counts)
        finally:
            release()


def _events(arrow: _Arrow, source: Any, file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
    pa = arrow.pa
    try:
        # buffered column reads: less memory and, on local files, faster than pre-buffering a row group
        reader = arrow.pq.ParquetFile(source, buffer_size=READ_BUFFER, pre_buffer=False)
    except (pa.ArrowException, OSError, ValueError) as error:
        counts.records += 1
        on_skip(Skip("unreadable-parquet", file, 1,
                     f"cannot read the Parquet metadata (truncated or not Parquet?): {_short(error)}"))
        return
    rows = _RowMaker(arrow, reader.schema_arrow)
    prefilter = None if counts.exhaustive else _BatchFilter(arrow, _default_gate())
    first = 0  # 0-based index of the batch's first row in the file
    for group in range(reader.num_row_groups):  # one at a time: a damaged row group costs only its own rows
        group_start, group_rows = first, reader.metadata.row_group(group).num_rows
        batches = reader.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError, ValueError) as error:
                counts.records += 1
                on_skip(Skip("unreadable-row-group", file, first + 1,
                             f"row group {group} (rows {group_start + 1}-{group_start + group_rows}) unreadable from "
                             f"row {first + 1}: {_short(error)}; its other rows were read"))
                break
            if batch is None:
                break
            yield from _batch_events(arrow, batch, rows, prefilter, first, file, on_skip, counts)
            first += batch.num_rows
        first = group_start + group_rows


def _batch_events(arrow: _Arrow, batch: Any, rows: _RowMaker, prefilter: _BatchFilter | None, first: int,
                  file: str, on_skip: SkipSink, counts: ReadCounts) -> Iterator[Event]:
    """The events of one record batch whose first row is row `first` (0-based) of the file."""
    counts.records += batch.num_rows
    newest = _newest(arrow, batch)
    if newest is not None and (counts.newest is None or newest > counts.newest):
        counts.newest = newest
    indices = None if prefilter is None else prefilter.rows(batch)
    chosen = range(batch.num_rows) if indices is None else indices
    try:
        made: list[dict[str, Any] | None] = list(rows.rows(batch, indices))
    except UnicodeDecodeError:  # a damaged string page (bytes that are not UTF-8): row by row, bad rows skipped
        made = [_one_row(rows, batch, index) for index in chosen]
    for index, row in zip(chosen, made, strict=True):
        number = first + index
        if row is None:
            on_skip(Skip("invalid-utf8", file, number + 1, "a string column holds bytes that are not UTF-8"))
            continue
        event = event_from_row(row, file, number + 1, number, on_skip)
        if event is not None:
            event.source.format = FORMAT
            event.raw = _raw(row)
            yield event


def _one_row(rows: _RowMaker, batch: Any, index: int) -> dict[str, Any] | None:
    """Row `index` of `batch`, or None when one of its strings is not UTF-8."""
    try:
        return rows.rows(batch, [index])[0]
    except UnicodeDecodeError:
        return None


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:240]


PARQUET_ADAPTER = ParquetAdapter()
_CHECK: CountingSource = PARQUET_ADAPTER
