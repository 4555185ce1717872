"""Tests of the Defender XDR / Sentinel source adapter and the timestamp helper."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imds_detect.model import Event, EventKind
from imds_detect.sources.base import LineSource, ReadCounts, Skip
from imds_detect.sources.mde import MDE_ADAPTER, RAW_LIMIT, event_from_row, mde_variant
from imds_detect.sources.timeparse import parse_timestamp

FIXTURES = Path(__file__).parent / "fixtures" / "mde"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

CREDS_CMD = "curl http://169.254.169.254/latest/meta-data/iam/security-credentials/"


def parse_bytes(data: bytes, name: str = "f") -> tuple[list[Event], list[Skip]]:
    skips: list[Skip] = []
    events = list(MDE_ADAPTER.parse(io.BytesIO(data), name, skips.append))
    return events, skips


def parse_fixture(name: str) -> tuple[list[Event], list[Skip]]:
    return parse_bytes((FIXTURES / name).read_bytes(), name)


def logical(event: Event) -> dict[str, Any]:
    """Everything but the physical position and the raw text."""
    return {
        "kind": event.kind,
        "timestamp": event.timestamp,
        "host": event.host,
        "user": event.user,
        "process": (
            event.process.name,
            event.process.path,
            event.process.pid,
            event.process.command_line,
            event.process.parent_name,
            event.process.parent_path,
            event.process.user,
            event.process.sha256,
        ),
        "action": event.action,
        "table": event.table,
        "remote": (event.remote_ip, event.remote_port, event.remote_url, event.protocol),
        "http": (event.http_method, event.http_host, event.http_uri, event.user_agent),
        "dns": event.dns_query,
        "record": event.source.record,
        "format": event.source.format,
    }


# --------------------------------------------------------------------------- the same rows in every variant

VARIANT_LINES = {
    "ah.jsonl": [1, 2, 3, 4, 5, 6],
    "sentinel.jsonl": [1, 2, 3, 4, 5, 6],
    "ah.csv": [2, 3, 4, 6, 7, 8],  # record 2 spans lines 4-5
    "ah_array.json": [2, 3, 4, 5, 6, 7],
    "la_api.json": [2, 3, 4, 5, 6, 7],
    "graph.json": [122, 146, 167, 188, 210, 232],
}
SKIP_LINES = {
    "ah.jsonl": 7,
    "sentinel.jsonl": 7,
    "ah.csv": 9,
    "ah_array.json": 8,
    "la_api.json": 8,
    "graph.json": 254,
}


def test_reference_variant_events_are_exact() -> None:
    events, skips = parse_fixture("ah.jsonl")
    assert [e.kind for e in events] == [
        EventKind.NETWORK,
        EventKind.PROCESS,
        EventKind.PROCESS,
        EventKind.PROCESS,
        EventKind.HTTP,
        EventKind.DNS,
    ]
    net, proc, multi, ps, http, dns = events

    assert net.timestamp == datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=UTC)
    assert net.host == "web-01.contoso.local"
    assert (net.remote_ip, net.remote_port, net.protocol) == ("169.254.169.254", 80, "Tcp")
    assert net.action == "ConnectionSuccess" and net.table == "DeviceNetworkEvents"
    assert net.process.name == "curl" and net.process.path == "/usr/bin/curl"  # folder already full path
    assert net.process.pid == 4242 and net.process.command_line == CREDS_CMD
    assert net.process.parent_name == "bash"
    assert net.user == net.process.user == "web-01\\root"
    assert net.process.sha256 == "a" * 64

    assert proc.table == "DeviceProcessEvents"
    assert proc.process.name == "curl" and proc.process.path == "/usr/bin/curl" and proc.process.pid == 4242
    assert proc.process.command_line == CREDS_CMD
    assert (proc.process.parent_name, proc.process.parent_path) == ("bash", "/usr/bin/bash")  # dir joined
    assert proc.user == "web-01\\root"

    assert (
        "\n" in multi.process.command_line
        and '"X-aws-ec2-metadata-token: $TOKEN"' in multi.process.command_line
    )
    assert multi.process.parent_path == "/usr/bin/ssm-document-worker"

    assert ps.table == "DeviceEvents" and ps.action == "PowerShellCommand"
    # The host's command line first, then the PowerShell command (unless the command line already holds it).
    first, command = ps.process.command_line.split("\n", 1)
    assert first == '"powershell.exe" -NoProfile'
    assert command.startswith("Invoke-RestMethod -Uri 'http://169.254.169.254/metadata/identity")
    assert ps.process.path == "c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe"
    assert (ps.process.pid, ps.user, ps.host) == (6100, "contoso\\alice", "win-01.contoso.local")

    assert (http.http_method, http.http_host, http.user_agent) == ("GET", "169.254.169.254", "curl/8.5.0")
    assert http.http_uri == "/latest/meta-data/iam/security-credentials/role"
    assert (http.remote_ip, http.remote_port) == ("169.254.169.254", 80)
    assert http.process.name == "" and http.process.pid is None

    assert dns.dns_query == "metadata.google.internal" and dns.remote_port == 53 and dns.host == "gce-01"
    assert dns.timestamp == datetime(2024, 5, 1, 10, 15, 0, 0, tzinfo=UTC)  # 7th digit truncated

    assert [e.source.record for e in events] == [0, 1, 2, 3, 4, 5]
    assert [(s.reason, s.detail) for s in skips] == [("unsupported-table", "DeviceFileEvents")]


@pytest.mark.parametrize("name", sorted(VARIANT_LINES))
def test_every_variant_gives_the_same_events(name: str) -> None:
    reference, _ = parse_fixture("ah.jsonl")
    events, skips = parse_fixture(name)
    assert [logical(e) for e in events] == [logical(e) for e in reference]
    assert [e.source.line for e in events] == VARIANT_LINES[name]
    assert all(e.source.file == name and e.source.format == "mde" for e in events)
    assert [(s.reason, s.file, s.line) for s in skips] == [("unsupported-table", name, SKIP_LINES[name])]
    assert all(e.raw for e in events)


def test_portal_csv_with_bom_crlf_and_us_times() -> None:
    reference, _ = parse_fixture("ah.jsonl")
    events, skips = parse_fixture("sentinel_portal.csv")
    assert [e.source.line for e in events] == [2, 3, 4, 6, 7, 8]
    assert [s.line for s in skips] == [9]
    # the portal writes millisecond precision
    assert [e.timestamp for e in events] == [
        e.timestamp.replace(microsecond=e.timestamp.microsecond // 1000 * 1000) for e in reference
    ]
    assert events[0].timestamp == datetime(2024, 5, 1, 10, 11, 12, 123000, tzinfo=UTC)
    for got, want in zip(events, reference, strict=True):
        a, b = logical(got), logical(want)
        a.pop("timestamp"), b.pop("timestamp")
        assert a == b
    # CRLF record ends do not leak into values; the LF inside the quoted field is kept as written
    assert "\r" not in events[2].process.command_line and events[2].process.command_line.count("\n") == 1
    assert not events[2].raw.endswith(("\r", "\n")) and events[2].raw.count("\n") == 1


def test_sniff_variants_of_the_fixtures() -> None:
    expected = {
        "ah.jsonl": "jsonl",
        "sentinel.jsonl": "jsonl",
        "malformed.jsonl": "jsonl",
        "ah.csv": "csv",
        "sentinel_portal.csv": "csv",
        "truncated.csv": "csv",
        "ah_array.json": "json-array",
        "la_api.json": "la-api",
        "graph.json": "graph",
    }
    for name, variant in expected.items():
        head = (FIXTURES / name).read_bytes()[:65536]
        assert mde_variant(head) == variant, name
        assert MDE_ADAPTER.sniff(head)
        assert MDE_ADAPTER.is_line_oriented(head) is (variant == "jsonl")


def test_sniff_on_truncated_heads() -> None:
    line = (FIXTURES / "ah.jsonl").read_bytes()
    assert mde_variant(line[:300]) == "jsonl"  # first line cut by the head size
    assert mde_variant((FIXTURES / "la_api.json").read_bytes()[:400]) == "la-api"
    assert mde_variant((FIXTURES / "graph.json").read_bytes()[:2000]) == "graph"
    assert mde_variant((FIXTURES / "ah_array.json").read_bytes()[:300]) == "json-array"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"   \n",
        b'{"Records": [{"eventVersion": "1.08", "eventSource": "ec2", "deviceName": "/dev/sda1"}]}',
        b'{\n  "Records": [\n    {\n      "eventVersion": "1.08"\n    }\n  ]\n}\n',
        b'{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole"},"eventName":"ListBuckets"}\n',
        b'[{"eventVersion":"1.08","eventName":"GetObject"}]',
        b'{"tables":[{"name":"PrimaryResult","columns":[{"name":"TimeGenerated"},{"name":"UserPrincipalName"}]}]}',
        b"type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=42 success=no exit=-115\n",
        b'127.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n',
        b"name,value\nfoo,bar\n",
        b"\x00\x01\x02\xff\xfe junk",
        b'{"DeviceName": "x"}\n',  # one Defender key is not enough
    ],
)
def test_sniff_rejects(head: bytes) -> None:
    assert mde_variant(head) is None
    assert not MDE_ADAPTER.sniff(head)
    assert not MDE_ADAPTER.is_line_oriented(head)


def test_sniff_accepts_minimal_sentinel_row() -> None:
    assert mde_variant(b'{"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "DeviceEvents"}\n') == "jsonl"


@pytest.mark.parametrize(
    "path",
    [
        "weblogs/elastic_examples_apache_logs_combined.log",
        "cloudtrail/otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
        "cloudtrail/stratus-detonation-logs/aws.credential-access.ec2-steal-instance-credentials.json",
        "auditd/go-libaudit/testdata_normal.log",
    ],
)
def test_sniff_rejects_real_public_samples(path: str) -> None:
    file = SHARED / path
    if not file.exists():
        pytest.skip(f"{file} absent")
    with file.open("rb") as handle:
        head = handle.read(65536)
    assert mde_variant(head) is None


# --------------------------------------------------------------------------- CSV details


def test_csv_embedded_newline_and_raw_record() -> None:
    events, _ = parse_fixture("ah.csv")
    multi, after = events[2], events[3]
    assert (multi.source.line, after.source.line) == (4, 6)
    assert (multi.source.record, after.source.record) == (2, 3)
    assert multi.raw.count("\n") == 1 and '""X-aws-ec2-metadata-token: $TOKEN""' in multi.raw
    assert not multi.raw.endswith("\n")


def test_csv_truncated_at_eof() -> None:
    events, skips = parse_fixture("truncated.csv")
    assert [e.source.line for e in events] == [2, 3]
    assert [(s.reason, s.file, s.line) for s in skips] == [("truncated-csv", "truncated.csv", 4)]


def test_csv_field_count_blank_lines_and_bad_values() -> None:
    header = "Timestamp,DeviceName,ActionType,RemoteIP,RemotePort,InitiatingProcessFileName\n"
    data = (
        "\n"
        + header
        + "2024-05-01T10:00:00Z,h,ConnectionSuccess,169.254.169.254,80,curl\n"
        + "\n"
        + "2024-05-01T10:00:01Z,h,ConnectionSuccess\n"
        + '"x"y,h,ConnectionSuccess,1.2.3.4,80,curl\n'
        + "2024-05-01T10:00:02Z,h,ConnectionSuccess,169.254.169.254,abc,curl\n"
    )
    events, skips = parse_bytes(data.encode())
    assert [(s.reason, s.line) for s in skips] == [("csv-field-count", 5), ("csv-error", 6)]
    assert [(e.source.line, e.source.record, e.remote_port) for e in events] == [(3, 0, 80), (7, 3, None)]


def test_csv_invalid_utf8_is_replaced() -> None:
    data = (
        b"Timestamp,DeviceName,ActionType,ProcessCommandLine,FileName\n"
        b"2024-05-01T10:00:00Z,h,ProcessCreated,curl http://169.254.169.254/\xff,curl\n"
    )
    events, skips = parse_bytes(data)
    assert not skips
    assert events[0].process.command_line == "curl http://169.254.169.254/\ufffd"


# --------------------------------------------------------------------------- JSON lines robustness


def test_malformed_lines_are_skipped_and_parsing_goes_on() -> None:
    events, skips = parse_fixture("malformed.jsonl")
    assert [(s.reason, s.file, s.line) for s in skips] == [
        ("malformed-json", "malformed.jsonl", 2),
        ("not-an-object", "malformed.jsonl", 4),
        ("bad-timestamp", "malformed.jsonl", 6),
        ("malformed-json", "malformed.jsonl", 8),
        ("unrecognised-row", "malformed.jsonl", 9),
        ("unsupported-action", "malformed.jsonl", 10),
        ("blank-line", "malformed.jsonl", 12),  # whitespace only: a record that is reported, not a blank line
    ]
    assert all(s.message().startswith(f"malformed.jsonl:{s.line}: skipped (") for s in skips)
    assert [(e.source.line, e.source.record) for e in events] == [(1, 0), (5, 3), (7, 5), (11, 9), (13, 11)]
    bad_utf8, bad_port, ipv6 = events[1], events[2], events[3]
    assert "\ufffd" in bad_utf8.process.command_line and "\ufffd" in bad_utf8.raw
    assert bad_port.remote_port is None and bad_port.remote_ip == "169.254.169.254"
    assert ipv6.remote_ip == "fd00:ec2::254"


def test_parse_line_matches_parse() -> None:
    data = (FIXTURES / "malformed.jsonl").read_bytes()
    whole, whole_skips = parse_bytes(data, "malformed.jsonl")
    adapter: LineSource = MDE_ADAPTER
    by_line: list[Event] = []
    line_skips: list[Skip] = []
    record = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.rstrip(b"\r"):
            assert adapter.parse_line(line, "malformed.jsonl", number, record, line_skips.append) is None
            continue
        event = adapter.parse_line(line, "malformed.jsonl", number, record, line_skips.append)
        record += 1
        if event is not None:
            by_line.append(event)
    assert by_line == whole
    assert line_skips == whole_skips


def test_newest_in_block() -> None:
    block = (FIXTURES / "ah.jsonl").read_bytes()
    assert MDE_ADAPTER.newest_in_block(block) == datetime(2024, 5, 1, 10, 15, 0, tzinfo=UTC)
    sentinel = (FIXTURES / "sentinel.jsonl").read_bytes()
    assert MDE_ADAPTER.newest_in_block(sentinel) == datetime(2024, 5, 1, 10, 15, 0, tzinfo=UTC)
    mixed = b'{"Timestamp": "2024-05-01T23:00:00+02:00"}\n{"Timestamp": "2024-05-01T21:30:00Z"}\n'
    assert MDE_ADAPTER.newest_in_block(mixed) == datetime(2024, 5, 1, 21, 30, tzinfo=UTC)
    widths = b'{"Timestamp":"2024-05-01T10:00:00.5Z"}\n{"Timestamp":"2024-05-01T10:00:01Z"}\n'
    widths += b'{"Timestamp":"x"}\n'
    assert MDE_ADAPTER.newest_in_block(widths) == datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)
    assert MDE_ADAPTER.newest_in_block(b"\n\n") is None


def test_bom_on_first_json_line() -> None:
    data = b"\xef\xbb\xbf" + (FIXTURES / "ah.jsonl").read_bytes()
    assert mde_variant(data) == "jsonl"
    events, skips = parse_bytes(data)
    assert len(events) == 6 and len(skips) == 1


def test_raw_is_truncated() -> None:
    row = {
        "Timestamp": "2024-05-01T10:00:00Z",
        "DeviceName": "h",
        "ActionType": "ProcessCreated",
        "FileName": "curl",
        "ProcessCommandLine": "curl http://169.254.169.254/" + "a" * 10000,
    }
    events, _ = parse_bytes(json.dumps(row).encode() + b"\n")
    assert len(events[0].raw) == RAW_LIMIT
    assert len(events[0].process.command_line) > 10000


class _Trickle(io.RawIOBase):
    """A non-seekable raw stream that returns at most 777 bytes per read (and has no fast readline)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._data[self._pos : self._pos + min(777, len(view))]
        view[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("name", ["ah.jsonl", "ah.csv"])
def test_files_larger_than_the_head(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    if name.endswith(".csv"):
        header, body = data.split(b"\n", 1)
        data = header + b"\n" + body * 60
        per_copy = body.count(b"\n")
    else:
        per_copy = data.count(b"\n")
        data = data * 60
    assert len(data) > 65536 * 2
    skips: list[Skip] = []
    events = list(MDE_ADAPTER.parse(_Trickle(data), name, skips.append))  # type: ignore[arg-type]
    assert len(events) == 6 * 60 and len(skips) == 60
    first = 1 if name.endswith(".jsonl") else 2
    assert [e.source.line for e in events[6::6]] == [first + per_copy * k for k in range(1, 60)]
    assert [e.source.record for e in events[:7]] == [0, 1, 2, 3, 4, 5, 7]


@pytest.mark.parametrize("name", sorted([*VARIANT_LINES, "sentinel_portal.csv", "malformed.jsonl"]))
def test_cut_or_damaged_files_never_raise(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    rng = random.Random(name)
    for cut in range(0, len(data), 151):
        parse_bytes(data[:cut])
        damaged = bytearray(data)
        for _ in range(5):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        parse_bytes(bytes(damaged))


def test_binary_junk_gives_skips_only() -> None:
    junk = random.Random(7).randbytes(20000)
    events, skips = parse_bytes(junk)
    assert events == [] and skips
    events, skips = parse_bytes(b"{" + junk)
    assert events == [] and skips


# --------------------------------------------------------------------------- whole-document variants


def test_compact_la_api_and_bad_rows() -> None:
    doc = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [
                    {"name": n, "type": "string"}
                    for n in ("TimeGenerated", "Type", "DeviceName", "ActionType", "RemoteIP", "RemotePort")
                ],
                "rows": [
                    [
                        "2024-05-01T10:00:00Z",
                        "DeviceNetworkEvents",
                        "h",
                        "ConnectionFailed",
                        "169.254.169.254",
                        80,
                    ],
                    ["2024-05-01T10:00:01Z", "DeviceNetworkEvents", "h"],
                    "nope",
                    [
                        "2024-05-01T10:00:02Z",
                        "DeviceNetworkEvents",
                        "h",
                        "ConnectionFailed",
                        "fd00:ec2::254",
                        80.0,
                    ],
                ],
            },
            {
                "name": "Second",
                "Columns": [
                    {"ColumnName": "Timestamp"},
                    {"ColumnName": "DeviceName"},
                    {"ColumnName": "ActionType"},
                    {"ColumnName": "RemoteIP"},
                ],
                "Rows": [["2024-05-01T10:00:03Z", "h", "ConnectionSuccess", "169.254.170.2"]],
            },
        ]
    }
    events, skips = parse_bytes(json.dumps(doc).encode())
    assert [(s.reason, s.line) for s in skips] == [("bad-row", 1), ("bad-row", 1)]
    assert [(e.source.record, e.source.line, e.remote_ip, e.remote_port) for e in events] == [
        (0, 1, "169.254.169.254", 80),
        (3, 1, "fd00:ec2::254", 80),
        (4, 1, "169.254.170.2", None),
    ]


