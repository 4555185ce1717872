"""`scan_with_spark`: the scan of `imds-detect scan --engine spark`, with the local engine's result.

Defender/Sentinel JSON-lines files (see inputs.py for the route of each file) are read by Spark as text
lines (``spark.read.text`` with ``lineSep="\\n"``, as the local engine splits lines; ``*.gz`` decompressed
by Hadoop). Three jobs, each a pass over the data in the JVM:

1. **Positions.** Every line gets ``monotonically_increasing_id()`` (partition index << 33 + row number
   in the partition) next to its file (``_metadata.file_path``) and split start
   (``_metadata.file_block_start``). Grouped by split: its lines, blank lines and smallest id. Rows of a
   split are consecutive and in file order within their partition, so a line's number is the lines of
   the file's earlier splits + (id - smallest id of its split) + 1. Record numbers (non-blank lines
   before it) come the same way from a second id taken after blank lines are dropped: its base per split
   is the split's partition << 33 + the non-blank lines of the splits before it in that partition. The
   counts of all lines and records come from here too. Cost: one pass that decodes nothing and sends
   one row per split to the driver.
2. **Candidates.** Lines that are not blank and pass the JVM prefilter (jvmfilter.py: edges, then one
   regex) go, with their numbers' ingredients, to Python (``mapPartitions``), where the local prefilter
   plans them again and the same adapter, detector and allowlist run (executor.py). Each partition sends
   back its alerts (before the window and severity filters), suppressed alerts (or only their times),
   counters and the first skips of each reason.
3. **Newest time** (only for a relative ``--since``/``--until`` with the prefilter on): the Timestamp
   values of each line (TimeGenerated when it has none), the greatest ``...Z`` value of each length and
   the other distinct values, parsed on the driver; the events parsed in step 2 count too.

The driver then merges in input order (files that only the local engine can read are scanned there, in
their place), replays skip warnings as the local engine prints them, and finishes with the same window,
severity filter and newest-first order (`Scanner.finish`).
"""

from __future__ import annotations

import copy
import functools
import importlib
import pickle
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..engine.inputs import InputFile
from ..engine.scan import READ_ERRORS, SKIP_MESSAGES_PER_REASON, Scanner, ScanOptions, ScanResult, _describe
from ..engine.summary import FileReport
from ..model import Alert, SourceRef
from ..sources.base import Skip
from ..sources.mde import FORMAT, MDE_ADAPTER
from ..sources.timeparse import parse_timestamp
from .executor import FilePart, Job, Part, Split, scan_partition
from .inputs import HadoopFiles, Input, Missing, collect_inputs, file_key, has_scheme
from .jvmfilter import jvm_patterns
from .output import write_alerts
from .session import get_session

ROW_BITS = 33  # monotonically_increasing_id: partition index << 33 | row number in the partition
OTHER_TIMES_LIMIT = 100_000  # distinct timestamps not of the `...Z` form parsed on the driver
TIMESTAMP_VALUE = r'"Timestamp"\s*:\s*"([^"\\]{1,64})"'  # as sources/mde.py reads them from a block
TIME_GENERATED_VALUE = r'"TimeGenerated"\s*:\s*"([^"\\]{1,64})"'


class SparkScanError(RuntimeError):
    """A Spark job failed (unreadable input, cluster problem); the message is one line."""


@dataclass
class SparkStats:
    """What the Spark side did, for the curious (the summary has the usual counters)."""

    spark_files: int = 0  # files read by Spark
    driver_files: int = 0  # files read by the local engine on the driver
    lines: int = 0  # lines Spark read (blank ones included)
    candidates: int = 0  # lines that passed the JVM prefilter and reached Python
    seconds: dict[str, float] = field(default_factory=dict)  # per job


@dataclass
class SparkScanResult(ScanResult):
    """A ScanResult with the Spark side's figures."""

    spark: SparkStats = field(default_factory=SparkStats)


@dataclass
class _FileTotals:
    lines: int = 0
    records: int = 0


