"""Probing aggregation: one client's many attempts in a short time become one alert listing what it covers;
deterministic (input order, worker processes), bounded (listing caps counted), and only what it should fold."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from weblog_support import LABELS, scan_fixture

from imds_detect import ScanOptions, Severity, scan
from imds_detect.detect.probing import MAX_LISTED, MIN_ALERTS, WINDOW, fold_probing
from imds_detect.model import Alert, Endpoint, ProcessInfo, RequestInfo, SourceRef

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 27, 8, tzinfo=UTC)


def _alert(client: str, seconds: float, line: int, raw: str = "169.254.169.254", path: str = "/latest/user-data",
           severity: Severity = Severity.HIGH, rule: str = "imds-http-request", outcome: str = "failed") -> Alert:
    return Alert(rule, "t", severity, T0 + timedelta(seconds=seconds), "", "", ProcessInfo(),
                 Endpoint("aws", raw, "169.254.169.254", None, path, "userdata"), [f"reason {line}"],
                 SourceRef("access", "a.log", line, line - 1), request=RequestInfo(client=client, outcome=outcome))


def test_the_probing_fixture_folds_into_one_alert_per_window() -> None:
    result = scan_fixture("access/probing.log")
    probes = sorted((a for a in result.alerts if a.rule_id == "imds-http-probing"), key=lambda a: a.source.line)
    expected = LABELS["access/probing.log"]["probing"]
    assert [(a.request.client, a.source.line, a.group.count, a.severity.label) for a in probes] == [  # type: ignore[union-attr]
        (e["client"], e["first_line"], e["count"], e["severity"]) for e in expected]
    individual = sorted(a.source.line for a in result.alerts if a.rule_id == "imds-http-request")
    assert individual == sorted(int(line) for line in LABELS["access/probing.log"]["alerts"])
    first = probes[0]
    assert first.group is not None
    assert len(first.group.records) == MAX_LISTED and first.group.not_listed["records"] == 40 - MAX_LISTED
    assert [ref.line for ref in first.group.records] == list(range(1, MAX_LISTED + 1))
    assert len(first.group.spellings) == 32 and len(first.group.paths) == 8
    assert first.group.as_dict()["records"][0].endswith("probing.log:1")
    assert first.request is not None and first.request.outcome == "failed"
    assert any(reason.startswith("covers records: ") and reason.endswith(" and 8 more") for reason in first.reasons)
    assert result.summary.probing == Counter({"groups": 2, "folded": 46, "not-listed": 8})
    assert "46 alert(s) folded into 2 probing alert(s)" in result.summary.render()


def test_a_window_needs_enough_alerts_within_its_span() -> None:
    near = [_alert("c", seconds, line) for line, seconds in enumerate([0, 60, 120, 180], start=1)]
    assert fold_probing(list(near), Counter()) == near  # four: not probing
    edge = [*near, _alert("c", WINDOW.total_seconds(), 5)]
    folded = fold_probing(edge, Counter())
    assert [a.rule_id for a in folded] == ["imds-http-probing"]  # the window includes its end
    late = [*near, _alert("c", WINDOW.total_seconds() + 1, 5)]
    assert fold_probing(list(late), Counter()) == late


def test_only_unsuppressed_http_alerts_with_a_client_are_folded() -> None:
    others = [_alert("c", i, i + 1, rule="imds-dns-query") for i in range(MIN_ALERTS)]
    no_client = [_alert("", i, i + 10) for i in range(MIN_ALERTS)]
    suppressed = [replace(_alert("d", i, i + 20), suppressed_by="x") for i in range(MIN_ALERTS)]
    alerts = others + no_client + suppressed
    assert fold_probing(list(alerts), Counter()) == alerts


def test_folding_does_not_depend_on_input_order() -> None:
    alerts = [_alert(f"10.0.0.{i % 3}", i * 7.0, i + 1, raw=f"spelling-{i % 4}", path=f"/p{i % 5}")
              for i in range(60)]
    reference = {(a.request.client, a.source.line, a.group.count if a.group else 0)  # type: ignore[union-attr]
                 for a in fold_probing(list(alerts), Counter())}
    for seed in range(5):
        shuffled = list(alerts)
        random.Random(seed).shuffle(shuffled)
        folded = fold_probing(shuffled, Counter())
        assert {(a.request.client, a.source.line, a.group.count if a.group else 0)  # type: ignore[union-attr]
                for a in folded} == reference


def test_many_spellings_raise_a_low_run_to_medium_and_the_scan_window_applies() -> None:
    low = [_alert("c", i, i + 1, raw=f"spelling-{i}", severity=Severity.LOW) for i in range(6)]
    folded = fold_probing(list(low), Counter())
    assert [a.severity for a in folded] == [Severity.MEDIUM]
    assert any("filter evasion" in reason for reason in folded[0].reasons)
    counts: Counter[str] = Counter()
    outside = fold_probing(list(low), counts, eligible=lambda moment: False)
    assert outside == low and not counts


def _probing_file(tmp_path: Path) -> tuple[Path, int]:
    """A 6 MB access log with one client's 30 attempts spread over the whole file (across any cut)."""
    out = tmp_path / "big.log"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_weblogs.py"), "--size", "6MB", "--out",
                    str(out), "--ratio", str(10**9), "--generate-only"], check=True, capture_output=True)
    lines = out.read_text().splitlines()
    step = len(lines) // 30
    for index in range(30):
        moment = datetime(2026, 11, 27, 0, 1, tzinfo=UTC) + timedelta(seconds=5 * index)
        lines.insert(index * step, f'203.0.113.99 - - [{moment.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "GET /fetch?url='
                     f'http://{["169.254.169.254", "2852039166", "0xa9fea9fe"][index % 3]}/latest/user-data HTTP/1.1" '
                     '400 0 "-" "scanner"')
    out.write_text("\n".join(lines) + "\n")
    return out, out.stat().st_size


def test_worker_processes_fold_the_same(tmp_path: Path) -> None:
    path, size = _probing_file(tmp_path)
    one = scan([str(path)], ScanOptions())
    two = scan([str(path)], ScanOptions(jobs=2, chunk_bytes=size // 3))
    assert [a.as_dict() for a in two.alerts] == [a.as_dict() for a in one.alerts]
    assert two.summary.as_dict() == one.summary.as_dict()
    assert one.summary.probing["folded"] == 30
    assert [(a.rule_id, a.group.count if a.group else 0) for a in one.alerts] == [("imds-http-probing", 30)]