def test_old_defender_api_schema_results() -> None:
    doc = {
        "Stats": {"ExecutionTime": 0.1},
        "Schema": [{"Name": "Timestamp", "Type": "DateTime"}, {"Name": "DeviceName", "Type": "String"}],
        "Results": [
            {
                "Timestamp": "2024-05-01T10:00:00Z",
                "DeviceName": "h",
                "ActionType": "ConnectionSuccess",
                "RemoteIP": "169.254.169.254",
                "RemotePort": 80,
                "InitiatingProcessFileName": "curl",
            },
        ],
    }
    data = json.dumps(doc).encode()
    assert mde_variant(data) == "graph"
    events, skips = parse_bytes(data)
    assert not skips and events[0].process.name == "curl"


def test_truncated_json_array_keeps_earlier_rows() -> None:
    data = (FIXTURES / "ah_array.json").read_bytes()
    cut = data[: data.index(b"HttpConnectionInspected")]
    events, skips = parse_bytes(cut, "a.json")
    assert [e.source.line for e in events] == [2, 3, 4, 5]
    assert [(s.reason, s.line) for s in skips] == [("malformed-json", 6)]


def test_pretty_printed_object_sequence() -> None:
    rows = [json.loads(line) for line in (FIXTURES / "ah.jsonl").read_text().splitlines()]
    data = "".join(json.dumps(r, indent=2) + "\n" for r in rows).encode()
    assert mde_variant(data) == "json-seq"
    assert not MDE_ADAPTER.is_line_oriented(data)
    events, skips = parse_bytes(data)
    reference, _ = parse_fixture("ah.jsonl")
    assert [logical(e) for e in events] == [logical(e) for e in reference]
    starts = [i + 1 for i, line in enumerate(data.split(b"\n")) if line == b"{"]
    assert [e.source.line for e in events] == starts[:6]
    assert [s.line for s in skips] == [starts[6]]


