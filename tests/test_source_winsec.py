"""Tests of the Windows Security log adapter (4688, 5156) with the real detections (see fixtures/winsec/README.md)."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imds_detect import ScanOptions, Severity, scan
from imds_detect.model import Alert, Event, EventKind
from imds_detect.sources.base import Skip
from imds_detect.sources.registry import detect_format
from imds_detect.sources.sysmon import SYSMON_ADAPTER
from imds_detect.sources.winevent import WinRecord
from imds_detect.sources.winsec import PID_MEMORY, WINSEC_ADAPTER, SecurityConverter, split_device_path

FIXTURES = Path(__file__).parent / "fixtures" / "winsec"
AGENT = r"C:\WindowsAzure\GuestAgent_2.7.41491.1102_2023-11-07_195038\WindowsAzureGuestAgent.exe"
AGENT_MAPPED = r"C:\windowsazure\guestagent_2.7.41491.1102_2023-11-07_195038\windowsazureguestagent.exe"

VARIANTS = {
    "security.xml": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    "security.jsonl": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "winlogbeat.jsonl": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "security.evtx.gz": list(range(70000, 70010)),
}
EVENT_RECORDS = [0, 1, 2, 3, 4, 5, 6, 8]  # 7 (4624) and 9 (Eventlog 1102) are skipped


def read(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def parse(data: bytes, name: str = "f") -> tuple[list[Event], list[Skip]]:
    skips: list[Skip] = []
    events = list(WINSEC_ADAPTER.parse(io.BytesIO(data), name, skips.append))
    return events, skips


def summary(events: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (e.kind, e.timestamp, e.host, e.user, e.action, e.process.name, e.process.path, e.process.pid,
         e.process.command_line, e.process.parent_path, e.remote_ip, e.remote_port, e.protocol,
         e.source.record, e.source.format)
        for e in events
    ]


def scan_all(path: Path) -> tuple[list[Alert], list[Alert]]:
    result = scan([str(path)], ScanOptions(min_severity=Severity.INFORMATIONAL, show_suppressed=True))
    return result.alerts, result.suppressed


def verdicts(alerts: list[Alert]) -> list[tuple[int, int, str, str]]:
    return sorted((a.source.record, a.source.line, a.rule_id, a.severity.label) for a in alerts)


# --------------------------------------------------------------------------- detection of the format


@pytest.mark.parametrize("name", [*VARIANTS, "newest_first.xml", "forwarded.xml"])
def test_sniff(name: str) -> None:
    head = read(name)[:65536]
    assert detect_format(head) is WINSEC_ADAPTER
    assert not SYSMON_ADAPTER.sniff(head)


# --------------------------------------------------------------------------- parsing


def test_every_variant_parses_to_the_same_events() -> None:
    reference = summary(parse(read("security.xml"))[0])
    for name, lines in VARIANTS.items():
        events, skips = parse(read(name), name)
        assert summary(events) == reference, name
        assert [e.source.line for e in events] == [lines[i] for i in EVENT_RECORDS], name
        assert [(s.reason, s.line) for s in skips] == [("unsupported-event-id", lines[7]),
                                                       ("unsupported-provider", lines[9])], name


def test_fields() -> None:
    events, _ = parse(read("security.xml"))
    by_record = {e.source.record: e for e in events}
    agent = by_record[0]
    assert agent.kind is EventKind.PROCESS and agent.action == "ProcessCreated" and agent.table == "Security"
    assert (agent.process.path, agent.process.name, agent.process.pid) == (AGENT, "WindowsAzureGuestAgent.exe", 0x1A2C)
    assert agent.process.parent_path == r"C:\Windows\System32\services.exe"
    assert agent.user == "CONTOSO\\WIN-APP01$"  # the subject; the target is the NULL SID
    assert agent.timestamp == datetime(2024, 5, 14, 11, 0, 0, 125000, tzinfo=UTC)
    assert agent.host == "WIN-APP01.contoso.local"
    curl = by_record[2]
    assert curl.process.command_line == "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    assert (curl.user, curl.process.pid) == ("CONTOSO\\alice", 0x2004)
    agent_connection = by_record[1]
    assert agent_connection.kind is EventKind.NETWORK and agent_connection.action == "ConnectionPermitted"
    assert (agent_connection.process.path, agent_connection.process.pid) == (AGENT_MAPPED, 0x1A2C)
    assert (agent_connection.remote_ip, agent_connection.remote_port, agent_connection.protocol) == (
        "169.254.169.254", 80, "tcp")
    assert by_record[3].process.path == r"C:\windows\system32\curl.exe"
    assert by_record[4].process.path == r"C:\users\public\windowsazureguestagent.exe"
    assert by_record[5].action == "InboundConnectionAccepted"
    unknown_volume = by_record[6]
    assert (unknown_volume.process.path, unknown_volume.process.name) == ("", "sync.exe")
    assert (by_record[8].protocol, by_record[8].remote_port) == ("udp", 53)


# --------------------------------------------------------------------------- detections


EXPECTED = [  # (record, rule, severity)
    (2, "imds-command-line", "medium"),          # curl in a 4688 command line
    (3, "imds-network-connection", "medium"),    # curl.exe connection, its volume learned
    (4, "imds-network-connection", "high"),      # renamed agent in C:\Users\Public
    (6, "imds-network-connection", "low"),       # volume never learned: no path, still reported
]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_detections(name: str) -> None:
    alerts, suppressed = scan_all(FIXTURES / name)
    lines = VARIANTS[name]
    assert verdicts(alerts) == [(record, lines[record], rule, severity) for record, rule, severity in EXPECTED]
    assert [(a.source.record, a.source.line, a.suppressed_by) for a in suppressed] == [
        (1, lines[1], "azure-windows-guest-agent")]
    renamed = next(a for a in alerts if a.source.record == 4)
    assert any("named like azure-windows-guest-agent" in reason for reason in renamed.reasons)
    assert all(a.source.format == "winsec" for a in alerts)


def test_newest_first_export_cannot_learn_volumes_in_time() -> None:
    """Documented limitation: connections read before the 4688 that names their process keep an empty path."""
    events, _ = parse(read("newest_first.xml"))
    connections = [e for e in events if e.kind is EventKind.NETWORK]
    assert connections and all(e.process.path == "" for e in connections)
    alerts, suppressed = scan_all(FIXTURES / "newest_first.xml")
    assert suppressed == []
    agent = next(a for a in alerts if a.source.line == 9)  # record 1, the real agent
    assert (agent.rule_id, agent.severity.label, agent.process.name) == (
        "imds-network-connection", "low", "windowsazureguestagent.exe")


def test_forwarded_events_mixing_sysmon_and_security() -> None:
    events, skips = parse(read("forwarded.xml"))
    assert skips == []
    assert [(e.source.line, e.source.format, e.kind.value) for e in events] == [
        (2, "sysmon", "network"), (3, "winsec", "process"), (4, "winsec", "network")]
    alerts, _ = scan_all(FIXTURES / "forwarded.xml")
    assert [(a.source.line, a.source.format, a.rule_id) for a in sorted(alerts, key=lambda a: a.source.line)] == [
        (2, "sysmon", "imds-network-connection"), (3, "winsec", "imds-command-line"),
        (4, "winsec", "imds-network-connection")]


def test_default_scan() -> None:
    result = scan([str(FIXTURES / "security.evtx.gz")])
    assert sorted(a.source.line for a in result.alerts) == [70002, 70003, 70004, 70006]
    assert result.summary.suppressed == {"azure-windows-guest-agent": 1}
    assert result.summary.skipped == {"unsupported-event-id": 1, "unsupported-provider": 1}


# --------------------------------------------------------------------------- device paths


def test_split_device_path() -> None:
    assert split_device_path(r"\device\harddiskvolume2\windows\system32\curl.exe") == (
        "harddiskvolume2", r"\windows\system32\curl.exe")
    assert split_device_path(r"\Device\HarddiskVolume4\x.exe") == ("harddiskvolume4", r"\x.exe")
    assert split_device_path(r"C:\Windows\x.exe") is None
    assert split_device_path("System") is None
    assert split_device_path("\\device\\") is None


def _process(computer: str, pid: int, path: str, parent_pid: int = 1, parent: str = "") -> WinRecord:
    return WinRecord(provider="Microsoft-Windows-Security-Auditing", event_id=4688, computer=computer,
                     system_time="2024-05-14T11:00:00Z",
                     data={"NewProcessId": hex(pid), "NewProcessName": path, "ProcessId": hex(parent_pid),
                           "ParentProcessName": parent})


def _connection(computer: str, pid: int, application: str) -> WinRecord:
    return WinRecord(provider="Microsoft-Windows-Security-Auditing", event_id=5156, computer=computer,
                     system_time="2024-05-14T11:00:01Z",
                     data={"ProcessID": str(pid), "Application": application, "Direction": "%%14593",
                           "DestAddress": "169.254.169.254", "DestPort": "80", "Protocol": "6"})


def _path(converter: SecurityConverter, record: WinRecord) -> str:
    skips: list[Skip] = []
    event = converter(record, "f", 1, 0, skips.append)
    assert event is not None and not skips
    return event.process.path


def test_volume_learning_needs_same_pid_same_rest_same_computer() -> None:
    converter = SecurityConverter()
    _path(converter, _process("a", 100, r"D:\Apps\tool.exe"))
    # same pid, different remainder: nothing learned
    assert _path(converter, _connection("a", 100, r"\device\harddiskvolume3\other\tool.exe")) == ""
    # another computer: nothing learned
    assert _path(converter, _connection("b", 100, r"\device\harddiskvolume3\apps\tool.exe")) == ""
    # same computer, pid and remainder (case-insensitively): volume 3 is D: on computer a from now on
    assert _path(converter, _connection("a", 100, r"\device\harddiskvolume3\apps\tool.exe")) == r"D:\apps\tool.exe"
    assert _path(converter, _connection("a", 999, r"\device\harddiskvolume3\x\y.exe")) == r"D:\x\y.exe"
    assert _path(converter, _connection("b", 999, r"\device\harddiskvolume3\x\y.exe")) == ""


def test_volume_learned_from_the_creator_of_a_process() -> None:
    converter = SecurityConverter()
    _path(converter, _process("a", 200, r"C:\Windows\System32\cmd.exe", 300, AGENT))
    assert _path(converter, _connection("a", 300, r"\device\harddiskvolume2" + AGENT[2:].lower())) == (
        "C:" + AGENT[2:].lower())


def test_a_newer_process_replaces_a_reused_pid() -> None:
    converter = SecurityConverter()
    _path(converter, _process("a", 100, AGENT))
    _path(converter, _process("a", 100, r"C:\Users\Public\evil.exe"))  # pid reused
    device = r"\device\harddiskvolume2" + AGENT[2:]
    assert _path(converter, _connection("a", 100, device)) == ""  # the agent's path no longer matches pid 100


def test_pid_memory_is_bounded() -> None:
    converter = SecurityConverter()
    for pid in range(PID_MEMORY + 10):
        converter._remember("a", pid, r"C:\x.exe")
    assert len(converter.pids) == PID_MEMORY
    assert ("a", 0) not in converter.pids and ("a", PID_MEMORY + 9) in converter.pids


def test_odd_values_do_not_raise() -> None:
    converter = SecurityConverter()
    skips: list[Skip] = []
    record = _connection("a", 1, "System")
    record.data.update({"ProcessID": "0xZZ", "DestPort": "99999", "Protocol": "2", "Direction": "Inbound"})
    event = converter(record, "f", 1, 0, skips.append)
    assert event is not None
    assert (event.process.pid, event.remote_port, event.protocol, event.process.name, event.process.path) == (
        None, None, "2", "System", "")
    assert event.action == "InboundConnectionAccepted"
    bad_time = _process("a", 1, r"C:\x.exe")
    bad_time.system_time = "soon"
    assert converter(bad_time, "f", 7, 0, skips.append) is None
    assert [(s.reason, s.line) for s in skips] == [("bad-timestamp", 7)]


def test_target_account_wins_when_set() -> None:
    record = _process("a", 5, r"C:\x.exe")
    record.data.update({"SubjectUserName": "WIN$", "SubjectDomainName": "CONTOSO", "TargetUserName": "bob",
                        "TargetDomainName": "CONTOSO", "TargetUserSid": "S-1-5-21-1-2-3-1105"})
    event = SecurityConverter()(record, "f", 1, 0, lambda skip: None)
    assert event is not None and event.user == "CONTOSO\\bob" == event.process.user
