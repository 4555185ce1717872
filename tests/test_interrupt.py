"""Stopping early: SIGINT, SIGTERM and a closed output pipe end the scan cleanly, with what was found written.

The scans read from a FIFO the test holds open, so each signal arrives at a known point (after the scanner
has shown it read the first block: an alert on stdout with --stream, or a skip warning on stderr), never
by timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imds_detect import ScanOptions
from imds_detect.engine import interrupt
from imds_detect.engine.scan import Scanner
from imds_detect.model import Alert

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and signals")

CLI = [sys.executable, "-m", "imds_detect"]
TIMEOUT = 60


def _row(number: int, host: str = "169.254.169.254") -> bytes:
    return json.dumps({
        "Timestamp": f"2026-11-27T08:{number // 60 % 60:02d}:{number % 60:02d}Z", "DeviceName": "web-1",
        "ActionType": "ProcessCreated", "FileName": "curl", "FolderPath": "/usr/bin/curl",
        "ProcessCommandLine": f"curl -s http://{host}/latest/meta-data/iam/security-credentials/role-{number}",
        "AccountName": "www-data", "InitiatingProcessFileName": "bash", "ReportId": number,
    }).encode() + b"\n"


def _benign(number: int) -> bytes:
    return json.dumps({
        "Timestamp": "2026-11-27T07:00:00Z", "DeviceName": "web-1", "ActionType": "ProcessCreated",
        "FileName": "ls", "FolderPath": "/usr/bin/ls", "ProcessCommandLine": f"ls -la /srv/{'x' * 200}/{number}",
        "AccountName": "u", "InitiatingProcessFileName": "bash", "ReportId": number,
    }).encode() + b"\n"


def _first_block(alerts: int = 1) -> bytes:
    """More than the 64 KiB head the scanner reads first (and scans as its first block): some alerting rows,
    one malformed line (its warning on stderr shows that the block was scanned), then benign padding."""
    data = b"".join(_row(n) for n in range(alerts)) + b"{not json\n"
    number = 0
    while len(data) < 80_000:
        data += _benign(number)
        number += 1
    return data


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "live.jsonl"
    os.mkfifo(path)
    yield path


class _Writer:
    """Holds the FIFO open for writing from a thread (opening blocks until the scanner opens it to read)."""

    def __init__(self, path: Path, first: bytes) -> None:
        self.handle: object = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._open, args=(path, first), daemon=True)
        self._thread.start()

    def _open(self, path: Path, first: bytes) -> None:
        handle = open(path, "wb")  # noqa: SIM115
        handle.write(first)
        handle.flush()
        self.handle = handle
        self._ready.set()

    def write_and_close(self, data: bytes) -> None:
        assert self._ready.wait(TIMEOUT)
        handle = self.handle
        assert handle is not None
        try:
            handle.write(data)  # type: ignore[attr-defined]
            handle.close()  # type: ignore[attr-defined]
        except BrokenPipeError:
            pass

    def close(self) -> None:
        self.write_and_close(b"")


def _wait_for_stderr_line(process: subprocess.Popen[bytes], needle: bytes) -> list[bytes]:
    assert process.stderr is not None
    seen: list[bytes] = []
    for line in iter(process.stderr.readline, b""):
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared on stderr: {b''.join(seen)!r}")


def _read_one_line_then_close(command: list[str], check: Callable[[bytes], bool],
                              then: Callable[[], None]) -> tuple[subprocess.Popen[bytes], str]:
    """Run `command`, read one line of its stdout (`check` it), close the pipe like `| head -1`, call `then`,
    and wait for the end. Returns the process and its stderr."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stderr is not None
        assert check(process.stdout.readline())
        process.stdout.close()
        then()
        process.wait(timeout=TIMEOUT)
        return process, process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()