def test_hostile_json_documents() -> None:
    row = {**BASE, "ActionType": "ConnectionSuccess", "RemoteIP": "169.254.169.254", "ReportId": 10**30}
    events, skips = parse_bytes(json.dumps(row, indent=2).encode())  # json-seq, stdlib decoder
    assert len(events) == 1 and not skips and str(10**30) in events[0].raw
    events, skips = parse_bytes(b"{\n" + b'"a": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    assert events == [] and [s.reason for s in skips] == ["malformed-json"]
    events, skips = parse_bytes(b"[\n" + b"[" * 100000)
    assert events == [] and [s.reason for s in skips] == ["malformed-json"]


def test_bad_documents_are_reported() -> None:
    _, skips = parse_bytes(b'{"tables": 3}')
    assert [s.reason for s in skips] == ["bad-document"]
    _, skips = parse_bytes(b'{"tables": [{"name": "x"}]}')
    assert [s.reason for s in skips] == ["bad-document"]
    _, skips = parse_bytes(b'{"schema": [], "results": {"a": 1}}')
    assert [s.reason for s in skips] == ["bad-document"]
    _, skips = parse_bytes(b'{"tables": [ {"columns": [}')
    assert [s.reason for s in skips] == ["malformed-json"]
    events, skips = parse_bytes(b'[1, {"Foo": 2}]')
    assert events == [] and [s.reason for s in skips] == ["not-an-object", "unrecognised-row"]


# --------------------------------------------------------------------------- row mapping


def one(row: dict[str, Any]) -> tuple[Event | None, list[Skip]]:
    skips: list[Skip] = []
    return event_from_row(row, "r", 3, 0, skips.append), skips


BASE = {"Timestamp": "2024-05-01T10:00:00Z", "DeviceName": "h"}


def test_additional_fields_string_object_and_garbage() -> None:
    fields = {
        "host": "metadata.google.internal",
        "uri": "/computeMetadata/v1/",
        "method": "GET",
        "user_agent": "python-requests/2.31",
    }
    as_object, _ = one(
        {
            **BASE,
            "ActionType": "HttpConnectionInspected",
            "RemoteIP": "169.254.169.254",
            "AdditionalFields": fields,
        }
    )
    as_string, _ = one(
        {
            **BASE,
            "ActionType": "HttpConnectionInspected",
            "RemoteIP": "169.254.169.254",
            "AdditionalFields": json.dumps(fields),
        }
    )
    garbage, skips = one(
        {
            **BASE,
            "ActionType": "HttpConnectionInspected",
            "RemoteIP": "169.254.169.254",
            "AdditionalFields": "{not json",
        }
    )
    assert as_object is not None and as_string is not None and garbage is not None
    assert logical(as_object) == logical(as_string)
    assert as_object.http_host == "metadata.google.internal" and as_object.http_uri == "/computeMetadata/v1/"
    assert garbage.kind is EventKind.HTTP and garbage.http_uri == "" and not skips


@pytest.mark.parametrize("key", ["query", "query_name", "QueryName"])
def test_dns_query_keys(key: str) -> None:
    event, _ = one(
        {
            **BASE,
            "ActionType": "DnsConnectionInspected",
            "RemoteIP": "10.0.0.2",
            "AdditionalFields": {key: "metadata.google.internal"},
        }
    )
    assert event is not None and event.kind is EventKind.DNS and event.dns_query == "metadata.google.internal"


def test_sentinel_time_generated_and_precedence() -> None:
    row = {
        "TimeGenerated": "2024-05-01T10:00:05.1Z",
        "Type": "DeviceProcessEvents",
        "DeviceName": "h",
        "ActionType": "ProcessCreated",
        "FileName": "curl",
        "ProcessCommandLine": "curl x",
    }
    event, _ = one(row)
    assert event is not None and event.timestamp == datetime(2024, 5, 1, 10, 0, 5, 100000, tzinfo=UTC)
    event, _ = one({**row, "Timestamp": "2024-05-01T09:59:59Z"})
    assert event is not None and event.timestamp == datetime(2024, 5, 1, 9, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"RemoteIP": "169.254.169.254"}, ("network", "DeviceNetworkEvents")),
        ({"RemotePort": 80}, ("network", "DeviceNetworkEvents")),
        ({"ProcessCommandLine": "curl x", "FileName": "curl"}, ("process", "DeviceProcessEvents")),
        (
            {"ActionType": "PowerShellCommand", "AdditionalFields": '{"Command": "iwr x"}'},
            ("process", "DeviceEvents"),
        ),
        (
            {"ActionType": "BrowserLaunchedToOpenUrl", "RemoteUrl": "http://169.254.169.254/"},
            ("network", "DeviceEvents"),
        ),
        (
            {"ActionType": "ProcessCreatedUsingWmiQuery", "ProcessCommandLine": "curl x", "FileName": "curl"},
            ("process", "DeviceEvents"),
        ),
        (
            {"ActionType": "DnsQueryResponse", "AdditionalFields": {"DnsQueryString": "metadata.goog"}},
            ("dns", "DeviceEvents"),
        ),
        (
            {"Type": "DeviceEvents", "ActionType": "SomethingNew", "RemoteIP": "1.2.3.4"},
            ("network", "DeviceEvents"),
        ),
    ],
)
def test_table_recognition(row: dict[str, Any], expected: tuple[str, str]) -> None:
    event, skips = one({**BASE, **row})
    assert not skips and event is not None
    assert (event.kind.value, event.table) == expected


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        (
            {"Type": "DeviceLogonEvents", "ActionType": "LogonSuccess", "RemoteIP": "1.2.3.4"},
            "unsupported-table",
            "DeviceLogonEvents",
        ),
        ({"ActionType": "RegistryValueSet"}, "unsupported-table", "DeviceRegistryEvents"),
        ({"ActionType": "ImageLoaded", "FileName": "x.dll"}, "unsupported-table", "DeviceImageLoadEvents"),
        ({"ActionType": "Mystery"}, "unrecognised-row", "ActionType 'Mystery'"),
        ({}, "unrecognised-row", "no Type, ActionType or known columns"),
        (
            {"ActionType": "AsrOfficeChildProcessBlocked"},
            "unsupported-action",
            "DeviceEvents AsrOfficeChildProcessBlocked",
        ),
        ({"ActionType": "ConnectionSuccess", "Timestamp": None}, "bad-timestamp", "None"),
        ({"ActionType": "ConnectionSuccess", "Timestamp": 1714557600}, "bad-timestamp", "1714557600"),
    ],
)
def test_unusable_rows_are_skipped_with_a_reason(row: dict[str, Any], reason: str, detail: str) -> None:
    event, skips = one({**BASE, **row})
    assert event is None
    assert [(s.reason, s.file, s.line, s.detail) for s in skips] == [(reason, "r", 3, detail)]


