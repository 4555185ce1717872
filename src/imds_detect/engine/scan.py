"""The scan: inputs -> records -> events -> alerts, with the prefilter on line-oriented formats."""

from __future__ import annotations

import bisect
import gzip
import threading
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, cast

from .. import limits as _limits
from ..cloud.collector import CloudCollector
from ..cloud.correlate import correlate
from ..cloud.incident import Incident
from ..cloud.settings import CloudSettings
from ..detect.allowlist import Allowlist, default_entries
from ..detect.detector import Detector
from ..detect.probing import fold_probing
from ..limits import Limits
from ..model import Alert, Event, Severity
from ..sources.base import CountingSource, LineSource, ReadCounts, SourceAdapter
from ..sources.base import Skip as SkipRecord
from ..sources.mde import event_from_row
from ..sources.registry import BY_NAME, detect_format
from .follow import POLL_SECONDS, FollowStream
from .inputs import GZIP_MAGIC, HEAD_SIZE, UTF8_BOM, InputFile, discover, read_error
from .interrupt import ScanInterrupted, interruptible
from .interrupt import check as check_stop
from .lines import Oversized, bounded, newlines_before
from .lines import blocks as line_blocks
from .prefilter import BlockPlan, Prefilter, for_adapter
from .summary import FileReport, Summary
from .window import TimeBound, Window

BLOCK_SIZE = 4 * 1024 * 1024
CHUNK_BYTES = 64 * 1024 * 1024  # --jobs: a large line-oriented file is split into ranges of about this size
SKIP_MESSAGES_PER_REASON = 5
PRUNE_START = 4096  # kept alerts (or suppressed times of one entry) before the first look for ones outside the window
READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, zlib.error)


@dataclass
class ScanOptions:
    """Everything that shapes a scan (the CLI fills it from flags and the config file)."""

    format: str = "auto"
    allowlist: Allowlist = field(default_factory=lambda: Allowlist(default_entries()))
    min_severity: Severity = Severity.LOW
    since: TimeBound | None = None
    until: TimeBound | None = None
    prefilter: bool = True
    show_suppressed: bool = False
    warn: Callable[[str], None] = lambda message: None
    # Streaming: when set, each alert that passes the filters is handed over at once and not kept.
    on_alert: Callable[[Alert], None] | None = None
    # Worker processes: 1 scans in this process, 0 uses every usable core (see engine/parallel.py).
    # The result is the same whatever the number; streaming (on_alert) needs jobs == 1.
    jobs: int = 1
    # With jobs > 1: the target size of the byte ranges a large line-oriented file is split into
    # (rounded to whole read blocks; a big file is split into at least `jobs` ranges).
    chunk_bytes: int = CHUNK_BYTES
    # Wraps each opened input stream (the progress bar counts bytes through it; see report/progress.py).
    wrap_input: Callable[[BinaryIO], BinaryIO] | None = None
    # Cloud side: published ranges, inventory and the host-cloud correlation window (see cloud/).
    cloud: CloudSettings = field(default_factory=CloudSettings)
    # Bounds on lines, records, decoding and aggregation state (see imds_detect/limits.py; [limits] in the config).
    limits: Limits = field(default_factory=Limits)


@dataclass
class ScanResult:
    """Alerts newest first (suppressed ones only with show_suppressed) and the summary."""

    alerts: list[Alert]
    summary: Summary
    suppressed: list[Alert] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)  # host reads + cloud use of the same credentials


