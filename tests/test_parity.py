"""Parity with the reference Sentinel query (tests/fixtures/parity/reference.kql) on one synthetic fixture.

The reference query is run as written, unchanged, by ``duckdb-kql`` over DuckDB tables ``DeviceNetworkEvents``
and ``DeviceProcessEvents`` loaded from ``defender-parity.jsonl`` (Timestamp as TIMESTAMP, UTC). Its
``ago(24h)`` is pinned to the newest row with ``query_now=``, which is how ``imds-detect --since 24h`` reads
offline files. The query projects no row id, so returned rows are identified by their (unique) Timestamp.

imds-detect runs on the same file through the library API (default allowlist, every severity). Rows are
named by their ``ReportId`` (see tests/fixtures/parity/make_parity.py for what each one is).

Every row sits in exactly one of the category dicts below, each with a one-line reason. PARITY.md is rendered
from them and from both engines' actual results; ``python tests/test_parity.py`` rewrites it.
"""

from __future__ import annotations

import json
import runpy
import shutil
import sys
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

duckdb_kql = pytest.importorskip("duckdb_kql")
pytest.importorskip("duckdb")  # duckdb_kql imports without it, but needs it to run a query

from imds_detect import ScanOptions, Severity, scan  # noqa: E402
from imds_detect.engine.window import parse_bound  # noqa: E402

PARITY = Path(__file__).resolve().parent / "fixtures" / "parity"
FIXTURE = PARITY / "defender-parity.jsonl"
REFERENCE = PARITY / "reference.kql"
PARITY_MD = PARITY / "PARITY.md"

# Columns the reference query touches (plus ReportId, which it never reads, for the coverage checks).
NETWORK_COLUMNS = {
    "Timestamp": "TIMESTAMP", "DeviceName": "VARCHAR", "InitiatingProcessFileName": "VARCHAR",
    "InitiatingProcessCommandLine": "VARCHAR", "RemoteIP": "VARCHAR", "RemotePort": "BIGINT",
    "RemoteUrl": "VARCHAR", "ReportId": "BIGINT",
}
PROCESS_COLUMNS = {
    "Timestamp": "TIMESTAMP", "DeviceName": "VARCHAR", "AccountName": "VARCHAR", "FileName": "VARCHAR",
    "ProcessCommandLine": "VARCHAR", "InitiatingProcessFileName": "VARCHAR", "ReportId": "BIGINT",
}

# The reference's lists, as written in reference.kql (used to check that the fixture covers each entry).
REFERENCE_ENDPOINTS = ("169.254.169.254", "fd00:ec2::254", "metadata.google.internal")
REFERENCE_ALLOWLIST = ("AzureGuestAgent.exe", "WindowsAzureGuestAgent.exe", "WaAppAgent.exe", "aws-cfn-bootstrap",
                       "cloud-init", "amazon-ssm-agent", "google_guest_agent")
REFERENCE_TERMS = ("169.254.169.254", "metadata/instance", "metadata/v1", "meta-data", "latest/meta-data",
                   "latest/dynamic", "instance-identity", "iam/security-credentials", "computeMetadata",
                   "metadata.google.internal", "imds.azure.com")

# ---------------------------------------------------------------------------------------------- expectations

# (a) What the reference returns on this fixture: its documented behaviour, checked against the engine.
REFERENCE_RETURNS = {
    101, 102, 103, 104, 105, 106, 107,  # pattern 1: endpoints (incl. GCP DNS and NTP on 169.254.169.254)
    124, 125, 126, 128, 130, 132,  # pattern 1: genuine agents whose process name is not on its name list
    *range(201, 216),  # pattern 2: malicious command lines
    *range(241, 256),  # pattern 2: benign mentions
    261,  # pattern 2 has no allowlist: EC2 Instance Connect
}

# Reference returns it, imds-detect alerts.
BOTH_ALERT = {
    101: "curl to the IMDS address",
    102: "IMDS over IPv6 from an interpreter",
    103: "GCP metadata name as the remote end, from curl",
    104: "RemoteUrl carries the IMDS credential URL (SSRF through a proxy)",
    105: "a web application server connecting to IMDS (SSRF)",
    201: "AWS role credentials",
    202: "Azure managed-identity token",
    203: "Azure instance metadata",
    204: "GCP service-account token",
    205: "DigitalOcean user-data",
    206: "AWS identity document",
    207: "managed-identity token path with the Metadata header: only IMDS answers it",
    208: "PowerShell cmdlet fetching an Azure token",
    209: "interpreter fetching AWS role credentials",
    210: "a child of the SSM agent is never excused by its parent",
    211: "IMDSv2 token PUT",
    212: "bash /dev/tcp request to IMDS",
    213: "octal host: imds-detect decodes it; the reference matches the path terms",
    214: "Alibaba role credentials: the reference matches the shared /latest/meta-data path",
    215: "hidden host with the credential path: both match the path",
}