@pytest.mark.parametrize(
    ("folder", "name", "path"),
    [
        ("/usr/bin", "curl", "/usr/bin/curl"),
        ("/usr/bin/", "curl", "/usr/bin/curl"),
        ("/usr/bin/curl", "curl", "/usr/bin/curl"),
        ("/opt/xcurl", "curl", "/opt/xcurl/curl"),
        ("C:\\Windows\\System32\\CURL.EXE", "curl.exe", "C:\\Windows\\System32\\CURL.EXE"),
        ("C:\\Windows\\System32", "curl.exe", "C:\\Windows\\System32\\curl.exe"),
        ("C:\\Windows\\System32\\", "curl.exe", "C:\\Windows\\System32\\curl.exe"),
        ("", "curl", ""),
    ],
)
def test_process_path_joining(folder: str, name: str, path: str) -> None:
    event, _ = one(
        {
            **BASE,
            "ActionType": "ProcessCreated",
            "FileName": name,
            "FolderPath": folder,
            "ProcessCommandLine": name,
            "InitiatingProcessFileName": name,
            "InitiatingProcessFolderPath": folder,
        }
    )
    assert event is not None and event.process.path == path and event.process.parent_path == path


@pytest.mark.parametrize(
    ("value", "port"),
    [
        (80, 80),
        ("80", 80),
        (" 443 ", 443),
        (80.0, 80),
        ("abc", None),
        (-1, None),
        (70000, None),
        (None, None),
        (True, None),
        ("", None),
    ],
)
def test_port_values(value: Any, port: int | None) -> None:
    event, _ = one(
        {**BASE, "ActionType": "ConnectionSuccess", "RemoteIP": "169.254.169.254", "RemotePort": value}
    )
    assert event is not None and event.remote_port == port