class Scanner:
    """Runs one scan; create one per scan."""

    def __init__(self, options: ScanOptions, prefilters: dict[str, Prefilter] | None = None) -> None:
        self.options = options
        self.detector = Detector(options.allowlist)
        self.cloud = CloudCollector(options.cloud)  # CLOUD events: summarised now, judged in finish()
        self.summary = Summary()
        # by adapter name; may be shared between scanners (a parallel scan builds them once, before forking)
        self._prefilters: dict[str, Prefilter] = {} if prefilters is None else prefilters
        self.alerts: list[Alert] = []
        self.suppressed: list[Alert] = []
        self._suppressed_times: dict[str, array[float]] = {}  # epoch seconds per allowlist entry
        self.newest: datetime | None = None
        self._prune_at = PRUNE_START  # kept alerts and suppressed times at which to drop those outside (_prune)
        self._skip_shown: dict[tuple[str, str], int] = {}
        self._limit_shown: dict[str, int] = {}
        self._activate()
        self._needs_all_timestamps = any(
            bound is not None and bound.before_newest is not None for bound in (options.since, options.until)
        )

    # -- inputs ---------------------------------------------------------------------------------
    def scan_paths(self, paths: Iterable[str]) -> ScanResult:
        try:
            with interruptible():
                for item in discover(list(paths)):
                    if isinstance(item, InputFile):
                        self.scan_file(item)
                    else:
                        self.summary.missing.append(item)
                        self.options.warn(f"{item[0]}: {item[1]}")
        except ScanInterrupted as stop:
            self.interrupted(stop.reason)
        return self.finish()

    def interrupted(self, reason: str) -> None:
        """Note that the scan stopped early (`reason`: the signal) while reading the last file it started."""
        self.summary.interrupted = reason
        if self.summary.files and self.summary.files[-1].status == "ok":
            report = self.summary.files[-1]
            report.status, report.detail = "partial", f"scan interrupted by {reason} while reading this file"
        self.options.warn(f"scan interrupted by {reason}: finishing with what was read so far")

    def scan_file(self, source: InputFile) -> None:
        self._activate()
        report = FileReport(source.name)
        self.summary.files.append(report)
        try:
            stream, head = source.open()
        except READ_ERRORS as error:
            report.status, report.detail = "error", f"cannot open: {_describe(error)}"
            self.options.warn(f"{source.name}: cannot open: {_describe(error)}")
            return
        opened = stream
        if self.options.wrap_input is not None:
            stream = self.options.wrap_input(stream)
        with stream:
            self._scan_stream(source.name, stream, head, report)
        broken = read_error(opened)  # a cut or corrupt gzip file: what came before the break was scanned
        if broken is not None and report.status != "partial":
            self._read_stopped(source.name, report, _describe(broken))

    def scan_follow(self, path: str, stop: threading.Event, idle_exit: float | None = None) -> ScanResult:
        """Scan `path` and keep following it as it grows (rotation and truncation survived) until `stop`."""
        self._activate()
        report = FileReport(path)
        self.summary.files.append(report)
        head = b""
        while not head and not stop.is_set():
            try:
                with open(path, "rb") as handle:
                    head = handle.read(HEAD_SIZE)
            except OSError as error:
                report.status, report.detail = "error", f"cannot open: {_describe(error)}"
                self.options.warn(f"{path}: cannot open: {_describe(error)}")
                return self.finish()
            if not head:
                stop.wait(POLL_SECONDS)
        if head[:2] == GZIP_MAGIC:
            report.status, report.detail = "error", "cannot follow a gzip file"
            self.options.warn(f"{path}: cannot follow a gzip file")
            return self.finish()
        try:
            with interruptible(), FollowStream(path, stop, idle_exit) as stream:
                while True:
                    self._scan_stream(path, cast(BinaryIO, stream), head, report)
                    if not stream.restarted or stop.is_set():
                        break
                    stream.restarted = False  # rotated or truncated: line numbers start again
                    self.options.warn(f"{path}: rotated or truncated; following the new content from its start")
        except ScanInterrupted as interruption:
            self.interrupted(interruption.reason)
        return self.finish()

    def _scan_stream(self, name: str, stream: BinaryIO, head: bytes, report: FileReport) -> None:
        """Detect the format from `head`, then scan every record of `stream` into events and alerts."""
        adapter = self._adapter_for(head, report)
        if adapter is None:
            return
        report.format = adapter.name
        before_records, before_skips = self.summary.records, sum(self.summary.skipped.values())
        try:
            if self._line_oriented(adapter, head):
                self._scan_blocks(_blocks(stream, self._line_limit(adapter)[1]), adapter, name)  # type: ignore[arg-type]
            elif hasattr(adapter, "parse_counted"):
                counts = ReadCounts(exhaustive=not self.options.prefilter, needs_newest=self._needs_all_timestamps)
                shortcut: object = getattr(adapter, "shortcut", None)
                if self.options.prefilter and shortcut:
                    self.summary.shortcuts.add(f"{adapter.name} {shortcut}")
                try:
                    for event in cast(CountingSource, adapter).parse_counted(stream, name, self._on_skip, counts):
                        self.summary.parsed += 1
                        self.scan_event(event)
                finally:
                    self.summary.records += counts.records
                    self._see_time(counts.newest)
            else:
                for event in adapter.parse(stream, name, self._on_skip):
                    self.summary.records += 1
                    self.summary.parsed += 1
                    self.scan_event(event)
                # records that were read but unusable are records too
                self.summary.records += sum(self.summary.skipped.values()) - before_skips
        except READ_ERRORS as error:
            self._read_stopped(name, report, _describe(error))
        self._file_done(name, adapter.name, report, self.summary.records - before_records,
                        sum(self.summary.skipped.values()) - before_skips)

    def _read_stopped(self, name: str, report: FileReport, why: str) -> None:
        report.status, report.detail = "partial", f"read stopped: {why}"
        self.options.warn(f"{name}: read stopped early ({why}); records before it were scanned")

    def _file_done(self, name: str, adapter_name: str, report: FileReport, records: int, skipped: int) -> None:
        """Close a file's report: its records, its status, and the usable records it added."""
        report.records = records
        how = "forced by --format" if self.options.format != "auto" else "recognised"
        if report.records == 0 and report.status == "ok":
            report.status, report.detail = "empty", "no records in this file"
            self.options.warn(f"{name}: read as {adapter_name} ({how}) but holds no records")
        elif skipped == report.records and report.status == "ok":
            report.status, report.detail = "unusable", f"all {skipped} records skipped"
            self.options.warn(f"{name}: read as {adapter_name} ({how}) but no record was usable")
        self.summary.usable += report.records - skipped

    def _adapter_for(self, head: bytes, report: FileReport) -> SourceAdapter | None:
        if self.options.format != "auto":
            return BY_NAME[self.options.format]
        if not head.strip():
            report.status, report.detail = "empty", "the file is empty"
            self.options.warn(f"{report.name}: empty file")
            return None
        adapter = detect_format(head)
        if adapter is None:
            hint = _encoding_hint(head)
            report.status, report.detail = "unrecognised", f"format not recognised{hint} (use --format to force one)"
            self.options.warn(f"{report.name}: format not recognised{hint}; not scanned (use --format to force one)")
        return adapter

    @staticmethod
    def _line_oriented(adapter: SourceAdapter, head: bytes) -> bool:
        is_line_oriented = getattr(adapter, "is_line_oriented", None)
        return bool(is_line_oriented and is_line_oriented(head) and hasattr(adapter, "parse_line"))

    def _scan_blocks(self, blocks: Iterable[bytes | Oversized], adapter: LineSource,
                     name: str) -> tuple[int, int]:
        """Scan blocks of whole lines (see `_blocks`); only prefilter candidates are parsed. Line and record
        numbers stay exact, counted from the first block (line 1, record 0). Returns (lines, records) read.
        A line longer than the line limit (see `_line_limit`) is not parsed: it is reported and counted."""
        self._activate()
        limit_name, limit = self._line_limit(adapter)
        prefilter = self._prefilter_for(adapter) if self.options.prefilter else None
        newest_in_block = getattr(adapter, "newest_in_block", None) if self._needs_all_timestamps else None
        if self._needs_all_timestamps and newest_in_block is None:
            prefilter = None  # every record's time is needed to find the newest event
        line_number = 1  # of the first line in the block
        record = 0  # records (non-blank lines) before the block
        for block in bounded(blocks, limit):
            if isinstance(block, Oversized):
                self.summary.records += 1
                self._on_skip(SkipRecord("oversized-record", name, line_number,
                                         f"line longer than {limit} bytes: not read ([limits] {limit_name})"))
                _limits.hit(limit_name)
                line_number += 1
                record += 1
                continue
            if line_number == 1 and block.startswith(UTF8_BOM):  # (a range of --jobs starts at the file's start)
                block = block[len(UTF8_BOM):]
            plan = prefilter.plan(block) if prefilter is not None else _plan_all(block)
            if not block.endswith(b"\n"):  # the file's last line, maybe cut short: parsed, to be reported if so
                plan = _with_last_line(block, plan)
            before, newlines = newlines_before(block, [start for start, _ in plan.spans])
            lines = newlines + (0 if block.endswith(b"\n") else 1)
            self.summary.records += lines - len(plan.blank_ends)
            parsed = 0
            for (start, end), counted_lines in zip(plan.spans, before, strict=True):
                line = block[start:end].removesuffix(b"\r")  # a line of only CRs is the adapter's to report
                if not line:
                    continue
                parsed += 1
                blanks_before = bisect.bisect_right(plan.blank_ends, start)
                event = adapter.parse_line(line, name, line_number + counted_lines,
                                           record + counted_lines - blanks_before, self._on_skip)
                if event is not None:
                    self.scan_event(event)
            self.summary.parsed += parsed
            self.summary.prefiltered += lines - len(plan.blank_ends) - parsed
            if newest_in_block is not None and prefilter is not None:
                self._see_time(newest_in_block(block))
            line_number += lines
            record += lines - len(plan.blank_ends)
            check_stop()  # before the next read, which may wait on a pipe
        return line_number - 1, record

    def _line_limit(self, adapter: SourceAdapter) -> tuple[str, int]:
        """The limit on one line of a line-oriented format: a JSON record's, or a text line's."""
        limits = self.options.limits
        if getattr(adapter, "json_lines", False):
            return "max_json_record_bytes", limits.max_json_record_bytes
        return "max_line_bytes", limits.max_line_bytes

    def _prefilter_for(self, adapter: LineSource) -> Prefilter:
        prefilter = self._prefilters.get(adapter.name)
        if prefilter is None:
            prefilter = for_adapter(adapter)
            self._prefilters[adapter.name] = prefilter
        self.summary.prefilter_engine = prefilter.engine
        return prefilter

    # -- events ---------------------------------------------------------------------------------
    def scan_event(self, event: Event) -> None:
        """Detect on one normalized event."""
        check_stop()
        self._see_time(event.timestamp)
        _limits.judging(event.source.file, event.source.line)
        if event.cloud is not None:
            self.cloud.observe(event)
            return
        detection = self.detector.run(event)
        self._take(detection.alerts)
        if self.options.show_suppressed:
            self.suppressed.extend(detection.suppressed)
            if len(self.suppressed) >= self._prune_at:
                self._prune()
        else:  # only counted: agents can produce many, and memory must not grow with them
            for alert in detection.suppressed:
                times = self._suppressed_times.setdefault(alert.suppressed_by or "?", array("d"))
                times.append(alert.timestamp.timestamp())
                if len(times) >= self._prune_at:
                    self._prune()

    def _take(self, alerts: list[Alert]) -> None:
        """Keep alerts for finish(), or (streaming) judge them now, hand them over and keep nothing."""
        if self.options.on_alert is None:
            self.alerts.extend(alerts)
            if len(self.alerts) >= self._prune_at:
                self._prune()
            return
        window = Window(self.options.since.resolve(None) if self.options.since else None,
                        self.options.until.resolve(None) if self.options.until else None)
        for alert in alerts:
            if not window.contains(alert.timestamp):
                self.summary.outside_window += 1
            elif alert.severity < self.options.min_severity:
                self.summary.below_min_severity += 1
            else:
                self.summary.alerts[alert.severity.label] += 1
                self.options.on_alert(alert)

    def prune_if_due(self) -> None:
        """:meth:`_prune` when anything kept (alerts, suppressed alerts, the suppressed times of an entry) has reached
        the mark; for merges, where many arrive at once (the scan itself checks each list as it grows)."""
        if self._most_kept() >= self._prune_at:
            self._prune()

    def _most_kept(self) -> int:
        """The longest of the kept alerts, the kept suppressed alerts and the suppressed times of one entry."""
        longest = max((len(times) for times in self._suppressed_times.values()), default=0)
        return max(len(self.alerts), len(self.suppressed), longest)

    def _prune(self) -> None:
        """Drop the kept alerts (counted as outside the window) and suppressed ones that no later input can bring
        inside --since/--until: before an absolute --since, or before a relative one counted back from the newest
        event so far (the newest only grows, and with it that bound); after an absolute --until. Called as what is
        kept doubles, so memory follows what will be reported, not the input (a relative --until prunes nothing)."""
        since = self.options.since.resolve(self.newest) if self.options.since else None
        until = self.options.until.absolute if self.options.until else None
        if since is not None or until is not None:
            window = Window(since, until)
            kept = [alert for alert in self.alerts if window.contains(alert.timestamp)]
            self.summary.outside_window += len(self.alerts) - len(kept)
            self.alerts = kept
            self.suppressed = [alert for alert in self.suppressed if window.contains(alert.timestamp)]
            self._suppressed_times = {entry: array("d", (moment for moment in times if window.contains_epoch(moment)))
                                      for entry, times in self._suppressed_times.items()}
        self._prune_at = max(PRUNE_START, 2 * self._most_kept())

    def scan_events(self, events: Iterable[Event]) -> ScanResult:
        """Library entry point for already-normalized events."""
        self._activate()
        for event in events:
            self.summary.records += 1
            self.summary.parsed += 1
            self.summary.usable += 1
            self.scan_event(event)
        return self.finish()

    def _see_time(self, moment: datetime | None) -> None:
        if moment is not None and (self.newest is None or moment > self.newest):
            self.newest = moment

    def _on_skip(self, skip: SkipRecord) -> None:
        self.summary.skipped[skip.reason] += 1
        self._announce_skip(skip)

    def _announce_skip(self, skip: SkipRecord) -> None:
        """Warn about the first few skips of each reason in each file; the rest are only counted."""
        key = (skip.file, skip.reason)
        shown = self._skip_shown.get(key, 0)
        if shown < SKIP_MESSAGES_PER_REASON:
            self.options.warn(skip.message())
        elif shown == SKIP_MESSAGES_PER_REASON:
            self.options.warn(f"{skip.file}: further '{skip.reason}' skips are only counted in the summary")
        self._skip_shown[key] = shown + 1

    def _activate(self) -> None:
        """Make this scan's limits the active ones, their hits counted in this scan's summary."""
        _limits.activate(self.options.limits, self._limit_hit)

    def _limit_hit(self, name: str, count: int, file: str, line: int, detail: str) -> None:
        """A limit was reached: counted; with a detail, warned about (the first few of each limit)."""
        self.summary.limits[name] += count
        if not detail:
            return
        shown = self._limit_shown.get(name, 0)
        self._limit_shown[name] = shown + 1
        if shown < SKIP_MESSAGES_PER_REASON:
            where = f"{file}:{line}: " if file else ""
            value = getattr(self.options.limits, name, "?")
            self.options.warn(f"{where}limit {name}={value} reached: {detail} (raise it under [limits] in --config)")
        elif shown == SKIP_MESSAGES_PER_REASON:
            self.options.warn(f"further '{name}' limit hits are only counted in the summary")

    # -- results --------------------------------------------------------------------------------
    def finish(self) -> ScanResult:
        self._activate()
        self._take(self.cloud.finish())  # the stateful cloud detections judge once, at the end
        window = Window(
            self.options.since.resolve(self.newest) if self.options.since else None,
            self.options.until.resolve(self.newest) if self.options.until else None,
        )
        self.alerts = fold_probing(self.alerts, self.summary.probing, window.contains,
                                   self.options.limits)  # one per client run
        kept: list[Alert] = []
        for alert in self.alerts:
            if not window.contains(alert.timestamp):
                self.summary.outside_window += 1
            elif alert.severity < self.options.min_severity:
                self.summary.below_min_severity += 1
            else:
                kept.append(alert)
                self.summary.alerts[alert.severity.label] += 1
        suppressed = [alert for alert in self.suppressed if window.contains(alert.timestamp)]
        for alert in suppressed:
            self.summary.suppressed[alert.suppressed_by or "?"] += 1
        for entry, times in self._suppressed_times.items():
            inside = sum(1 for moment in times if window.contains_epoch(moment))
            if inside:
                self.summary.suppressed[entry] += inside
        return ScanResult(newest_first(kept), self.summary,
                          newest_first(suppressed) if self.options.show_suppressed else [],
                          correlate(kept, self.options.cloud, self.cloud.aws_seen))