def scan_with_spark(paths: list[str], options: ScanOptions, master: str | None = None, *,
                    jvm_prefilter: bool = True, write_to: tuple[str, str] | None = None) -> SparkScanResult:
    """Scan `paths` (local paths, or URIs of any Hadoop file system Spark is configured for) on Spark.

    Same alerts (order, numbers, reasons), suppressed alerts, summary counters and warnings as
    `imds_detect.scan(paths, options)` for the same files (see docs/SPARK.md for the differences).
    `master`: a Spark master URL; None reuses the active session or starts one (``spark.master`` from
    spark-submit, else ``local[*]``); a session started here is stopped at the end. Raises ValueError for
    what the Spark engine does not do (standard input, streaming alerts) and SparkScanError when a Spark
    job fails. `options.jobs` is ignored: Spark decides the parallelism. `write_to`: (URI, parquet|json):
    Spark also writes the alerts (and the suppressed ones shown) there (spark/output.py).
    """
    if options.on_alert is not None:
        raise ValueError("the Spark engine cannot stream alerts (on_alert)")
    if "-" in paths:
        raise ValueError("standard input ('-') cannot be scanned with the Spark engine")
    try:
        pickle.dumps(options.allowlist)
    except Exception as error:
        raise ValueError(f"the allowlist cannot be sent to Spark executors: {error}") from None
    spark, started = _run(lambda: get_session(master))  # no Java, a bad master URL: SparkScanError
    try:
        result = _SparkScan(spark, replace(options, jobs=1), jvm_prefilter).run(list(paths))
        if write_to is not None:
            uri, fmt = write_to
            _run(lambda: write_alerts(spark, result.alerts + result.suppressed, uri, fmt))
        return result
    finally:
        if started:
            spark.stop()


