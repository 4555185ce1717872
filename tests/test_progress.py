"""The progress bar: byte counting through the scan, totals for plain and gzip inputs, terminal only."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.engine.scan import ScanOptions, scan
from imds_detect.report.progress import CountingReader, progress_wanted, scan_with_progress, total_bytes

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"


class Sink:
    def __init__(self) -> None:
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count


def test_counting_reader_counts_every_byte() -> None:
    sink = Sink()
    reader = CountingReader(io.BytesIO(b"x" * 10_000), sink)  # type: ignore[arg-type]
    assert reader.read(100) == b"x" * 100
    buffer = bytearray(900)
    assert reader.readinto(buffer) == 900
    assert len(reader.read()) == 9_000 and sink.done == 10_000


def test_totals_use_the_uncompressed_size(tmp_path: Path) -> None:
    packed = tmp_path / "sample.jsonl.gz"
    with open(SAMPLE, "rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    size = SAMPLE.stat().st_size
    assert total_bytes([str(SAMPLE), str(packed)]) == 2 * size
    assert total_bytes([str(SAMPLE), "-"]) is None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_scan_with_progress_reads_everything_and_finds_the_same() -> None:
    screen = Terminal()
    options = ScanOptions()
    result = scan_with_progress([str(SAMPLE)], options, screen)
    assert [a.as_dict() for a in result.alerts] == [a.as_dict() for a in scan([str(SAMPLE)]).alerts]
    assert options.wrap_input is None and "scanned in" in screen.getvalue()
    assert progress_wanted(Terminal()) and not progress_wanted(io.StringIO())


def test_cli_progress_flag_keeps_the_output() -> None:
    plain = CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl", "--no-progress"])
    forced = CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl", "--progress"])
    assert forced.exit_code == plain.exit_code == 0
    assert forced.stdout == plain.stdout and len(plain.stdout.splitlines()) == 18
