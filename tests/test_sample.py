"""The bundled sample: every labelled row alerts exactly as labelled, and the file matches its generator."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

from imds_detect import ScanOptions, Severity, scan

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _labels() -> list[dict[str, object]]:
    return json.loads((SAMPLES / "defender-sample.labels.json").read_text(encoding="utf-8"))


def test_every_labelled_row_alerts_as_labelled() -> None:
    result = scan([str(SAMPLES / "defender-sample.jsonl")], ScanOptions(min_severity=Severity.INFORMATIONAL))
    found = {(alert.source.line, alert.rule_id): alert.severity.label for alert in result.alerts}
    expected = {(label["line"], label["rule_id"]): label["severity"] for label in _labels() if label["rule_id"]}
    assert found == expected


def test_benign_rows_do_not_alert_and_agents_are_suppressed() -> None:
    result = scan([str(SAMPLES / "defender-sample.jsonl")], ScanOptions(show_suppressed=True))
    alerting_lines = {alert.source.line for alert in result.alerts}
    benign_lines = {label["line"] for label in _labels() if label["rule_id"] is None}
    assert not alerting_lines & benign_lines
    assert set(result.summary.suppressed) == {
        "aws-ssm-agent", "azure-windows-guest-agent", "gcp-guest-agent", "cloud-init-script",
        "aws-ec2-instance-connect"}
    assert all(alert.suppressed_by for alert in result.suppressed)


def test_malformed_row_is_reported_with_its_line() -> None:
    result = scan([str(SAMPLES / "defender-sample.jsonl")])
    assert result.summary.skipped == {"malformed-json": 1}
    malformed = [label["line"] for label in _labels() if "malformed" in str(label["why"])]
    assert len(malformed) == 1


def test_committed_sample_matches_its_generator(tmp_path: Path) -> None:
    copy = tmp_path / "samples"
    copy.mkdir()
    shutil.copy(SAMPLES / "make_sample.py", copy / "make_sample.py")
    runpy.run_path(str(copy / "make_sample.py"), run_name="__main__")
    for name in ("defender-sample.jsonl", "defender-sample.labels.json"):
        assert (copy / name).read_bytes() == (SAMPLES / name).read_bytes(), f"{name} is stale: rerun make_sample.py"


def test_library_scan_records_takes_rows_as_mappings() -> None:
    from imds_detect import scan_records

    rows = [json.loads(line) for line in (SAMPLES / "defender-sample.jsonl").read_text().splitlines()
            if not line.endswith("truncated")]
    result = scan_records(rows)
    from_file = scan([str(SAMPLES / "defender-sample.jsonl")])
    assert [(a.rule_id, a.severity, a.timestamp) for a in result.alerts] == [
        (a.rule_id, a.severity, a.timestamp) for a in from_file.alerts]
    assert result.summary.records == len(rows)