def newest_first(alerts: list[Alert]) -> list[Alert]:
    """Newest first like the reference query; ties keep input order."""
    return sorted(alerts, key=lambda alert: (-alert.timestamp.timestamp(), alert.source.file, alert.source.record))


def _blocks(stream: BinaryIO, limit: int | None = None) -> Iterator[bytes | Oversized]:
    """Blocks of about BLOCK_SIZE bytes that end at a line boundary (the last one may not); a line longer than
    `limit` is given as one `Oversized` (see :func:`.lines.blocks`)."""
    return line_blocks(stream, BLOCK_SIZE, limit)


def _with_last_line(block: bytes, plan: BlockPlan) -> BlockPlan:
    """`plan` with the block's last line (no newline after it) among the candidates."""
    start = block.rfind(b"\n") + 1
    if not block[start:].strip(b"\r") or (plan.spans and plan.spans[-1][0] == start):
        return plan
    return BlockPlan([*plan.spans, (start, len(block))], plan.blank_ends)


def _plan_all(block: bytes) -> BlockPlan:
    """Every line of the block is a candidate (prefilter off)."""
    spans: list[tuple[int, int]] = []
    blank_ends: list[int] = []
    start = 0
    while start < len(block):
        end = block.find(b"\n", start)
        if end == -1:
            end = len(block)
        if block[start:end] in (b"", b"\r"):
            blank_ends.append(end + 1)
        else:
            spans.append((start, end))
        start = end + 1
    return BlockPlan(spans, blank_ends)


