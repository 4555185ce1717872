"""A progress bar on stderr for long scans (rich): bytes read, records per second and the time left.

The scanner reads every input through `ScanOptions.wrap_input`; here that wrapper counts the bytes read.
Gzip inputs are measured by their uncompressed size (the gzip trailer), standard input has no total.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable
from typing import BinaryIO, TextIO, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from ..engine.inputs import GZIP_MAGIC, STDIN, InputFile, discover
from ..engine.scan import Scanner, ScanOptions, ScanResult
from .terminal import progress_wanted

REFRESH_BYTES = 1 << 20  # update the bar at most every MiB read (reads are usually 4 MiB blocks)


def input_size(name: str) -> int | None:
    """Bytes the scanner will read from `name` (uncompressed for gzip, modulo 4 GiB); None when unknown."""
    if name == STDIN:
        return None
    try:
        with open(name, "rb") as handle:
            if handle.read(2) != GZIP_MAGIC:
                return os.fstat(handle.fileno()).st_size
            handle.seek(-4, os.SEEK_END)
            return int.from_bytes(handle.read(4), "little")
    except OSError:
        return None


def total_bytes(paths: Iterable[str]) -> int | None:
    """Sum of the inputs' sizes, or None when one of them (stdin) has no known size."""
    total = 0
    for item in discover(list(paths)):
        if isinstance(item, InputFile):
            size = input_size(item.name)
            if size is None:
                return None
            total += size
    return total


class CountingReader(io.RawIOBase):
    """Forwards reads to `inner` and reports how many bytes went through."""

    def __init__(self, inner: BinaryIO, on_bytes: ProgressSink) -> None:
        self._inner = inner
        self._sink = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        self._sink.add(len(data))
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._sink.add(len(data))
        return data

    def close(self) -> None:
        self._inner.close()
        super().close()


class RecordRateColumn(ProgressColumn):
    """Records read per second (the scanner's record count over the elapsed time)."""

    def render(self, task: Task) -> Text:
        records = int(task.fields.get("records", 0))
        elapsed = task.elapsed or 0.0
        rate = records / elapsed if elapsed > 0 else 0.0
        return Text(f"{records:,} records, {rate:,.0f}/s", style="progress.data.speed")


class ProgressSink:
    """Holds the counters and pushes them to the bar every REFRESH_BYTES."""

    def __init__(self, progress: Progress, task: TaskID, scanner: Scanner) -> None:
        self.progress, self.task, self.scanner = progress, task, scanner
        self.done = 0
        self._shown = 0

    def add(self, count: int) -> None:
        self.done += count
        if self.done - self._shown >= REFRESH_BYTES:
            self.refresh()

    def refresh(self) -> None:
        self._shown = self.done
        self.progress.update(self.task, completed=self.done, records=self.scanner.summary.records)


def scan_with_progress(paths: Iterable[str], options: ScanOptions, stream: TextIO) -> ScanResult:
    """Scan in this process (like `engine.scan.scan` with one job) with a progress bar on `stream`."""
    paths = list(paths)
    scanner = Scanner(options)
    console = Console(file=stream, stderr=True)
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), RecordRateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, refresh_per_second=4) as progress:
        task = progress.add_task("scanning", total=total_bytes(paths), records=0)
        sink = ProgressSink(progress, task, scanner)
        options.wrap_input = lambda raw: cast(BinaryIO, CountingReader(raw, sink))
        started = time.monotonic()
        try:
            result = scanner.scan_paths(paths)
        finally:
            options.wrap_input = None
        sink.refresh()
        progress.update(task, description=f"scanned in {time.monotonic() - started:.1f}s")
    return result


__all__ = ["CountingReader", "input_size", "progress_wanted", "scan_with_progress", "total_bytes"]
