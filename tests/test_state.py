"""The state store: first-seen pairs, deduplication across runs, recorded scans, and `hunt`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("duckdb")

from imds_detect.cli import main
from imds_detect.engine.scan import scan
from imds_detect.model import Alert, Severity
from imds_detect.state.location import default_state_path
from imds_detect.state.store import StateStore, fingerprint, pair_key

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"


def sample() -> list[Alert]:
    return scan([str(SAMPLE)]).alerts


def later(alerts: list[Alert], hours: int) -> list[Alert]:
    return [replace(a, timestamp=a.timestamp + timedelta(hours=hours)) for a in alerts]


def test_new_only_reports_first_seen_pairs_and_always_credential_reads(tmp_path: Path) -> None:
    alerts = sample()
    high = [a for a in alerts if a.severity >= Severity.HIGH]
    with StateStore.open(tmp_path / "s.duckdb") as store:
        first = store.remember(alerts, new_only=True)
        assert len(first.reported) == 17 and first.repeats == 1  # one medium pair occurs twice in the sample
        assert first.new_pairs == len({pair_key(a) for a in alerts}) == 17
        second = store.remember(later(alerts, 24), new_only=True)
    assert second.known_pairs == 4 and second.duplicates == 0
    assert [a.severity for a in second.reported] == [a.severity for a in high]
    assert all(a.severity >= Severity.HIGH for a in second.reported) and len(second.reported) == 14


def test_alerts_are_deduplicated_across_runs_and_scans_recorded(tmp_path: Path) -> None:
    alerts = sample()
    path = tmp_path / "s.duckdb"
    with StateStore.open(path) as store:
        assert len(store.remember(alerts, inputs=["a.jsonl"]).reported) == 18
        again = store.remember(alerts + later(alerts[:2], 1), inputs=["a.jsonl", "b.jsonl"])
    assert again.duplicates == 18 and len(again.reported) == 2
    with StateStore.open(path, read_only=True) as store:
        _, scans = store.query("SELECT id, alerts, reported, duplicates, inputs FROM scans ORDER BY id")
        _, count = store.query("SELECT count(*) FROM alerts")
    assert scans == [(1, 18, 18, 0, "a.jsonl"), (2, 20, 2, 18, "a.jsonl\nb.jsonl")]
    assert count == [(20,)]
    assert fingerprint(alerts[0]) == fingerprint(replace(alerts[0], source=replace(alerts[0].source, file="other")))


def test_cli_state_new_only_and_hunt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMDS_DETECT_STATE", str(tmp_path / "default.duckdb"))
    assert default_state_path() == tmp_path / "default.duckdb"
    first = CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl", "--remember"])
    assert first.exit_code == 0, first.stderr
    assert len(first.stdout.splitlines()) == 18 and "scan #1, 17 new" in first.stderr
    second = CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl", "--new-only"])
    assert second.stdout == "" and "already reported by an earlier run: 18" in second.stderr
    assert "alerts: 0 (critical=0, high=0" in second.stderr
    table = CliRunner().invoke(main, ["hunt", "hosts-per-process"])
    assert table.exit_code == 0 and table.stdout.splitlines()[1].startswith("/usr/bin/curl")
    rows = [json.loads(line) for line in CliRunner().invoke(main, ["hunt", "credential-reads", "--output",
                                                                     "json"]).stdout.splitlines()]
    assert rows == [{"day": "2026-11-27", "host": "web-01.contoso.local", "reads": 11, "executables": 7,
                     "path_classes": "credential,token,userdata", "worst": "high"}]
    agents = list(csv.DictReader(io.StringIO(CliRunner().invoke(main, ["hunt", "unexpected-agents", "--output",
                                                                          "csv"]).stdout)))
    assert [(r["executable"], r["alerts"]) for r in agents] == [("/tmp/.cache/cloud-init", "2")]
    rare = CliRunner().invoke(main, ["hunt", "rare-processes", "--output", "json", "--max-hosts", "1"]).stdout
    assert len(rare.splitlines()) == 7  # every executable is on this one host (processless alerts excluded)
    missing = CliRunner().invoke(main, ["hunt", "rare-processes", "--state", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2 and "no such store" in missing.stderr


def test_state_options_are_refused_with_follow(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["scan", "--follow", str(SAMPLE), "--state", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "not with --follow" in result.stderr
