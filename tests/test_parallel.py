"""`scan --jobs N`: files and byte ranges of large JSON-lines files in worker processes, same result as one job."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.engine import parallel
from imds_detect.engine import scan as scan_module
from imds_detect.engine.inputs import InputFile
from imds_detect.engine.scan import ScanOptions, ScanResult, scan
from imds_detect.engine.window import parse_bound
from imds_detect.knowledge import indicators
from imds_detect.model import Severity

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "defender-sample.jsonl"
FIXTURES = ROOT / "tests" / "fixtures"
GENERATOR = ROOT / "benchmarks" / "generate_defender.py"
SMALL_BLOCK = 256 * 1024  # many ranges in a 6 MB file


def _generate(path: Path, size: str, seed: int, *extra: str) -> Path:
    subprocess.run([sys.executable, str(GENERATOR), "--size", size, "--ratio", "200", "--seed", str(seed),
                    "--out", str(path), *extra], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated Defender exports: a 6 MB JSON-lines file, a second one, its gzip, a CSV export, and a
    6 MB file with malformed, blank, whitespace-only, CRLF and very long lines spread through it."""
    folder = tmp_path_factory.mktemp("parallel")
    big = _generate(folder / "big.jsonl", "6MB", 1)
    second = _generate(folder / "second.jsonl", "3MB", 2)
    packed = folder / "second.jsonl.gz"
    packed.write_bytes(gzip.compress(second.read_bytes()))
    table = _generate(folder / "export.csv", "2MB", 3, "--format", "csv")
    lines = big.read_bytes().split(b"\n")
    alerting = next(line for line in lines if b"169.254.169.254/latest/meta-data/iam" in line
                    and b"ProcessCommandLine" in line)
    row = json.loads(alerting)
    row["ProcessCommandLine"] = row["ProcessCommandLine"] + " #" + "x" * 700_000  # longer than 2 blocks
    long_line = json.dumps(row).encode()
    messy: list[bytes] = []
    for number, line in enumerate(lines):
        if number % 211 == 5:
            messy.append(b'{"Timestamp": "2024-05-13T00:03:00Z", broken')
        if number % 307 == 7:
            messy.extend([b"", b"   "])
        if number % 401 == 11:
            messy.append(b"[1, 2]")
        if number in (900, 2100):
            messy.append(long_line)
        messy.append(line + b"\r" if number % 5 == 0 and line else line)
    rough = folder / "rough.jsonl"
    rough.write_bytes(b"\n".join(messy))  # no newline at the end
    return {"big": big, "second": second, "gz": packed, "csv": table, "rough": rough}


def _inputs(data: dict[str, Path]) -> list[str]:
    return [str(data["big"]), str(data["second"]), str(data["gz"]), str(data["csv"]), str(SAMPLE),
            str(data["rough"]), str(FIXTURES / "auditd" / "raw_x86_64.log"),
            str(FIXTURES / "auditd" / "malformed.log"), str(FIXTURES / "mde" / "malformed.jsonl"),
            str(FIXTURES / "sysmon" / "eventviewer.xml")]