def _signal_after(command: list[str], needle: bytes, number: signal.Signals, writer: _Writer,
                  check: Callable[[], bool]) -> tuple[int, str]:
    """Run `command`, wait for `needle` on its stderr, `check` something, send signal `number`, and wait for
    the end (then close the FIFO writer). Returns the exit code and the whole stderr."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        before = _wait_for_stderr_line(process, needle)
        assert check()
        process.send_signal(number)
        _, rest = process.communicate(timeout=TIMEOUT)
    finally:
        writer.close()
        if process.poll() is None:
            process.kill()
    return process.returncode, (b"".join(before) + rest).decode()


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_a_batch_scan_with_the_alerts_so_far_written_atomically(
        fifo: Path, tmp_path: Path, number: signal.Signals) -> None:
    out = tmp_path / "alerts.jsonl"
    writer = _Writer(fifo, _first_block(alerts=2))
    returncode, stderr = _signal_after(
        [*CLI, "scan", str(fifo), "--format", "mde", "--output", "jsonl", "-o", str(out)], b"malformed", number,
        writer, lambda: not out.exists())  # nothing is written before the scan ends
    assert returncode == 128 + number, stderr
    name = signal.Signals(number).name
    assert f"INTERRUPTED by {name}" in stderr
    assert f"{fifo}: PARTIAL scan interrupted by {name}" in stderr
    assert "Traceback" not in stderr
    alerts = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert sorted(alert["process"]["command_line"][-6:] for alert in alerts) == ["role-0", "role-1"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".imds-detect-")] == []  # no temp left


def test_stream_flushes_each_alert_as_found_and_stops_on_sigint(fifo: Path) -> None:
    writer = _Writer(fifo, _first_block(alerts=1))
    process = subprocess.Popen([*CLI, "scan", str(fifo), "--format", "mde", "--stream", "--output", "jsonl"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())  # flushed while the scan still waits for more input
        assert first["process"]["command_line"].endswith("role-0")
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        writer.close()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert rest == b""
    assert b"INTERRUPTED by SIGINT" in stderr and b"Traceback" not in stderr


def test_stream_stops_when_the_reader_of_its_output_goes_away(fifo: Path) -> None:
    writer = _Writer(fifo, _first_block(alerts=1))
    more = b"".join(_row(n) for n in range(1, 50))  # the next alert hits the closed pipe
    process, stderr = _read_one_line_then_close(
        [*CLI, "scan", str(fifo), "--format", "mde", "--stream", "--output", "jsonl"],
        lambda line: json.loads(line)["process"]["command_line"].endswith("role-0"),
        lambda: writer.write_and_close(more))
    assert process.returncode == 141, stderr
    assert "INTERRUPTED by SIGPIPE" in stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_batch_output_to_a_closed_pipe_ends_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "many.jsonl"
    data.write_bytes(b"".join(_row(n) for n in range(2000)))  # ~1 MB of alerts: more than a pipe holds
    process, stderr = _read_one_line_then_close([*CLI, "scan", str(data), "--output", "jsonl"],
                                                lambda line: bool(json.loads(line)), lambda: None)
    assert process.returncode == 141, stderr
    assert "went away (SIGPIPE)" in stderr
    assert "alerts: 2000 " in stderr  # the summary still says what was found
    assert "Traceback" not in stderr


def test_parallel_scan_keeps_the_files_merged_before_the_signal(fifo: Path, tmp_path: Path) -> None:
    done = tmp_path / "done.jsonl"
    done.write_bytes(_row(7) + b"{not json\n")
    out = tmp_path / "alerts.jsonl"
    writer = _Writer(fifo, _first_block(alerts=1))
    returncode, stderr = _signal_after(  # once the parent merged the first file (its skip warning)
        [*CLI, "scan", str(done), str(fifo), "--format", "mde", "--jobs", "2", "--output", "jsonl", "-o", str(out)],
        b"done.jsonl:2", signal.SIGTERM, writer, lambda: True)
    assert returncode == 143, stderr
    assert "INTERRUPTED by SIGTERM" in stderr and "Traceback" not in stderr
    commands = [json.loads(line)["process"]["command_line"] for line in out.read_text().splitlines()]
    assert commands and all(command.endswith("role-7") for command in commands)


def test_a_stop_requested_inside_a_library_scan_keeps_what_was_found(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_bytes(b"".join(_row(n) for n in range(10)))
    seen: list[Alert] = []

    def on_alert(alert: Alert) -> None:
        seen.append(alert)
        if len(seen) == 3:
            interrupt.request_stop("SIGINT")

    interrupt.reset()
    try:
        result = Scanner(ScanOptions(on_alert=on_alert)).scan_paths([str(data)])
    finally:
        interrupt.reset()
    assert len(seen) == 3
    assert result.summary.interrupted == "SIGINT"
    assert result.summary.files[0].status == "partial"
    assert result.summary.as_dict()["interrupted"] == "SIGINT"


def test_without_a_stop_the_summary_says_nothing_of_interruption(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_bytes(b"".join(_row(n) for n in range(3)))
    interrupt.reset()
    result = Scanner(ScanOptions()).scan_paths([str(data)])
    assert len(result.alerts) == 3
    assert result.summary.interrupted == ""
    assert "INTERRUPTED" not in result.summary.render()