class _SparkScan:
    def __init__(self, spark: Any, options: ScanOptions, jvm_prefilter: bool = True) -> None:
        self.spark = spark
        self.options = options
        self.jvm_prefilter = jvm_prefilter
        self.scanner = Scanner(options)
        self.stats = SparkStats()
        self.hadoop: HadoopFiles | None = None

    def run(self, paths: list[str]) -> SparkScanResult:
        if any(has_scheme(path) for path in paths):
            self.hadoop = HadoopFiles(self.spark)
        inputs = collect_inputs(paths, self.options.format, self.hadoop)
        unique: dict[str, Input] = {}
        for item in inputs:
            if isinstance(item, Input) and item.route == "spark":
                unique.setdefault(item.key, item)
        parts: dict[str, FilePart] = {}
        totals: dict[str, _FileTotals] = {}
        engine = "off"
        if unique:
            totals, splits = self._positions(unique)
            found = self._candidates(unique, splits)
            engine = next((part.engine for part in found if part.engine != "off"), "python")
            parts = _by_file(found)
            if self.options.prefilter and self.scanner._needs_all_timestamps:
                self.scanner._see_time(self._newest(unique))
        self._merge(inputs, unique, parts, totals)
        if unique and self.options.prefilter:
            self.scanner.summary.prefilter_engine = f"spark+{engine}"
        result = self.scanner.finish()
        return SparkScanResult(result.alerts, result.summary, result.suppressed, spark=self.stats)

    # -- Spark jobs -------------------------------------------------------------------------------
    def _lines(self, unique: dict[str, Input]) -> Any:
        F = _functions()
        frame = self.spark.read.text([item.spark_path for item in unique.values()], lineSep="\n")
        return frame.select(F.col("value"), F.col("_metadata.file_path").alias("f"),
                            F.col("_metadata.file_block_start").alias("b"),
                            F.monotonically_increasing_id().alias("lid"))

    @staticmethod
    def _blank() -> Any:
        F = _functions()
        return (F.col("value") == "") | (F.col("value") == "\r")

    def _positions(self, unique: dict[str, Input]) -> tuple[dict[str, _FileTotals], dict[tuple[str, int], Split]]:
        """Job 1: per split, its lines, blank lines and first id; the numbering bases follow."""
        F = _functions()
        started = time.monotonic()
        rows = _run(lambda: self._lines(unique).groupBy("f", "b").agg(
            F.count(F.lit(1)).alias("lines"), F.sum(self._blank().cast("long")).alias("blanks"),
            F.min("lid").alias("lid0")).collect())
        self.stats.seconds["positions"] = round(time.monotonic() - started, 3)
        by_file: dict[str, list[tuple[int, int, int, int, str]]] = {}
        by_partition: dict[int, list[tuple[int, int, tuple[str, int]]]] = {}
        for row in rows:
            key = file_key(row["f"])
            if key not in unique:
                raise SparkScanError(f"Spark read a file that was not asked for: {row['f']}")
            by_file.setdefault(key, []).append((row["b"], row["lines"], row["blanks"], row["lid0"], row["f"]))
            by_partition.setdefault(row["lid0"] >> ROW_BITS, []).append(
                (row["lid0"], row["lines"] - row["blanks"], (row["f"], row["b"])))
        record_rows: dict[tuple[str, int], int] = {}
        for partition, members in by_partition.items():
            before = 0
            for _first, records, split_key in sorted(members):
                record_rows[split_key] = (partition << ROW_BITS) + before
                before += records
        totals: dict[str, _FileTotals] = {key: _FileTotals() for key in unique}
        splits: dict[tuple[str, int], Split] = {}
        for key, pieces in by_file.items():
            total = totals[key]
            for start, lines, blanks, first_row, path in sorted(pieces):
                splits[(path, start)] = Split(unique[key].name, total.lines, first_row, total.records,
                                              record_rows[(path, start)])
                total.lines += lines
                total.records += lines - blanks
        self.stats.spark_files = len(unique)
        self.stats.lines = sum(total.lines for total in totals.values())
        return totals, splits

    def _candidates(self, unique: dict[str, Input], splits: dict[tuple[str, int], Split]) -> list[Part]:
        """Job 2: candidate lines to Python, where the local prefilter, adapter and detector run."""
        F = _functions()
        started = time.monotonic()
        lines = self._lines(unique).filter(~self._blank()).withColumn("rid", F.monotonically_increasing_id())
        if self.options.prefilter and self.jvm_prefilter:
            patterns = jvm_patterns(MDE_ADAPTER.free_text_keys, MDE_ADAPTER.record_edges)
            value = F.col("value")
            suspect = ~value.startswith(patterns.first_edge) | ~(
                value.endswith(patterns.last_edge) | value.endswith(patterns.last_edge + "\r"))
            lines = lines.filter(suspect | value.rlike(patterns.candidate))
        job = Job(splits, self.options.allowlist, MDE_ADAPTER.name, self.options.prefilter,
                  self.options.show_suppressed)
        rows = lines.select("f", "b", "lid", "rid", F.col("value").cast("binary"))
        parts: list[Part] = _run(lambda: rows.rdd.mapPartitions(functools.partial(scan_partition, job)).collect())
        self.stats.candidates = sum(part.candidates for part in parts)
        self.stats.seconds["candidates"] = round(time.monotonic() - started, 3)
        return parts

    def _newest(self, unique: dict[str, Input]) -> datetime | None:
        """Job 3: the newest Timestamp (else TimeGenerated) value of any line, as mde.newest_in_block reads
        them: the greatest `...Z` value of each length and every other distinct value are parsed."""
        F = _functions()
        started = time.monotonic()
        stamps = F.regexp_extract_all(F.col("value"), F.lit(TIMESTAMP_VALUE), F.lit(1))
        generated = F.regexp_extract_all(F.col("value"), F.lit(TIME_GENERATED_VALUE), F.lit(1))
        values = self._lines(unique).select(
            F.explode(F.when(F.size(stamps) > 0, stamps).otherwise(generated)).alias("t"))
        zulu = F.col("t").endswith("Z") & (F.substring(F.col("t"), 5, 1) == "-")
        greatest = values.filter(zulu).groupBy(F.length("t").alias("size")).agg(F.max("t").alias("t"))
        texts = [row["t"] for row in _run(lambda: greatest.collect())]
        others = _run(lambda: values.filter(~zulu).distinct().limit(OTHER_TIMES_LIMIT + 1).collect())
        texts += [row[0] for row in others]
        if len(others) > OTHER_TIMES_LIMIT:  # too many to parse here: let Spark order them
            latest = _run(lambda: values.filter(~zulu).agg(
                F.max_by("t", F.expr("try_cast(t AS TIMESTAMP)"))).collect())
            texts += [row[0] for row in latest if row[0] is not None]
        newest: datetime | None = None
        for text in texts:
            try:
                moment = parse_timestamp(text)
            except (ValueError, OverflowError):
                continue
            if newest is None or moment > newest:
                newest = moment
        self.stats.seconds["newest"] = round(time.monotonic() - started, 3)
        return newest

    # -- merging ----------------------------------------------------------------------------------
    def _merge(self, inputs: list[Input | Missing], unique: dict[str, Input], parts: dict[str, FilePart],
               totals: dict[str, _FileTotals]) -> None:
        """Absorb every input in order, as the local scan would have produced it."""
        scanner = self.scanner
        for item in inputs:
            if isinstance(item, Missing):
                scanner.summary.missing.append((item.path, item.reason))
                self.options.warn(f"{item.path}: {item.reason}")
            elif item.route == "driver":
                self.stats.driver_files += 1
                self._scan_on_driver(item)
            else:
                first = unique[item.key]
                part = parts.get(first.name, FilePart())
                if item is not first:
                    part = _renamed(part, item.name)
                self._absorb(item.name, part, totals[item.key])

    def _absorb(self, name: str, part: FilePart, total: _FileTotals) -> None:
        scanner = self.scanner
        summary = scanner.summary
        report = FileReport(name, FORMAT)
        summary.files.append(report)
        scanner.alerts.extend(part.alerts)
        scanner.suppressed.extend(part.suppressed)
        for entry, times in part.suppressed_times.items():
            scanner._suppressed_times.setdefault(entry, array("d")).extend(times)
        scanner._see_time(part.newest)
        summary.records += total.records
        summary.parsed += part.parsed
        summary.prefiltered += total.records - part.parsed
        summary.skipped.update(part.skipped)
        shown: Counter[str] = Counter()
        for skip in part.notes:  # sorted by line, at most the first few of each reason
            scanner._announce_skip(skip)
            shown[skip.reason] += 1
        for reason, count in part.skipped.items():
            key = (name, reason)
            scanner._skip_shown[key] = scanner._skip_shown.get(key, 0) + count - shown[reason]
        scanner._file_done(name, FORMAT, report, total.records, sum(part.skipped.values()))

    def _scan_on_driver(self, item: Input) -> None:
        """A file only the local engine reads: scanned here, in its place in the input order."""
        if not item.remote:
            self.scanner.scan_file(InputFile(item.name))
            return
        assert self.hadoop is not None
        scanner = self.scanner
        report = FileReport(item.name)
        scanner.summary.files.append(report)
        try:
            stream, head = _open_decompressed(self.hadoop, item.remote)
        except (*READ_ERRORS, Exception) as error:
            detail = _describe(error) if isinstance(error, READ_ERRORS) else str(error).splitlines()[0]
            report.status, report.detail = "error", f"cannot open: {detail}"
            self.options.warn(f"{item.name}: cannot open: {detail}")
            return
        with stream:
            scanner._scan_stream(item.name, stream, head, report)