# Reference returns it, imds-detect does not alert, by design.
NOT_ALERTED_BY_DESIGN = {
    106: "GCP VPC DNS resolver on 169.254.169.254:53 is not the metadata API",
    107: "GCP NTP on 169.254.169.254:123 is not the metadata API",
    124: "legitimate agent from its genuine path (aws-cfn-bootstrap's cfn-hup)",
    125: "legitimate agent from its genuine path: python3 running /opt/aws/bin/cfn-init",
    126: "legitimate agent from its genuine path (cfn-init.exe under Program Files\\Amazon\\cfn-bootstrap)",
    128: "legitimate agent from its genuine path: python3 running /usr/bin/cloud-init",
    130: "legitimate agent from its genuine path (amazon-ssm-agent.exe under Program Files\\Amazon\\SSM)",
    132: "legitimate agent from its genuine path (GCEWindowsAgent.exe under Program Files\\Google)",
    241: "benign mention: cat of a local file named meta-data",
    242: "benign mention: grep in a local file named meta-data",
    243: "benign mention: cloud-init reading its local NoCloud seed file",
    244: "benign mention: an application's own /metadata/v1 URL on its own host",
    245: "benign mention: a package manager query about a file named meta-data",
    246: "benign mention: grep for the address in a log",
    247: "benign mention: iptables rule blocking IMDS (hardening), nothing is fetched",
    248: "benign mention: netsh firewall rule blocking IMDS (hardening), nothing is fetched",
    249: "benign mention: findstr for a name in a config file",
    250: "benign mention: grep in source code",
    251: "benign mention: grep in /etc/hosts",
    252: "benign mention: grep in cloud-init's sources",
    253: "benign mention: ripgrep in botocore's sources",
    254: "benign mention: an analyst greps web logs for SSRF attempts",
    255: "benign mention: an application's own /api/metadata/instance route on localhost:8080",
    261: "legitimate agent: EC2 Instance Connect's curl, pinned by path, parent and user",
}

# Malicious rows the reference does not return; imds-detect must alert.
REFERENCE_MISSES = {
    151: "IPv4-mapped RemoteIP ::ffff:169.254.169.254 is not in the reference's exact list",
    152: "ECS task-role credential address 169.254.170.2",
    153: "Alibaba metadata address 100.100.100.200",
    154: "EKS Pod Identity address 169.254.170.23",
    155: "Azure Arc HIMDS on 127.0.0.1:40342",
    221: "hex host 0xa9fea9fe, path not in the term list",
    222: "decimal host 2852039166, path not in the term list",
    223: "IPv6-mapped host [::ffff:a9fe:a9fe], path not in the term list",
    224: "ECS credentials through $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    225: "Alibaba IMDSv2-style token PUT",
    226: "percent-encoded host in PowerShell Invoke-RestMethod",
    227: "Azure Arc token endpoint on localhost:40342 (/metadata/identity is not a term)",
    228: "App Service $IDENTITY_ENDPOINT with X-IDENTITY-HEADER",
    229: "wildcard DNS name 169-254-169-254.nip.io",
    230: "full-width digits",
}

# (d) Renamed binaries: the reference's name-only allowlist excuses them; imds-detect must alert (high).
RENAMED_BINARIES = {
    141: "AzureGuestAgent.exe from C:\\Users\\Public",
    142: "WindowsAzureGuestAgent.exe from C:\\Users\\Public\\Downloads",
    143: "WaAppAgent.exe from C:\\Windows\\Temp",
    144: "aws-cfn-bootstrap from /tmp",
    145: "cloud-init from /tmp/.x",
    146: "amazon-ssm-agent from /dev/shm",
    147: "google_guest_agent from /var/tmp",
}

# Genuine agents both excuse: the reference by name, imds-detect by path (suppressed, with this entry).
EXCUSED_BY_BOTH = {
    121: "genuine Azure guest agent path",
    122: "genuine Azure guest agent path",
    123: "genuine Azure guest agent path",
    127: "genuine cloud-init path",
    129: "genuine SSM agent path",
    131: "genuine Google guest agent path",
}

# Neither flags it: neighbours of the metadata service and background traffic.
QUIET_BOTH = {
    108: "AWS Route 53 Resolver neighbour 169.254.169.253 is not the metadata API",
    109: "AWS Time Sync neighbour 169.254.169.123 is not the metadata API",
    110: "Azure WireServer 168.63.129.16 is not the metadata API",
    111: "ordinary HTTPS",
}