def test_account_forms() -> None:
    event, _ = one(
        {
            **BASE,
            "ActionType": "ConnectionSuccess",
            "RemoteIP": "1.1.1.1",
            "InitiatingProcessAccountName": "svc",
            "InitiatingProcessAccountDomain": "",
        }
    )
    assert event is not None and event.user == "svc"
    event, _ = one(
        {
            **BASE,
            "ActionType": "ConnectionSuccess",
            "RemoteIP": "1.1.1.1",
            "InitiatingProcessAccountName": "",
            "InitiatingProcessAccountDomain": "dom",
        }
    )
    assert event is not None and event.user == ""


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:11:12.1234567Z", datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=UTC)),
        ("2024-05-01T10:11:12.999999999Z", datetime(2024, 5, 1, 10, 11, 12, 999999, tzinfo=UTC)),
        ("2024-05-01T10:11:12.5Z", datetime(2024, 5, 1, 10, 11, 12, 500000, tzinfo=UTC)),
        ("2024-05-01T10:11:12,25Z", datetime(2024, 5, 1, 10, 11, 12, 250000, tzinfo=UTC)),
        ("2024-05-01 10:11:12Z", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01t10:11:12z", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        (" 2024-05-01T10:11:12 ", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12 UTC", datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC)),
        ("2024-05-01T10:11", datetime(2024, 5, 1, 10, 11, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:11:12+02:00", datetime(2024, 5, 1, 8, 11, 12, tzinfo=UTC)),
        ("2024-05-01T01:11:12.1234567+02:30", datetime(2024, 4, 30, 22, 41, 12, 123456, tzinfo=UTC)),
        ("2024-05-01T10:11:12-0530", datetime(2024, 5, 1, 15, 41, 12, tzinfo=UTC)),
        ("2024-05-01T10:11:12+01", datetime(2024, 5, 1, 9, 11, 12, tzinfo=UTC)),
        ("5/1/2024, 10:11:12.123 AM", datetime(2024, 5, 1, 10, 11, 12, 123000, tzinfo=UTC)),
        ("12/31/2024, 12:00:00.000 AM", datetime(2024, 12, 31, 0, 0, 0, tzinfo=UTC)),
        ("5/1/2024, 12:30:00 PM", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("5/1/2024, 1:05:07 pm", datetime(2024, 5, 1, 13, 5, 7, tzinfo=UTC)),
        ("5/1/2024 13:05", datetime(2024, 5, 1, 13, 5, tzinfo=UTC)),
        ("5/1/2024", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    got = parse_timestamp(text)
    assert got == expected and got.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T10:11:12.Z",
        "2024-05-01T10:11:12.1234567890Z",
        "2024-05-01T10:11:12+2:00",
        "2024-05-01T10:11:12+24:00",
        "2024-05-01T10:11:12 junk",
        "2024-05-01X10:11:12Z",
        "2024-+5-01T10:11:12Z",
        "2024-05-01T1a:11:12Z",
        "２０２４-05-01T10:11:12Z",
        "5/1/2024, 13:00:00 PM",
        "5/1/2024, 0:00:00 AM",
        "5/1/24, 10:11:12 AM",
        "5/1/2024, 10:1:12 AM",
        "5/1/2024, 10:11:12.1234567891 AM",
        "13/1/2024, 10:11:12 AM",
        "1714557600",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_parse_timestamp_rejects_non_strings() -> None:
    bad: Callable[[Any], datetime] = parse_timestamp
    with pytest.raises(ValueError):
        bad(None)


def test_csv_rows_cleared_by_the_gate_still_give_the_true_newest_time() -> None:
    """Rows the CSV gate clears unparsed count for relative windows; times with an offset do not order as text
    (01:00+05:00 is 20:00 the day before, earlier than 00:30Z), so they are read as times."""
    header = "Timestamp,DeviceName,ActionType,FileName,ProcessCommandLine\n"
    rows = ("2024-05-13T01:00:00+05:00,h,ProcessCreated,ls,ls -la\n"
            "2024-05-13T00:30:00+00:00,h,ProcessCreated,ls,ls -l\n"
            "2024-05-12T23:00:00.0000000Z,h,ProcessCreated,ls,ls\n")
    counts = ReadCounts()
    events = list(MDE_ADAPTER.parse_counted(io.BytesIO((header + rows).encode()), "t.csv", lambda skip: None, counts))
    assert events == [] and counts.records == 3  # all three cleared by the gate, all counted
    assert counts.newest == datetime(2024, 5, 13, 0, 30, tzinfo=UTC)