def _cli(args: list[str], jobs: int, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", *args, "--output", "jsonl", "--jobs", str(jobs)], input=stdin,
                                env={"IMDS_DETECT_CHUNK_BYTES": "1"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Read blocks of 256 KiB in both runs, so that a 6 MB file splits into about 24 ranges."""
    monkeypatch.setattr(scan_module, "BLOCK_SIZE", SMALL_BLOCK)
    yield


def _ranges_of(path: Path, options: ScanOptions) -> int:
    return len(parallel._plan_file(0, str(path), options, 2))


FLAG_SETS = [
    [],
    ["--since", "1h"],
    ["--since", "3m"],
    ["--until", "2m", "--show-suppressed"],
    ["--min-severity", "informational"],
    ["--show-suppressed"],
    ["--since", "3m", "--min-severity", "informational", "--show-suppressed"],
    ["--since", "2024-05-13T00:02:00Z", "--until", "2024-05-13T00:05:00Z"],
    ["--no-prefilter", "--since", "4m"],
]


@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda flags: " ".join(flags) or "defaults")
def test_jobs_2_prints_what_jobs_1_prints(data: dict[str, Path], small_blocks: None, flags: list[str]) -> None:
    assert _ranges_of(data["big"], ScanOptions(chunk_bytes=1)) > 10
    assert _ranges_of(data["rough"], ScanOptions(chunk_bytes=1)) > 10
    one = _cli([*_inputs(data), *flags], 1)
    two = _cli([*_inputs(data), *flags], 2)
    assert one[0] == 0, one[2]
    assert two == one  # exit code, every alert line in order, every warning and the summary
    alerts = [json.loads(line) for line in one[1].splitlines()]
    assert alerts, "the inputs hold planted attacks"
    files = {alert["source"]["file"] for alert in alerts}
    if not flags or flags == ["--show-suppressed"]:
        assert {str(data["big"]), str(data["rough"]), str(data["gz"]), str(data["csv"])} <= files
    assert "skipped (malformed-json)" in one[2] and "further 'malformed-json' skips are only counted" in one[2]


def _library(data: dict[str, Path], jobs: int, **options: object) -> ScanResult:
    return scan(_inputs(data), ScanOptions(jobs=jobs, chunk_bytes=1, **options))  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [
    {},
    {"since": parse_bound("1h")},
    {"since": parse_bound("3m"), "show_suppressed": True},
    {"min_severity": Severity.INFORMATIONAL},
    {"show_suppressed": True, "until": parse_bound("1m")},
], ids=["defaults", "since-1h", "since-3m-suppressed", "informational", "until-1m-suppressed"])
def test_library_summary_and_alerts_match(data: dict[str, Path], small_blocks: None,
                                          options: dict[str, object]) -> None:
    one = _library(data, 1, **options)
    two = _library(data, 2, **options)
    assert two.summary.as_dict() == one.summary.as_dict()
    assert [alert.as_dict() for alert in two.alerts] == [alert.as_dict() for alert in one.alerts]
    assert [alert.as_dict() for alert in two.suppressed] == [alert.as_dict() for alert in one.suppressed]
    summary = one.summary.as_dict()
    assert summary["records"] > 10_000 and summary["prefiltered"] > 0 and summary["parsed"] > 0
    assert summary["skipped"]["malformed-json"] > 5 and summary["skipped"]["not-an-object"] > 0
    by_name = {report["name"]: report for report in summary["files"]}
    assert by_name[str(data["rough"])]["records"] == _records(data["rough"])
    assert by_name[str(data["gz"])]["format"] == "mde" and by_name[str(data["csv"])]["records"] > 0
    assert sum(summary["alerts"].values()) == len(one.alerts) > 0


def _records(path: Path) -> int:
    return sum(1 for line in path.read_bytes().split(b"\n") if line.rstrip(b"\r"))


def test_line_and_record_numbers_point_at_the_raw_line(data: dict[str, Path], small_blocks: None) -> None:
    result = scan([str(data["rough"])], ScanOptions(jobs=2, chunk_bytes=1, show_suppressed=True))
    lines = data["rough"].read_bytes().split(b"\n")
    records = [line for line in lines if line.rstrip(b"\r")]
    assert len(result.alerts) > 10
    late = [alert for alert in result.alerts + result.suppressed if alert.source.line > len(lines) // 2]
    assert late, "alerts from ranges after the first"
    for alert in result.alerts + result.suppressed:
        raw = lines[alert.source.line - 1].rstrip(b"\r")
        assert records[alert.source.record] == lines[alert.source.line - 1]
        assert json.loads(raw)["Timestamp"][:19] == alert.timestamp.strftime("%Y-%m-%dT%H:%M:%S")


def test_default_blocks_split_a_6mb_file_and_match(data: dict[str, Path]) -> None:
    assert _ranges_of(data["big"], ScanOptions(chunk_bytes=1)) == 3  # the head read, then 4 MiB blocks
    inputs = [str(data["big"]), str(data["rough"]), str(SAMPLE)]
    one = scan(inputs, ScanOptions(jobs=1))
    two = scan(inputs, ScanOptions(jobs=2, chunk_bytes=1))
    assert two.summary.as_dict() == one.summary.as_dict()
    assert [alert.as_dict() for alert in two.alerts] == [alert.as_dict() for alert in one.alerts]


@pytest.mark.parametrize("block", [16 * 1024, 48 * 1024, 100 * 1024, 4 * 1024 * 1024])
@pytest.mark.parametrize("pieces", [2, 7, 40])
def test_ranges_read_the_blocks_of_the_one_process_scan(data: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                        block: int, pieces: int) -> None:
    monkeypatch.setattr(scan_module, "BLOCK_SIZE", block)
    path = data["rough"]
    stream, head = InputFile(str(path)).open()
    with stream:
        expected = list(scan_module._blocks(stream))
    with path.open("rb") as handle:
        cuts = parallel.plan_ranges(handle, path.stat().st_size, len(head), pieces)
        got = [block for cut in cuts for block in parallel.range_blocks(handle, cut, len(head))]
    assert len(cuts) == min(pieces, len(cuts)) and (len(cuts) > 1)
    assert got == expected


def test_stdin_missing_and_empty_inputs_keep_their_place(data: dict[str, Path], small_blocks: None,
                                                         tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"nothing to see\n" * 10)
    args = [str(data["rough"]), "-", str(tmp_path / "absent.jsonl"), str(empty), str(junk), str(data["big"]),
            str(data["rough"])]  # the same file twice: its skip warnings are not repeated
    one = _cli(args, 1, stdin=SAMPLE.read_bytes())
    two = _cli(args, 2, stdin=SAMPLE.read_bytes())
    assert one[0] == 2  # a missing input
    assert two == one
    assert "absent.jsonl: no such file or directory" in one[2] and "empty.jsonl: empty file" in one[2]
    assert "-" in {json.loads(line)["source"]["file"] for line in one[1].splitlines()}


def test_jobs_0_uses_every_usable_core() -> None:
    assert parallel.resolve_jobs(0) == len(os.sched_getaffinity(0))
    assert parallel.resolve_jobs(3) == 3
    with pytest.raises(ValueError):
        parallel.resolve_jobs(-1)


def test_streaming_needs_one_job() -> None:
    with pytest.raises(ValueError, match="jobs=1"):
        scan([str(SAMPLE)], ScanOptions(jobs=2, on_alert=lambda alert: None))


def test_follow_refuses_jobs(tmp_path: Path) -> None:
    log = tmp_path / "stream.jsonl"
    log.write_bytes(SAMPLE.read_bytes())
    result = CliRunner().invoke(main, ["scan", "--follow", str(log), "--jobs", "2", "--idle-exit", "0.1"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "imds-detect: error: --follow reads one file as it grows in one process: it cannot be combined with --jobs"]


def test_bad_chunk_size_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["scan", str(SAMPLE), "--jobs", "2"], env={"IMDS_DETECT_CHUNK_BYTES": "1MB"})
    assert result.exit_code == 2 and "IMDS_DETECT_CHUNK_BYTES" in result.stderr


def test_workers_load_no_hyperscan_database(data: dict[str, Path], small_blocks: None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent loads the databases before forking; workers inherit them (none compiled or loaded twice)."""
    log = tmp_path / "loads.txt"
    real = indicators._hyperscan_database

    def counting(groups: tuple[tuple[bytes, ...], ...]) -> object:
        with log.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        return real(groups)

    monkeypatch.setattr(indicators, "_hyperscan_database", counting)
    indicators._strong_gate.cache_clear()
    try:
        result = scan([str(data["big"]), str(data["gz"]), str(SAMPLE)], ScanOptions(jobs=2, chunk_bytes=1))
    finally:
        indicators._strong_gate.cache_clear()
    assert result.alerts
    loaders = set(log.read_text().split())
    assert loaders == {str(os.getpid())}


def test_cloud_alerts_and_incidents_survive_worker_processes() -> None:
    """Cloud calls are judged in finish() over every file: workers hand their collectors to the parent."""
    paths = [str(ROOT / "tests" / "fixtures" / "correlation"), str(ROOT / "tests" / "fixtures" / "cloudtrail")]
    one, two = (scan(paths, ScanOptions(jobs=jobs)) for jobs in (1, 2))
    cloud_rules = [alert.rule_id for alert in one.alerts if alert.cloud is not None]
    assert cloud_rules and one.incidents
    assert [alert.as_dict() for alert in two.alerts] == [alert.as_dict() for alert in one.alerts]
    assert len(two.incidents) == len(one.incidents)


def test_planned_reads_fill_each_read_from_a_stream_that_trickles() -> None:
    """With planned read sizes, a read that a stream answers a few bytes at a time is filled before it is cut, so the
    blocks end where they would on a file; reading stops after the last planned read (its tail is not given)."""
    from imds_detect.engine.lines import blocks

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.at = data, 0

        def readable(self) -> bool:
            return True

        def readinto(self, view: Any) -> int:
            count = min(3, len(view), len(self.data) - self.at)
            view[:count] = self.data[self.at: self.at + count]
            self.at += count
            return count

    data = b"".join(b"line %d\n" % n for n in range(100))
    planned = [40, 40, 40, 5, 40]
    expected = list(blocks(io.BytesIO(data), 40, None, planned))
    assert list(blocks(Trickle(data), 40, None, planned)) == expected  # type: ignore[arg-type]
    assert b"".join(expected) == data[: data.rfind(b"\n", 0, 165) + 1]  # up to the last newline of 165 bytes read
    assert b"".join(blocks(io.BytesIO(data), 40, None, [60] * 100)) == data  # the end of the file: all of it
