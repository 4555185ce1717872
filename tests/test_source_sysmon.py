"""Tests of the Sysmon adapter (Windows EVTX/XML/JSON, Sysmon for Linux syslog) and the shared Windows event reader.

The detections are the real ones, run through the library API on the synthetic fixtures (see
fixtures/sysmon/README.md). No EVTX file written by Windows is available: the `.evtx.gz` fixtures come from the
project's own writer and are read by the real `evtx` parser.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from imds_detect import ScanOptions, Severity, scan
from imds_detect.engine.scan import Scanner
from imds_detect.model import Alert, Event, EventKind
from imds_detect.sources.base import Skip
from imds_detect.sources.registry import BY_NAME, detect_format
from imds_detect.sources.sysmon import SYSMON_ADAPTER
from imds_detect.sources.winevent import (
    CHUNK_SIZE,
    EVTX_HEADER_SIZE,
    record_from_json,
    record_from_xml,
    sniff_kinds,
    variant,
)
from imds_detect.sources.winsec import WINSEC_ADAPTER

FIXTURES = Path(__file__).parent / "fixtures"
SYSMON = FIXTURES / "sysmon"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
AZURE_AGENT = r"C:\WindowsAzure\GuestAgent_2.7.41491.1102_2023-11-07_195038\WindowsAzureGuestAgent.exe"

WINDOWS_VARIANTS = {
    # file: (container, line of each record)
    "eventviewer.xml": ("xml", [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    "wevtutil.xml": ("xml", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    "evtx_dump.xml": ("xml", [3, 43, 83, 123, 163, 208, 239, 270, 300, 340]),
    "evtx.jsonl": ("jsonl", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    "winlogbeat.jsonl": ("jsonl", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    "sysmon.evtx.gz": ("evtx", [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009]),
}


def read(name: str, folder: Path = SYSMON) -> bytes:
    data = (folder / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def parse(data: bytes, name: str = "f", adapter: Any = SYSMON_ADAPTER) -> tuple[list[Event], list[Skip]]:
    skips: list[Skip] = []
    events = list(adapter.parse(io.BytesIO(data), name, skips.append))
    return events, skips


def summary(events: list[Event]) -> list[tuple[Any, ...]]:
    """What a record means, without where it was."""
    return [
        (e.kind, e.timestamp, e.host, e.user, e.action, e.process.name, e.process.path, e.process.pid,
         e.process.command_line, e.process.parent_path, e.process.sha256, e.remote_ip, e.remote_port,
         e.remote_url, e.protocol, e.dns_query, e.source.record, e.source.format)
        for e in events
    ]


def scan_all(path: Path, **options: Any) -> tuple[list[Alert], list[Alert], list[str]]:
    warnings: list[str] = []
    result = scan([str(path)], ScanOptions(min_severity=Severity.INFORMATIONAL, show_suppressed=True,
                                           warn=warnings.append, **options))
    return result.alerts, result.suppressed, warnings


def verdicts(alerts: list[Alert]) -> list[tuple[int, int, str, str]]:
    """(record, line, rule, severity) in file order."""
    return sorted((a.source.record, a.source.line, a.rule_id, a.severity.label) for a in alerts)


# --------------------------------------------------------------------------- format detection


@pytest.mark.parametrize("name", [*WINDOWS_VARIANTS, "many.evtx.gz", "linux_syslog.log", "linux_journal.jsonl",
                                  "malformed.xml", "malformed.jsonl"])
def test_sniff_recognises_every_sysmon_file(name: str) -> None:
    head = read(name)[:65536]
    assert detect_format(head) is SYSMON_ADAPTER
    assert not WINSEC_ADAPTER.sniff(head)  # never both


def test_variants_from_content() -> None:
    assert {name: variant(read(name)[:65536]) for name in WINDOWS_VARIANTS} == {
        name: container for name, (container, _) in WINDOWS_VARIANTS.items()}
    assert variant(read("linux_syslog.log")) == "syslog"
    assert variant(b"<134>May 14 10:11:12 host sysmon: <Event>") == "syslog"
    assert variant(b"   \n") is None


def _shared(relative: str) -> bytes:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path.read_bytes()[:65536]


@pytest.mark.parametrize("head", [
    pytest.param(lambda: (FIXTURES / "mde" / "ah.jsonl").read_bytes(), id="defender-jsonl"),
    pytest.param(lambda: (FIXTURES / "mde" / "ah.csv").read_bytes(), id="defender-csv"),
    pytest.param(lambda: (FIXTURES / "mde" / "graph.json").read_bytes(), id="defender-graph"),
    pytest.param(lambda: _shared("auditd/go-libaudit/auparse_testdata_audit-rhel7.log"), id="auditd"),
    pytest.param(lambda: _shared("weblogs/elastic_examples_apache_logs_combined.log"), id="apache"),
    pytest.param(lambda: _shared("cloudtrail/stratus-detonation-logs/aws.credential-access.ec2-steal-instance-"
                                 "credentials.json"), id="cloudtrail"),
    pytest.param(lambda: b'10.0.0.9 - - [14/May/2024:10:11:12 +0000] "GET /<Event><System><Provider Name="'
                         b'Linux-Sysmon"/><EventID>3</EventID></System></Event> HTTP/1.1" 404 0 "-" "x"\n',
                 id="apache-quoting-sysmon-xml"),
    pytest.param(lambda: b"ElfFile\x00" + bytes(4088), id="evtx-of-another-channel"),
    pytest.param(lambda: b'{"Event": {"System": {"Provider": {"#attributes": {"Name": "PowerShell"}}}}}\n',
                 id="other-provider-json"),
    pytest.param(lambda: b"", id="empty"),
])
def test_sniff_rejects_other_formats(head: Any) -> None:
    data = head()
    assert not SYSMON_ADAPTER.sniff(data)
    assert not WINSEC_ADAPTER.sniff(data)


def test_sniff_decides_between_sysmon_and_security_by_provider() -> None:
    security = read("security.xml", FIXTURES / "winsec")
    assert sniff_kinds(read("eventviewer.xml")) == {"sysmon"}
    assert sniff_kinds(security) == {"winsec", "other"}  # the Eventlog record 1102 counts as "other"
    mixed = (FIXTURES / "winsec" / "forwarded.xml").read_bytes()
    assert sniff_kinds(mixed) == {"sysmon", "winsec"}
    assert detect_format(mixed) is WINSEC_ADAPTER  # winsec reads both providers
    assert detect_format(read("sysmon.evtx.gz")) is SYSMON_ADAPTER
    assert detect_format(read("security.evtx.gz", FIXTURES / "winsec")) is WINSEC_ADAPTER


def test_registry_order_and_names() -> None:
    assert BY_NAME["sysmon"] is SYSMON_ADAPTER and BY_NAME["winsec"] is WINSEC_ADAPTER


# --------------------------------------------------------------------------- Windows: parsing


def test_every_windows_variant_parses_to_the_same_events() -> None:
    parsed = {name: parse(read(name), name) for name in WINDOWS_VARIANTS}
    reference = summary(parsed["eventviewer.xml"][0])
    for name, (_, lines) in WINDOWS_VARIANTS.items():
        events, skips = parsed[name]
        assert summary(events) == reference, name
        expected_lines = [lines[i] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]  # record 7 is skipped
        assert [e.source.line for e in events] == expected_lines, name
        assert [(s.reason, s.line, s.file) for s in skips] == [("unsupported-event-id", lines[7], name)], name
        assert all(e.raw for e in events)


def test_windows_event_fields() -> None:
    events, _ = parse(read("eventviewer.xml"))
    by_record = {e.source.record: e for e in events}
    agent = by_record[0]
    assert agent.kind is EventKind.NETWORK and agent.action == "ConnectionInitiated"
    assert agent.timestamp == datetime(2024, 5, 14, 10, 11, 12, 345000, tzinfo=UTC)  # UtcTime, not SystemTime
    assert (agent.host, agent.user, agent.table) == ("WIN-APP01.contoso.local", "NT AUTHORITY\\SYSTEM", "Sysmon")
    assert (agent.process.path, agent.process.name, agent.process.pid) == (
        AZURE_AGENT, "WindowsAzureGuestAgent.exe", 4000)
    assert (agent.remote_ip, agent.remote_port, agent.remote_url, agent.protocol) == ("169.254.169.254", 80, "", "tcp")
    inbound = by_record[3]
    assert inbound.action == "InboundConnectionAccepted"
    chrome = by_record[8]
    assert chrome.remote_url == "fra16s52-in-f4.1e100.net" and chrome.remote_port == 443
    powershell = by_record[4]
    assert powershell.kind is EventKind.PROCESS and powershell.action == "ProcessCreate"
    assert powershell.process.command_line.startswith("powershell.exe -NoProfile -Command \"Invoke-RestMethod")
    assert powershell.process.parent_path == r"C:\Windows\System32\cmd.exe"
    assert powershell.process.parent_name == "cmd.exe"
    assert powershell.process.sha256 == "a" * 64
    assert powershell.process.user == "CONTOSO\\alice"
    dns = by_record[5]
    assert dns.kind is EventKind.DNS and dns.dns_query == "metadata.google.internal"
    assert dns.process.path == r"C:\Users\Public\updater.exe" and dns.process.pid == 4005
    assert all(e.source.format == "sysmon" for e in events)


def test_utf16_xml_export() -> None:
    text = read("eventviewer.xml").decode("utf-8")
    data = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert data.startswith(b"\xff\xfe")
    assert detect_format(data[:65536]) is SYSMON_ADAPTER
    events, skips = parse(data)
    assert summary(events) == summary(parse(read("eventviewer.xml"))[0])
    assert [s.reason for s in skips] == ["unsupported-event-id"]


def test_two_events_on_one_line_and_blocks_split_anywhere() -> None:
    data = read("wevtutil.xml").replace(b"</Event>\n<Event", b"</Event><Event", 1)
    events, _ = parse(data)
    assert [e.source.line for e in events][:3] == [1, 1, 2]
    reference = summary(events)

    class Trickle(io.RawIOBase):  # returns 7 bytes at a time, like a slow pipe
        def __init__(self, payload: bytes) -> None:
            self.payload = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.payload.read(min(7, len(buffer)))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    skips: list[Skip] = []
    trickled = list(SYSMON_ADAPTER.parse(Trickle(data), "f", skips.append))  # type: ignore[arg-type]
    assert summary(trickled) == reference
    assert [e.source.line for e in trickled] == [e.source.line for e in events]


# --------------------------------------------------------------------------- Windows: detections


EXPECTED_WINDOWS = [  # (record, rule, severity)
    (1, "imds-network-connection", "high"),      # renamed agent in C:\Users\Public
    (2, "imds-network-connection", "medium"),    # curl.exe
    (4, "imds-command-line", "high"),            # PowerShell managed-identity token
    (5, "imds-dns-query", "informational"),      # metadata.google.internal
    (6, "imds-dns-query", "high"),               # 169.254.169.254.nip.io
]


@pytest.mark.parametrize("name", list(WINDOWS_VARIANTS))
def test_windows_detections(name: str) -> None:
    alerts, suppressed, _ = scan_all(SYSMON / name)
    lines = WINDOWS_VARIANTS[name][1]
    assert verdicts(alerts) == [(record, lines[record], rule, severity) for record, rule, severity in EXPECTED_WINDOWS]
    assert [(a.source.record, a.rule_id, a.suppressed_by) for a in suppressed] == [
        (0, "imds-network-connection", "azure-windows-guest-agent")]
    assert suppressed[0].process.path == AZURE_AGENT
    renamed = next(a for a in alerts if a.source.record == 1)
    assert any("named like azure-windows-guest-agent" in reason for reason in renamed.reasons)
    assert all(a.source.format == "sysmon" and a.source.file == str(SYSMON / name) for a in alerts)


def test_default_minimum_severity_hides_the_routine_metadata_name_only() -> None:
    result = scan([str(SYSMON / "evtx.jsonl")])
    assert [(a.source.record, a.rule_id) for a in sorted(result.alerts, key=lambda a: a.source.record)] == [
        (1, "imds-network-connection"), (2, "imds-network-connection"), (4, "imds-command-line"),
        (6, "imds-dns-query")]
    assert result.summary.below_min_severity == 1
    assert result.summary.suppressed == {"azure-windows-guest-agent": 1}


def test_allowlist_off_reports_the_agent() -> None:
    from imds_detect.detect.allowlist import Allowlist

    alerts, suppressed, _ = scan_all(SYSMON / "sysmon.evtx.gz", allowlist=Allowlist([]))
    assert suppressed == []
    agent = next(a for a in alerts if a.source.record == 0)
    assert (agent.rule_id, agent.severity.label, agent.source.line) == ("imds-network-connection", "low", 1000)


# --------------------------------------------------------------------------- Sysmon for Linux


def test_linux_syslog_events_and_skips() -> None:
    events, skips = parse(read("linux_syslog.log"), "syslog")
    assert [(e.source.line, e.source.record, e.kind.value, e.process.path) for e in events] == [
        (1, 0, "network", "/usr/bin/curl"),
        (2, 1, "process", "/usr/bin/python3.10"),
        (3, 2, "network", "/usr/bin/google_guest_agent"),
        (8, 6, "network", "/tmp/google_guest_agent"),
        (9, 7, "process", "/usr/bin/curl"),
    ]
    assert [(s.reason, s.line) for s in skips] == [
        ("truncated-xml", 4), ("no-event", 5), ("unsupported-event-id", 7)]
    curl = events[0]
    assert (curl.host, curl.user, curl.remote_ip, curl.remote_port, curl.action) == (
        "ip-10-0-1-17", "root", "169.254.169.254", 80, "ConnectionInitiated")
    assert curl.timestamp == datetime(2024, 5, 14, 10, 11, 12, 345000, tzinfo=UTC)
    assert "\ufffd" in events[4].process.command_line  # the invalid byte, replaced; the record is kept


def test_linux_syslog_detections() -> None:
    alerts, suppressed, warnings = scan_all(SYSMON / "linux_syslog.log")
    assert verdicts(alerts) == [
        (0, 1, "imds-network-connection", "medium"),
        (1, 2, "imds-command-line", "medium"),
        (6, 8, "imds-network-connection", "high"),
        (7, 9, "imds-command-line", "high"),
    ]
    assert [(a.source.line, a.suppressed_by) for a in suppressed] == [(3, "gcp-guest-agent")]
    assert any(":4: skipped (truncated-xml)" in w for w in warnings)
    assert any(":5: skipped (no-event)" in w for w in warnings)


def test_rsyslog_escapes_in_a_sysmon_syslog_line_are_decoded() -> None:
    """rsyslog writes a newline inside the event as #012 (and a tab as #011): the command line gets them back,
    and the URL after the escaped newline is still found."""
    line = read("linux_syslog.log").split(b"\n")[1]  # the python3 process-create event
    assert b"<Data Name=\"CommandLine\">" in line
    escaped = line.replace(b"<Data Name=\"CommandLine\">", b"<Data Name=\"CommandLine\">sh -c 'true#012#011", 1)
    events, skips = parse(escaped + b"\n", "syslog")
    assert skips == []
    assert events[0].process.command_line.startswith("sh -c 'true\n\t")
    assert "#012" not in events[0].process.command_line
    plain, _ = parse(line + b"\n", "syslog")
    assert events[0].process.command_line.endswith(plain[0].process.command_line)


def test_linux_journal_json() -> None:
    events, skips = parse(read("linux_journal.jsonl"))
    assert skips == []
    assert [(e.source.line, e.process.path, e.host) for e in events] == [
        (1, "/usr/bin/curl", "ip-10-0-1-17"), (2, "/tmp/google_guest_agent", "ip-10-0-1-17")]
    alerts, _, _ = scan_all(SYSMON / "linux_journal.jsonl")
    assert verdicts(alerts) == [(0, 1, "imds-network-connection", "medium"), (1, 2, "imds-network-connection", "high")]


def test_follow_a_growing_sysmon_syslog(tmp_path: Path) -> None:
    lines = read("linux_syslog.log").split(b"\n")
    log = tmp_path / "syslog"
    log.write_bytes(lines[4] + b"\n")  # a non-Sysmon line first
    log.write_bytes(log.read_bytes() + lines[0] + b"\n")
    seen: list[Alert] = []
    stop = threading.Event()
    options = ScanOptions(format="sysmon", on_alert=seen.append)
    worker = threading.Thread(target=lambda: Scanner(options).scan_follow(str(log), stop, idle_exit=10))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(a.source.line, a.rule_id) for a in seen] == [(2, "imds-network-connection")]
        with log.open("ab") as handle:
            handle.write(lines[7] + b"\n")  # the masquerading agent
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(a.source.line, a.severity.label) for a in seen] == [(2, "medium"), (3, "high")]
    finally:
        stop.set()
        worker.join(15)
    assert not worker.is_alive()


# --------------------------------------------------------------------------- damaged text input


def test_malformed_xml() -> None:
    events, skips = parse(read("malformed.xml"), "bad.xml")
    assert [(e.source.line, e.source.record, e.kind.value) for e in events] == [(3, 0, "network"), (8, 4, "process")]
    assert [(s.reason, s.line, s.file) for s in skips] == [
        ("junk", 4, "bad.xml"), ("truncated-xml", 5, "bad.xml"), ("malformed-xml", 6, "bad.xml"),
        ("bad-timestamp", 7, "bad.xml"), ("truncated-xml", 10, "bad.xml")]
    assert "mismatched tag" in skips[2].detail
    assert "\ufffd" in events[1].process.command_line
    alerts, _, _ = scan_all(SYSMON / "malformed.xml")
    assert verdicts(alerts) == [(0, 3, "imds-network-connection", "medium"), (4, 8, "imds-command-line", "high")]


def test_malformed_json_lines() -> None:
    events, skips = parse(read("malformed.jsonl"), "bad.jsonl")
    assert [(e.source.line, e.source.record) for e in events] == [(1, 0), (8, 6)]
    assert [(s.reason, s.line) for s in skips] == [
        ("malformed-json", 2), ("not-an-object", 3), ("unrecognised-record", 4), ("unsupported-provider", 5),
        ("malformed-json", 7)]


def test_security_records_read_as_sysmon_are_reported() -> None:
    events, skips = parse(read("security.xml", FIXTURES / "winsec"))
    assert events == []
    assert {s.reason for s in skips} == {"other-provider", "unsupported-provider"}
    assert any("--format winsec" in s.detail for s in skips)


def test_xml_without_dtd_tricks() -> None:
    bomb = (b'<Event><System><Provider Name="Linux-Sysmon"/><EventID>3</EventID></System>'
            b'<EventData><Data Name="Image">&lol;</Data></EventData></Event>\n')
    events, skips = parse(bomb)
    assert events == [] and [s.reason for s in skips] == ["malformed-xml"]  # undefined entity, no expansion
    with pytest.raises(ValueError):
        record_from_xml('<!DOCTYPE Event [<!ENTITY a "b">]><Event><System><EventID>1</EventID></System></Event>')


@pytest.mark.parametrize("name", ["eventviewer.xml", "evtx_dump.xml", "linux_syslog.log", "evtx.jsonl",
                                  "winlogbeat.jsonl", "malformed.xml"])
def test_cut_and_corrupted_text_never_raises(name: str) -> None:
    data = read(name)
    rng = random.Random(name)
    for cut in sorted(rng.sample(range(1, len(data)), 25)):
        events, skips = parse(data[:cut], name)
        assert all(s.file == name and s.line >= 1 for s in skips)
        assert all(e.source.line >= 1 for e in events)
    for _ in range(25):
        damaged = bytearray(data)
        for _ in range(20):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        events, skips = parse(bytes(damaged), name)
        assert all(s.line >= 1 for s in skips)


def test_oversized_line_is_reported_and_passed_over() -> None:
    line = read("linux_syslog.log").split(b"\n")[0]
    data = b"May 14 10:00:00 host sysmon: <Event>" + b"x" * (3 << 20) + b"\n" + line + b"\n"
    events, skips = parse(data)
    assert [s.reason for s in skips] == ["oversized-record"]
    assert [e.source.line for e in events] == [2]


# --------------------------------------------------------------------------- JSON shapes


def test_json_shapes_other_renderings() -> None:
    separate = {"Event": {"System": {
        "Provider": None, "Provider_attributes": {"Name": "Microsoft-Windows-Sysmon"},
        "EventID": 3, "TimeCreated_attributes": {"SystemTime": "2024-05-14T10:11:12.5Z"},
        "Computer": "h"}, "EventData": {"Image": "C:\\x.exe", "Initiated": True, "DestinationPort": 80}}}
    record = record_from_json(separate)
    assert record is not None
    assert (record.provider, record.event_id, record.system_time) == (
        "Microsoft-Windows-Sysmon", 3, "2024-05-14T10:11:12.5Z")
    assert record.data == {"Image": "C:\\x.exe", "Initiated": "true", "DestinationPort": "80"}
    xmltodict = {"Event": {"@xmlns": "x", "System": {
        "Provider": {"@Name": "Microsoft-Windows-Sysmon"}, "EventID": {"@Qualifiers": "0", "#text": "22"},
        "TimeCreated": {"@SystemTime": "2024-05-14T10:11:12Z"}},
        "EventData": {"Data": [{"@Name": "QueryName", "#text": "instance-data"}, {"@Name": "Image"}]}}}
    record = record_from_json(xmltodict)
    assert record is not None
    assert (record.event_id, record.data) == (22, {"QueryName": "instance-data", "Image": ""})
    assert record_from_json({"Timestamp": "x", "ActionType": "y"}) is None


# --------------------------------------------------------------------------- EVTX


def evtx_parse(data: bytes) -> tuple[list[Event], list[Skip]]:
    return parse(data, "many.evtx")


PER_CHUNK = 28  # records per chunk in many.evtx.gz (ids 5000-5083)


def test_evtx_multi_chunk_file() -> None:
    data = read("many.evtx.gz")
    assert (len(data) - EVTX_HEADER_SIZE) // CHUNK_SIZE == 3
    events, skips = evtx_parse(data)
    assert skips == []
    assert [e.source.line for e in events] == list(range(5000, 5084))
    assert [e.source.record for e in events] == list(range(84))


def _accounted(events: list[Event], skips: list[Skip]) -> int:
    """Records the reader accounted for: events, plus one per record skip, plus the lost counts."""
    total = len(events)
    for skip in skips:
        if skip.reason == "evtx-records-lost":
            total += int(skip.detail.split(": ", 1)[1].split(" of ", 1)[0])
        elif skip.reason == "evtx-corrupt-record":
            total += 1
    return total


def test_evtx_truncated_inside_a_chunk() -> None:
    data = read("many.evtx.gz")
    cut = EVTX_HEADER_SIZE + CHUNK_SIZE + 20000
    events, skips = evtx_parse(data[:cut])
    assert [s.reason for s in skips] == ["evtx-records-lost"]
    assert "chunk 1 at byte offset 69632" in skips[0].detail
    assert "the file ends inside this chunk" in skips[0].detail
    ids = [e.source.line for e in events]
    assert PER_CHUNK < len(ids) < 2 * PER_CHUNK
    assert ids == list(range(5000, 5000 + len(ids)))  # everything before the cut
    assert skips[0].line == 5000 + len(ids)  # the first record lost
    assert _accounted(events, skips) == 2 * PER_CHUNK


def test_evtx_bad_chunk_signature_costs_that_chunk_only() -> None:
    data = bytearray(read("many.evtx.gz"))
    offset = EVTX_HEADER_SIZE + CHUNK_SIZE
    data[offset:offset + 8] = b"XXXXXXXX"
    events, skips = evtx_parse(bytes(data))
    assert [(s.reason, s.line) for s in skips] == [("evtx-bad-chunk", 5028)]
    assert "chunk 1 at byte offset 69632" in skips[0].detail
    assert [e.source.line for e in events] == [*range(5000, 5028), *range(5056, 5084)]


def _record_offsets(data: bytes, chunk: int) -> list[int]:
    start = EVTX_HEADER_SIZE + chunk * CHUNK_SIZE
    offsets: list[int] = []
    position = start + 512
    while True:
        position = data.find(b"\x2a\x2a\x00\x00", position, start + CHUNK_SIZE)
        if position == -1:
            return offsets
        offsets.append(position)
        position += 4


def test_evtx_damaged_record_structure() -> None:
    data = bytearray(read("many.evtx.gz"))
    tenth = _record_offsets(bytes(data), 1)[10]
    data[tenth + 24:tenth + 24 + 48] = b"\xff" * 48  # the BinXML right after the record header
    events, skips = evtx_parse(bytes(data))
    assert skips, "damage must be reported"
    assert {s.reason for s in skips} <= {"evtx-corrupt-record", "evtx-records-lost"}
    assert all("chunk 1 at byte offset 69632" in s.detail for s in skips)
    assert skips[0].line == 5038  # the damaged record's id
    assert _accounted(events, skips) == 84
    ids = {e.source.line for e in events}
    assert set(range(5000, 5038)) <= ids and set(range(5056, 5084)) <= ids  # other chunks untouched


def test_evtx_damaged_record_header_loses_the_rest_of_the_chunk_visibly() -> None:
    data = bytearray(read("many.evtx.gz"))
    tenth = _record_offsets(bytes(data), 1)[10]
    data[tenth:tenth + 4] = b"\0\0\0\0"  # the parser stops silently at a bad record signature
    events, skips = evtx_parse(bytes(data))
    assert [(s.reason, s.line) for s in skips] == [("evtx-records-lost", 5038)]
    assert "18 of 28 records" in skips[0].detail
    assert [e.source.line for e in events] == [*range(5000, 5038), *range(5056, 5084)]


def test_evtx_header_only_and_cut_header() -> None:
    data = read("many.evtx.gz")
    assert evtx_parse(data[:EVTX_HEADER_SIZE]) == ([], [])
    events, skips = evtx_parse(data[:1000])
    assert events == [] and [s.reason for s in skips] == ["evtx-truncated"]


def test_evtx_random_damage_never_raises() -> None:
    original = read("many.evtx.gz")
    rng = random.Random(5)
    for _ in range(30):
        data = bytearray(original)
        for _ in range(rng.choice((1, 10, 200))):
            position = rng.randrange(EVTX_HEADER_SIZE, len(data))
            data[position] = rng.randrange(256)
        events, skips = evtx_parse(bytes(data))
        assert all(s.line >= 0 and s.file == "many.evtx" for s in skips)
        assert len(events) <= 84


def test_evtx_from_a_pipe_and_gzip_through_scan(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):  # not seekable, short reads
        def __init__(self, payload: bytes) -> None:
            self.payload = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.payload.read(min(5000, len(buffer)))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    skips: list[Skip] = []
    stream: BinaryIO = Pipe(read("sysmon.evtx.gz"))  # type: ignore[assignment]
    events = list(SYSMON_ADAPTER.parse(stream, "pipe", skips.append))
    assert summary(events) == summary(parse(read("eventviewer.xml"))[0])
    plain = tmp_path / "Sysmon.evtx"
    plain.write_bytes(read("sysmon.evtx.gz"))
    alerts, _, _ = scan_all(plain)
    assert verdicts(alerts) == verdicts(scan_all(SYSMON / "sysmon.evtx.gz")[0])


def test_evtx_records_match_the_json_shape() -> None:
    """The EVTX path is the evtx parser's JSON fed to the same record reader as JSON lines."""
    import evtx

    data = read("sysmon.evtx.gz")
    items: list[Any] = list(evtx.PyEvtxParser(io.BytesIO(data)).records_json())
    from_parser = [record_from_json(json.loads(item["data"])) for item in items]
    from_lines = [record_from_json(json.loads(line)) for line in read("evtx.jsonl").splitlines()]
    assert [(r.event_id, r.data) for r in from_parser if r] == [(r.event_id, r.data) for r in from_lines if r]
