"""Timesketch JSON lines: the required fields, and the same alert time as every other output."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from imds_detect.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_timesketch_events_carry_required_fields_and_the_same_time() -> None:
    sketch = lines(CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "timesketch"]).stdout)
    plain = lines(CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl"]).stdout)
    assert len(sketch) == len(plain) == 18
    for event, alert in zip(sketch, plain, strict=True):
        assert {"message", "datetime", "timestamp_desc", "timestamp"} <= set(event)
        assert event["datetime"] == alert["timestamp"]
        moment = datetime.fromisoformat(str(alert["timestamp"]).replace("Z", "+00:00"))
        assert event["timestamp"] == round(moment.timestamp() * 1_000_000)
        assert event["rule_id"] == alert["rule_id"] and event["endpoint_path_class"]
        assert str(event["message"]).startswith(f"[{alert['severity']}] {alert['rule_id']}:")
    first = sketch[0]
    assert first["timestamp_desc"] == "Process started"
    assert first["process_path"] == "/usr/bin/curl" and first["source_line"] == 34