# Malicious but older than ago(24h): the reference skips them; imds-detect alerts when no window is set.
OUTSIDE_WINDOW = {
    301: "exactly 24h before the newest row: ago(24h) is strict (Timestamp > now-24h)",
    302: "25h before the newest row",
    303: "30h before the newest row",
}

# The allowlist entry expected to suppress each genuine agent row.
EXPECTED_SUPPRESSION = {
    121: "azure-windows-guest-agent", 122: "azure-windows-guest-agent", 123: "azure-windows-guest-agent",
    124: "aws-cfn-bootstrap", 126: "aws-cfn-bootstrap", 127: "cloud-init", 128: "cloud-init-script",
    129: "aws-ssm-agent", 130: "aws-ssm-agent", 131: "gcp-guest-agent", 132: "gcp-guest-agent",
    261: "aws-ec2-instance-connect",
}

CATEGORIES: dict[str, dict[int, str]] = {
    "both alert": BOTH_ALERT,
    "not alerted by design": NOT_ALERTED_BY_DESIGN,
    "reference misses": REFERENCE_MISSES,
    "renamed binary": RENAMED_BINARIES,
    "excused by both": EXCUSED_BY_BOTH,
    "quiet in both": QUIET_BOTH,
    "outside 24h": OUTSIDE_WINDOW,
}
SHOULD_ALERT = {**BOTH_ALERT, **REFERENCE_MISSES, **RENAMED_BINARIES, **OUTSIDE_WINDOW}
SHOULD_NOT_ALERT = {**NOT_ALERTED_BY_DESIGN, **EXCUSED_BY_BOTH, **QUIET_BOTH}

# ---------------------------------------------------------------------------------------------- running both


def _time(text: str) -> datetime:
    """A Defender time ('...T12:00:00.1234560Z') as a naive UTC datetime (microseconds; the fixture's 7th digit
    is always 0)."""
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f")


@cache
def fixture_rows() -> tuple[dict[str, Any], ...]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


@cache
def descriptions() -> dict[int, str]:
    """ReportId -> what the row is, from the fixture's generator."""
    return dict(runpy.run_path(str(PARITY / "make_parity.py"))["ROWS"])


def is_process_row(row: dict[str, Any]) -> bool:
    """The table, as the Defender adapter infers it without a Type column: from the ActionType."""
    return row["ActionType"] == "ProcessCreated"


def newest() -> datetime:
    return max(_time(row["Timestamp"]) for row in fixture_rows())


def connection() -> Any:
    con = duckdb_kql.connect()
    for table, columns, wanted in (("DeviceNetworkEvents", NETWORK_COLUMNS, False),
                                   ("DeviceProcessEvents", PROCESS_COLUMNS, True)):
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in columns.items())})")
        values = [
            [_time(row["Timestamp"]) if name == "Timestamp" else row.get(name) for name in columns]
            for row in fixture_rows() if is_process_row(row) == wanted
        ]
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", values)
    return con


@cache
def reference_rows() -> frozenset[int]:
    """ReportIds of the rows the reference query returns (matched back by their unique Timestamp)."""
    by_time = {_time(row["Timestamp"]): row["ReportId"] for row in fixture_rows()}
    query_now = newest().replace(tzinfo=UTC)
    relation = duckdb_kql.kql(connection(), REFERENCE.read_text(encoding="utf-8"), query_now=query_now)
    stamps = [row[0] for row in relation.select("Timestamp").fetchall()]
    assert len(stamps) == len(set(stamps)), "the reference returned a row twice"
    return frozenset(by_time[stamp] for stamp in stamps)


def kql_ids(query: str) -> set[int]:
    """ReportIds returned by a KQL query over the fixture tables (for coverage checks)."""
    query_now = newest().replace(tzinfo=UTC)
    return {row[0] for row in duckdb_kql.kql(connection(), query, query_now=query_now).fetchall()}


@cache
def imds_results() -> tuple[dict[int, list[Any]], dict[int, list[Any]]]:
    """(alerts, suppressed alerts) of imds-detect by ReportId."""
    ids = [row["ReportId"] for row in fixture_rows()]
    result = scan([str(FIXTURE)], ScanOptions(min_severity=Severity.INFORMATIONAL, show_suppressed=True))
    assert not result.summary.skipped, f"the adapter skipped rows: {dict(result.summary.skipped)}"
    alerts: dict[int, list[Any]] = defaultdict(list)
    suppressed: dict[int, list[Any]] = defaultdict(list)
    for alert in result.alerts:
        alerts[ids[alert.source.record]].append(alert)
    for alert in result.suppressed:
        suppressed[ids[alert.source.record]].append(alert)
    return dict(alerts), dict(suppressed)