def _open_decompressed(hadoop: HadoopFiles, uri: str) -> tuple[Any, bytes]:
    """A Hadoop file as InputFile.open opens a local one: decompressed when it starts with the gzip magic."""
    import gzip

    from ..engine.inputs import GZIP_MAGIC, HEAD_SIZE, Prefixed, read_up_to

    raw = hadoop.open_uri(uri)
    magic = raw.read(2)
    stream: Any = Prefixed(magic, raw)
    if magic == GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    head = read_up_to(stream, HEAD_SIZE)
    return Prefixed(head, stream), head


def _by_file(found: list[Part]) -> dict[str, FilePart]:
    """The partitions' split parts merged per file name; skip notes cut to the first ones of each reason."""
    merged: dict[str, FilePart] = {}
    for part in found:
        for (name, _start), piece in part.files.items():
            into = merged.setdefault(name, FilePart())
            into.alerts.extend(piece.alerts)
            into.suppressed.extend(piece.suppressed)
            for entry, times in piece.suppressed_times.items():
                into.suppressed_times.setdefault(entry, array("d")).extend(times)
            if piece.newest is not None and (into.newest is None or piece.newest > into.newest):
                into.newest = piece.newest
            into.parsed += piece.parsed
            into.skipped.update(piece.skipped)
            into.notes.extend(piece.notes)
    for into in merged.values():
        kept: Counter[str] = Counter()
        notes: list[Skip] = []
        for skip in sorted(into.notes, key=lambda skip: skip.line):
            kept[skip.reason] += 1
            if kept[skip.reason] <= SKIP_MESSAGES_PER_REASON + 1:
                notes.append(skip)
        into.notes = notes
    return merged


def _renamed(part: FilePart, name: str) -> FilePart:
    """A copy of a file's part for another name of the same file (the file given twice)."""

    def moved(alerts: Iterable[Alert]) -> list[Alert]:
        out = []
        for alert in alerts:
            alert = copy.copy(alert)
            alert.source = SourceRef(alert.source.format, name, alert.source.line, alert.source.record)
            out.append(alert)
        return out

    return FilePart(moved(part.alerts), moved(part.suppressed), part.suppressed_times, part.newest, part.parsed,
                    Counter(part.skipped), [replace(skip, file=name) for skip in part.notes])


def _functions() -> Any:
    """pyspark.sql.functions (imported when used: pyspark is an optional dependency)."""
    return importlib.import_module("pyspark.sql.functions")


def _run(action: Any) -> Any:
    """Run a Spark action; a failure becomes a SparkScanError with its first meaningful line."""
    try:
        return action()
    except SparkScanError:
        raise
    except Exception as error:
        if type(error).__module__.startswith(("pyspark", "py4j")):
            raise SparkScanError(_first_line(error)) from error
        raise


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "Exception:" in line or "Error:" in line:
            return line[:500]
    return (lines[0] if lines else type(error).__name__)[:500]
