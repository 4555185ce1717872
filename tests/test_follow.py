"""`scan --follow`: alerts appear while the log grows, across rotation and truncation; SIGTERM ends cleanly."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "samples" / "defender-sample.jsonl").read_text(encoding="utf-8").splitlines()
LABELS = json.loads((ROOT / "samples" / "defender-sample.labels.json").read_text(encoding="utf-8"))
MALICIOUS = [SAMPLE[label["line"] - 1] for label in LABELS if label["rule_id"] and label["severity"] == "high"]
BENIGN = [SAMPLE[label["line"] - 1] for label in LABELS if label["rule_id"] is None and "malformed" not in label["why"]]
WAIT = 20.0


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _next_alert(lines: queue.Queue[str]) -> dict[str, object]:
    return json.loads(lines.get(timeout=WAIT))


def _append(path: Path, rows: list[str]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(row + "\n" for row in rows))


def test_follow_prints_alerts_as_the_log_grows_rotates_and_shrinks(tmp_path: Path) -> None:
    log = tmp_path / "defender.jsonl"
    _append(log, [*BENIGN[:3], MALICIOUS[0]])
    process = subprocess.Popen(
        [sys.executable, "-m", "imds_detect", "scan", "--follow", str(log), "--output", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert process.stdout is not None and process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    try:
        first = _next_alert(lines)
        assert first["raw"] == MALICIOUS[0]

        _append(log, [*BENIGN[3:5], MALICIOUS[1]])  # growth
        assert _next_alert(lines)["raw"] == MALICIOUS[1]

        log.rename(tmp_path / "defender.jsonl.1")  # rotation: a new file under the same name
        _append(log, [MALICIOUS[2]])
        rotated = _next_alert(lines)
        assert rotated["raw"] == MALICIOUS[2]
        assert rotated["source"]["line"] == 1

        _append(log, BENIGN * 3)
        log.write_text(MALICIOUS[3] + "\n", encoding="utf-8")  # truncation: shorter than what was read
        assert _next_alert(lines)["raw"] == MALICIOUS[3]
        assert lines.empty(), "benign rows must not alert"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    assert "alerts: 4 (critical=0, high=4" in err


def test_idle_exit_ends_the_follow(tmp_path: Path) -> None:
    log = tmp_path / "defender.jsonl"
    _append(log, [MALICIOUS[0], *BENIGN[:2]])
    result = subprocess.run(
        [sys.executable, "-m", "imds_detect", "scan", "--follow", str(log), "--idle-exit", "0.5",
         "--output", "jsonl"],
        capture_output=True, text=True, timeout=WAIT, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["raw"] for line in result.stdout.splitlines()] == [MALICIOUS[0]]


def test_follow_refuses_several_paths_and_relative_windows(tmp_path: Path) -> None:
    log = tmp_path / "defender.jsonl"
    _append(log, BENIGN[:1])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    several = subprocess.run([sys.executable, "-m", "imds_detect", "scan", "--follow", str(log), str(log)],
                             capture_output=True, text=True, timeout=WAIT, env=env)
    assert several.returncode == 2 and "exactly one existing regular file" in several.stderr
    relative = subprocess.run([sys.executable, "-m", "imds_detect", "scan", "--follow", str(log), "--since", "24h"],
                              capture_output=True, text=True, timeout=WAIT, env=env)
    assert relative.returncode == 2 and "absolute --since/--until" in relative.stderr