def _label(rid: int) -> str:
    return f"{rid} ({descriptions()[rid]})"


def _rules(alerts: list[Any]) -> str:
    return ", ".join(sorted({alert.rule_id for alert in alerts}))


# ---------------------------------------------------------------------------------------------- the fixture


def test_fixture_matches_its_generator(tmp_path: Path) -> None:
    shutil.copy(PARITY / "make_parity.py", tmp_path / "make_parity.py")
    runpy.run_path(str(tmp_path / "make_parity.py"), run_name="__main__")
    assert (tmp_path / FIXTURE.name).read_bytes() == FIXTURE.read_bytes(), "stale: rerun make_parity.py"


def test_every_row_is_in_exactly_one_category() -> None:
    ids = [row["ReportId"] for row in fixture_rows()]
    assert len(ids) == len(set(ids))
    assert len({row["Timestamp"] for row in fixture_rows()}) == len(ids), "Timestamps must be unique"
    placed = [rid for category in CATEGORIES.values() for rid in category]
    assert sorted(placed) == sorted(ids)
    assert set(BOTH_ALERT) | set(NOT_ALERTED_BY_DESIGN) == REFERENCE_RETURNS
    assert set(EXPECTED_SUPPRESSION) <= set(SHOULD_NOT_ALERT)
    old = {row["ReportId"] for row in fixture_rows() if (newest() - _time(row["Timestamp"])).total_seconds() >= 86400}
    assert old == set(OUTSIDE_WINDOW)


def test_fixture_covers_every_entry_of_the_reference() -> None:
    rows = fixture_rows()
    network = [row for row in rows if not is_process_row(row) and row["ReportId"] not in OUTSIDE_WINDOW]
    for endpoint in REFERENCE_ENDPOINTS:
        assert any(row["RemoteIP"] == endpoint for row in network), endpoint
    assert any("169.254.169.254" in row["RemoteUrl"] and row["RemoteIP"] != "169.254.169.254" for row in network)
    for name in REFERENCE_ALLOWLIST:
        named = {row["ReportId"] for row in network if row["InitiatingProcessFileName"].lower() == name.lower()}
        assert named & set(RENAMED_BINARIES), f"no renamed {name}"
        if name != "aws-cfn-bootstrap":  # a package name: no genuine process is called that (rows 124-126)
            assert named & set(EXCUSED_BY_BOTH), f"no genuine {name}"
    malicious = set(SHOULD_ALERT)
    benign = set(SHOULD_NOT_ALERT)
    for term in REFERENCE_TERMS:
        hits = kql_ids(f'DeviceProcessEvents | where ProcessCommandLine has "{term}" | project ReportId')
        assert hits & malicious, f"no malicious command line has {term!r}"
        assert hits & benign, f"no benign command line has {term!r}"


# ---------------------------------------------------------------------------------------------- (a) - (d)


def test_a_reference_returns_the_documented_rows() -> None:
    returned = reference_rows()
    assert returned == REFERENCE_RETURNS, (
        f"unexpectedly returned: {sorted(returned - REFERENCE_RETURNS)}; "
        f"unexpectedly not returned: {sorted(REFERENCE_RETURNS - returned)}"
    )


def test_b_every_reference_row_alerts_or_is_justified() -> None:
    alerts, _ = imds_results()
    unexplained = sorted(reference_rows() - set(alerts) - set(NOT_ALERTED_BY_DESIGN))
    assert not unexplained, "reference rows imds-detect does not alert on: " + "; ".join(map(_label, unexplained))


def test_b_rows_not_alerted_by_design_really_do_not_alert() -> None:
    alerts, _ = imds_results()
    wrong = [f"{_label(rid)} -> {_rules(alerts[rid])}; expected quiet: {NOT_ALERTED_BY_DESIGN[rid]}"
             for rid in sorted(NOT_ALERTED_BY_DESIGN) if rid in alerts]
    assert not wrong, "imds-detect false positives (detector bugs?):\n" + "\n".join(wrong)


def test_c_every_malicious_row_the_reference_misses_alerts() -> None:
    alerts, _ = imds_results()
    assert not set(REFERENCE_MISSES) & reference_rows()
    missed = [_label(rid) for rid in sorted(REFERENCE_MISSES) if rid not in alerts]
    assert not missed, "imds-detect misses them too: " + "; ".join(missed)


