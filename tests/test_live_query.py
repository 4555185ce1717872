"""Live queries (Sentinel / Defender XDR) against recorded answers through the Azure SDK's own transport."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.monitor.query")
pytest.importorskip("azure.identity")

from click.testing import CliRunner
from live_transport import FixedCredential, recorded_transport

from imds_detect.cli import main
from imds_detect.engine.scan import ScanOptions, scan
from imds_detect.engine.window import parse_bound
from imds_detect.live_query import LiveQueryError
from imds_detect.live_query import sentinel as sentinel_module
from imds_detect.live_query.candidates import candidate_query, gate_regex
from imds_detect.live_query.defender import DefenderSource, make_pipeline
from imds_detect.live_query.runner import live_scan, live_window
from imds_detect.live_query.sentinel import SentinelSource, make_client

ROOT = Path(__file__).resolve().parent.parent
LIVE = Path(__file__).resolve().parent / "fixtures" / "live"
SAMPLE = ROOT / "samples" / "defender-sample.jsonl"
START = datetime(2026, 11, 27, tzinfo=UTC)
END = datetime(2026, 11, 28, tzinfo=UTC)
PARTIAL = {"code": "PartialError", "message": "There were some errors when processing your query.",
           "details": [{"code": "EngineError", "message": "Query result set has exceeded the internal limit",
                        "innererror": {"code": "E_QUERY_RESULT_SET_TOO_LARGE"}}]}


def answer(name: str) -> bytes:
    return (LIVE / name).read_bytes()


def alert_keys(alerts: list[Any]) -> list[tuple[str, str, str]]:
    return sorted((a.rule_id, a.severity.label, a.timestamp.isoformat()) for a in alerts)


def sentinel_replies(calls: list[bytes], truncate_first: bool = True) -> Any:
    """The recorded workspace: the rows of both recorded answers inside the requested timespan; the first
    answer is truncated (partial) when `truncate_first`, as Log Analytics does past its result limits."""
    tables = [json.loads(answer(f"sentinel-answer-{index}.json"))["tables"][0] for index in (0, 1)]
    columns = tables[0]["columns"]
    rows = tables[0]["rows"] + tables[1]["rows"]
    at = [c["name"] for c in columns].index("TimeGenerated")

    def reply(method: str, url: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        calls.append(body)
        if truncate_first and len(calls) == 1:
            partial = {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": rows[:3]}], "error": PARTIAL}
            return 200, json.dumps(partial).encode(), {}
        low, high = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in json.loads(body)["timespan"].split("/"))
        inside = [r for r in rows if low <= datetime.fromisoformat(r[at].replace("Z", "+00:00")) < high]
        return 200, json.dumps({"tables": [{"name": "PrimaryResult", "columns": columns, "rows": inside}]}).encode(), {}

    return reply


def test_sentinel_splits_a_truncated_slice_and_finds_what_the_file_scan_finds() -> None:
    calls: list[bytes] = []
    transport, session = recorded_transport(sentinel_replies(calls))
    client = make_client(FixedCredential(), transport=transport, retry_total=0)
    warnings: list[str] = []
    result = live_scan(SentinelSource("ws-1", client), "sentinel:ws-1", START, END, ScanOptions(), timedelta(days=1),
                       warnings.append)
    assert len(calls) == 3
    assert session.sent[0][1] == "https://api.loganalytics.io/v1/workspaces/ws-1/query"
    first, second = json.loads(calls[1]), json.loads(calls[2])
    assert first["timespan"].startswith("2026-11-27T00:00:00") and second["timespan"].startswith("2026-11-27T12:00:00")
    assert "matches regex Gate" in json.loads(calls[0])["query"]
    assert len(warnings) == 1 and "truncated" in warnings[0]
    local = scan([str(SAMPLE)])
    assert len(result.alerts) == 18
    assert alert_keys(result.alerts) == alert_keys(local.alerts)
    assert {a.source.file for a in result.alerts} == {"sentinel:ws-1"}


def test_defender_advanced_hunting_through_graph() -> None:
    transport, session = recorded_transport(lambda m, u, b: (200, answer("defender-answer.json"), {}))
    source = DefenderSource(make_pipeline(FixedCredential(), transport=transport, retry_total=0))
    result = live_scan(source, "defender", START, END, ScanOptions(), timedelta(days=1))
    method, url, body = session.sent[0]
    assert (method, url) == ("POST", "https://graph.microsoft.com/v1.0/security/runHuntingQuery")
    assert "Timestamp >= datetime(2026-11-27T00:00:00Z)" in json.loads(body)["Query"]
    assert alert_keys(result.alerts) == alert_keys(scan([str(SAMPLE)]).alerts)


def test_throttling_and_authentication_errors_are_one_clear_line() -> None:
    throttled, _ = recorded_transport(lambda m, u, b: (429, b'{"error":{"code":"TooManyRequests"}}',
                                                       {"Retry-After": "30"}))
    client = make_client(FixedCredential(), transport=throttled, retry_total=0)
    with pytest.raises(LiveQueryError, match=r"throttled \(HTTP 429\).*wait 30 s"):
        SentinelSource("ws", client).fetch(START, END)
    denied, _ = recorded_transport(lambda m, u, b: (403, b'{"error":{"code":"Forbidden","message":"no"}}', {}))
    source = DefenderSource(make_pipeline(FixedCredential(), transport=denied, retry_total=0))
    with pytest.raises(LiveQueryError, match=r"permission denied \(HTTP 403\).*ThreatHunting.Read.All"):
        source.fetch(START, END)

    class NoSignIn(FixedCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.exceptions import ClientAuthenticationError

            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

        get_token_info = get_token  # type: ignore[assignment]

    ok, _ = recorded_transport(lambda m, u, b: (200, b"{}", {}))
    with pytest.raises(LiveQueryError, match=r"authentication failed.*az login"):
        SentinelSource("ws", make_client(NoSignIn(), transport=ok, retry_total=0)).fetch(START, END)


def test_cli_sentinel_option(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    transport, _ = recorded_transport(sentinel_replies(calls, truncate_first=False))
    monkeypatch.setattr(sentinel_module, "make_client",
                        lambda credential=None, **kw: make_client(FixedCredential(), transport=transport,
                                                                  retry_total=0))
    result = CliRunner().invoke(main, ["scan", "--sentinel", "ws-1", "--since", "2026-11-27T00:00:00Z", "--until",
                                       "2026-11-28T00:00:00Z", "--output", "jsonl"])
    assert result.exit_code == 0, result.stderr
    assert len(calls) == 4  # four 6-hour slices
    assert len([line for line in result.stdout.splitlines() if line.strip()]) == 18
    both = CliRunner().invoke(main, ["scan", "--sentinel", "ws", "--defender"])
    assert both.exit_code == 2 and "give one" in both.stderr
    with_path = CliRunner().invoke(main, ["scan", "--defender", str(SAMPLE)])
    assert with_path.exit_code == 2 and "give no PATH" in with_path.stderr


def test_window_counts_back_from_now() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert live_window(parse_bound("24h"), None, now) == (now - timedelta(hours=24), now)
    assert live_window(None, None, now)[0] == now - timedelta(hours=24)
    with pytest.raises(LiveQueryError, match="empty time window"):
        live_window(parse_bound("2026-11-29T00:00:00Z"), None, now)


def test_gate_keeps_every_alerting_sample_row() -> None:
    gate = re.compile(gate_regex())
    assert gate.search("curl http://0251.0376.0251.0376/latest ")
    assert gate.search("wget http://[::ffff:a9fe:a9fe]/ ")
    assert not gate.search("svchost.exe -k netsvcs -p ")
    query = candidate_query(START, END)
    assert query.count("matches regex Gate") == 3 and "union NetworkRows, ProcessRows, DeviceEventRows" in query


KUSTO = ROOT / "tools" / "kusto"


@pytest.mark.skipif(not (KUSTO / "node_modules" / "@kusto" / "language-service-next").exists(),
                    reason="@kusto/language-service-next is not installed (npm ci in tools/kusto)")
def test_candidate_query_has_no_kusto_diagnostics() -> None:
    import subprocess

    queries = [{"name": "defender", "query": candidate_query(START, END)},
               {"name": "sentinel", "query": candidate_query(START, END, "TimeGenerated")}]
    done = subprocess.run(["node", str(KUSTO / "check.js")], input=json.dumps({"queries": queries}),
                          capture_output=True, text=True, timeout=300, check=True)
    diagnostics = {item["name"]: item["diagnostics"] for item in json.loads(done.stdout)}
    assert diagnostics == {"defender": [], "sentinel": []}