def _encoding_hint(head: bytes) -> str:
    """Why a head may not be recognised: UTF-16 text (a BOM, or NULs in every other byte)."""
    sample = head[:512]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            len(sample) >= 16 and max(sample[0::2].count(0), sample[1::2].count(0)) * 4 >= len(sample)):
        return " (it looks like UTF-16 text: convert it to UTF-8, e.g. iconv -f UTF-16 -t UTF-8)"
    return ""


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def scan(paths: Iterable[str], options: ScanOptions | None = None) -> ScanResult:
    """Scan files, directories or '-' (stdin) and return alerts and the summary.

    With `options.jobs` other than 1, files (and ranges of large line-oriented files) are scanned in
    worker processes; the result is the same as with one job (see engine/parallel.py).
    """
    options = options or ScanOptions()
    if options.jobs != 1:
        from .parallel import scan_parallel

        return scan_parallel(paths, options)
    return Scanner(options).scan_paths(paths)


def scan_events(events: Iterable[Event], options: ScanOptions | None = None) -> ScanResult:
    """Run the detections over normalized events."""
    return Scanner(options or ScanOptions()).scan_events(events)


def scan_records(rows: Iterable[Mapping[str, Any]], options: ScanOptions | None = None,
                 name: str = "<records>") -> ScanResult:
    """Run the detections over Defender/Sentinel rows given as mappings (e.g. from a SIEM API or a notebook)."""
    scanner = Scanner(options or ScanOptions())

    def events() -> Iterator[Event]:
        for index, row in enumerate(rows):
            event = event_from_row(row, name, index + 1, index, scanner._on_skip)
            if event is not None:
                event.raw = repr(dict(row))[:4096]
                yield event
            else:
                scanner.summary.records += 1  # read but unusable (the skip says why)

    return scanner.scan_events(events())