def test_d_renamed_agent_binaries_alert_high() -> None:
    alerts, _ = imds_results()
    assert not set(RENAMED_BINARIES) & reference_rows(), "the reference's name allowlist should excuse them"
    for rid in sorted(RENAMED_BINARIES):
        assert rid in alerts, f"renamed binary not alerted: {_label(rid)}"
        assert max(alert.severity for alert in alerts[rid]) >= Severity.HIGH, _label(rid)


# ---------------------------------------------------------------------------------------------- every row


@pytest.mark.parametrize("rid", sorted(SHOULD_ALERT) + sorted(SHOULD_NOT_ALERT))
def test_row_outcome(rid: int) -> None:
    alerts, suppressed = imds_results()
    alerted = rid in alerts
    if rid in SHOULD_ALERT:
        assert alerted, f"row {_label(rid)} should alert: {SHOULD_ALERT[rid]}"
        return
    assert not alerted, (
        f"row {_label(rid)} alerts ({_rules(alerts.get(rid, []))}) but should not: {SHOULD_NOT_ALERT[rid]}"
    )
    if rid in EXPECTED_SUPPRESSION:
        entries = {alert.suppressed_by for alert in suppressed.get(rid, [])}
        assert entries == {EXPECTED_SUPPRESSION[rid]}, f"row {_label(rid)} suppressed by {entries}"


def test_since_24h_drops_what_ago_24h_drops() -> None:
    """`--since 24h` counts back from the newest event like ago(24h) with query_now pinned to it.

    imds-detect's bound is inclusive (a row exactly 24h old is kept), ago(24h) with `>` is strict: row 301.
    """
    ids = [row["ReportId"] for row in fixture_rows()]
    result = scan([str(FIXTURE)], ScanOptions(min_severity=Severity.INFORMATIONAL, since=parse_bound("24h")))
    kept = {ids[alert.source.record] for alert in result.alerts}
    assert kept & set(OUTSIDE_WINDOW) == {301}
    assert kept == (set(imds_results()[0]) - set(OUTSIDE_WINDOW)) | {301}


# ---------------------------------------------------------------------------------------------- PARITY.md


def _imds_cell(rid: int) -> str:
    alerts, suppressed = imds_results()
    if rid in alerts:
        return f"alert ({_rules(alerts[rid])})"
    if rid in suppressed:
        return "suppressed (" + ", ".join(sorted({str(a.suppressed_by) for a in suppressed[rid]})) + ")"
    return "no alert"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("$", "\\$")


def render_parity_md() -> str:
    alerts, _ = imds_results()
    returned = reference_rows()
    category = {rid: name for name, rows in CATEGORIES.items() for rid in rows}
    why = {rid: reason for rows in CATEGORIES.values() for rid, reason in rows.items()}
    lines = [
        "# Parity with the reference Sentinel query",
        "",
        "Generated by `python tests/test_parity.py` from `tests/test_parity.py` (expectations), `make_parity.py`",
        "(what each row is) and the actual results of both engines; a test checks this file is current.",
        "",
        "- reference: `reference.kql` run unchanged by duckdb-kql, `ago(24h)` pinned to the newest row.",
        "- imds-detect: `scan()` with the default allowlist, every severity, no time window. With `--since 24h`",
        "  it drops 302 and 303 like `ago(24h)`, but keeps 301 (exactly 24h old): its bound is inclusive.",
        f"- rows: {len(fixture_rows())}; the reference returns {len(returned)}; imds-detect alerts on "
        f"{len(alerts)}; both on {len(returned & set(alerts))}.",
        "- A row marked **DISAGREES** is one where imds-detect does not do what the expectation says "
        "(a failing test).",
        "",
        "| id | table | what | reference | imds-detect | category | why |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in fixture_rows():
        rid = row["ReportId"]
        table = "Process" if is_process_row(row) else "Network"
        expected_alert = rid in SHOULD_ALERT
        flag = "" if (rid in alerts) == expected_alert else "**DISAGREES** "
        lines.append(
            f"| {rid} | {table} | {_cell(descriptions()[rid])} | {'returned' if rid in returned else '-'} "
            f"| {flag}{_imds_cell(rid)} | {category[rid]} | {_cell(why[rid])} |"
        )
    return "\n".join(lines) + "\n"


def test_parity_md_is_current() -> None:
    assert PARITY_MD.read_text(encoding="utf-8") == render_parity_md(), "stale: run python tests/test_parity.py"


if __name__ == "__main__":
    PARITY_MD.write_text(render_parity_md(), encoding="utf-8")
    print(f"wrote {PARITY_MD}", file=sys.stderr)
