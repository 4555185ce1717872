"""The auditd source: formats, record assembly, decoding, bad input, real samples, and exactly what alerts."""

from __future__ import annotations

import gzip
import io
import json
import random
import runpy
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from imds_detect import ScanOptions, scan
from imds_detect.cli import main
from imds_detect.detect.allowlist import Allowlist, default_entries
from imds_detect.detect.detector import Detector
from imds_detect.model import Event, EventKind
from imds_detect.sources.auditd import AUDITD_ADAPTER, MAX_LINE, AuditdParser
from imds_detect.sources.auditd_process import (
    MAX_ARGUMENT_BYTES,
    Known,
    clean_exe,
    full_comm,
    join_argv,
    program_name,
)
from imds_detect.sources.auditd_records import (
    RecordError,
    classify_syscall,
    epoch_ms,
    interpreted_fields,
    sockaddr_from_hex,
    sockaddr_from_text,
    unescape_interpreted,
)
from imds_detect.sources.base import Skip
from imds_detect.sources.registry import detect_format

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "auditd"
MDE_FIXTURES = ROOT / "tests" / "fixtures" / "mde"
SHARED = ROOT.parent / "shared" / "data"
REAL = SHARED / "auditd"
needs_shared = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/auditd is not present")

DEFAULT = Detector(Allowlist(default_entries()))
NO_ALLOWLIST = Detector(Allowlist([]))
GCE_SAMPLES = ("testdata_normal.log", "testdata_out_of_order.log", "testdata_lost_messages.log")
def parse(data: bytes, name: str = "test.log", **window: int) -> tuple[list[Event], list[Skip], AuditdParser]:
    skips: list[Skip] = []
    parser = AuditdParser(name, skips.append, **window)
    events = list(parser.events(io.BytesIO(data)))
    return events, skips, parser


def parse_file(path: Path) -> tuple[list[Event], list[Skip], AuditdParser]:
    return parse(path.read_bytes(), str(path))


def outcomes(events: Iterable[Event], detector: Detector = DEFAULT) -> dict[int, list[tuple[str, str]]]:
    """Event index -> sorted (rule id, severity) of the alerts it raised (suppressed ones excluded)."""
    result: dict[int, list[tuple[str, str]]] = {}
    for event in events:
        result[event.source.record] = sorted((a.rule_id, a.severity.label) for a in detector.run(event).alerts)
    return result


def suppressed(events: Iterable[Event]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for event in events:
        entries = [a.suppressed_by or "" for a in DEFAULT.run(event).suppressed]
        if entries:
            found[event.source.record] = entries
    return found


def by_index(events: list[Event]) -> dict[int, Event]:
    return {event.source.record: event for event in events}


NET = ("imds-network-connection", "medium")
CMD_MEDIUM = ("imds-command-line", "medium")
CMD_HIGH = ("imds-command-line", "high")

RAW_X86_64 = {
    0: [], 1: [CMD_MEDIUM], 2: [NET], 3: [NET], 4: [("imds-command-line", "low")], 5: [NET], 6: [NET], 7: [], 8: [],
    9: [], 10: [], 13: [CMD_HIGH], 14: [CMD_HIGH],
    15: [("imds-agent-masquerade", "high"), CMD_HIGH], 16: [("imds-network-connection", "high")], 17: [],
    18: [("imds-network-connection", "low")],
}


# --------------------------------------------------------------------------- fixtures and sniffing


def test_fixtures_match_their_generator() -> None:
    generator = runpy.run_path(str(FIXTURES / "generate.py"))
    for name in generator["FILES"]:
        assert generator["render"](name) == (FIXTURES / name).read_bytes(), f"stale {name}: rerun generate.py"


def test_sniff_recognises_every_variant() -> None:
    for path in sorted(FIXTURES.glob("*.log")):
        head = path.read_bytes()[:65536]
        assert AUDITD_ADAPTER.sniff(head), path.name
        adapter = detect_format(head)
        assert adapter is not None and adapter.name == "auditd", path.name


@needs_shared
def test_sniff_recognises_the_real_samples() -> None:
    for path in sorted(REAL.rglob("*.log")):
        head = path.read_bytes()[:65536]
        if head.strip():
            assert AUDITD_ADAPTER.sniff(head), path.name


def test_sniff_rejects_other_formats() -> None:
    others = [path.read_bytes()[:65536] for path in MDE_FIXTURES.iterdir()
              if path.suffix in (".jsonl", ".csv", ".json")]
    others += [
        b'{"Records": [{"eventVersion": "1.08", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole"}]}',
        b'[{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole"},"eventName":"GetObject"}]\n',
        b'83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/ HTTP/1.1" 200 203023 "-" "-"\n' * 5,
        b"May 14 10:11:12 host sshd[123]: Accepted publickey for ubuntu\n" * 3,
        b"", b"\n\n", b"type=\n", b"hello type=SYSCALL msg=audit(1:2): x\n",
    ]
    weblog = SHARED / "weblogs" / "elastic_examples_apache_logs_combined.log"
    if weblog.is_file():
        others.append(weblog.read_bytes()[:65536])
    for head in others:
        assert not AUDITD_ADAPTER.sniff(head), head[:80]


def test_sniff_tolerates_a_junk_first_line_and_ausearch_separators() -> None:
    lines = (FIXTURES / "raw_x86_64.log").read_bytes().splitlines(keepends=True)
    assert AUDITD_ADAPTER.sniff(b"garbage\n" + b"".join(lines[:10]))
    assert AUDITD_ADAPTER.sniff(b"----\ntime->Tue May 14 10:11:12 2024\n" + b"".join(lines[:3]))
    assert not AUDITD_ADAPTER.sniff(b"garbage\n" * 5 + lines[0])


# --------------------------------------------------------------------------- what alerts, per fixture


def test_raw_x86_64_alerts_exactly() -> None:
    events, skips, parser = parse_file(FIXTURES / "raw_x86_64.log")
    assert skips == []
    assert outcomes(events) == RAW_X86_64
    assert suppressed(events) == {10: ["cloud-init-script"], 17: ["gcp-guest-agent"]}
    assert dict(parser.stats.closed) == {"eoe": 19 - 1}  # the openat event (#12) is passed over on the fast path


def test_raw_x86_64_event_fields() -> None:
    events = by_index(parse_file(FIXTURES / "raw_x86_64.log")[0])
    connect = events[2]
    assert connect.kind is EventKind.NETWORK
    assert (connect.remote_ip, connect.remote_port, connect.protocol) == ("169.254.169.254", 80, "")
    assert connect.action == "connect (EINPROGRESS)"
    assert connect.timestamp == datetime(2024, 5, 14, 10, 11, 12, 12000, tzinfo=UTC)
    assert connect.source.format == "auditd" and connect.source.line == 15 and connect.source.record == 2
    process = connect.process
    assert (process.name, process.path, process.pid, process.user) == ("curl", "/usr/bin/curl", 2301, "1000")
    assert process.command_line == "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    assert (process.parent_name, process.parent_path) == ("bash", "/usr/bin/bash")
    assert connect.user == "1000" and connect.host == ""
    assert "type=SOCKADDR" in connect.raw and "type=SYSCALL" in connect.raw
    assert events[5].remote_ip == "fd00:ec2::254"
    assert events[6].remote_ip == "::ffff:169.254.169.254"
    assert events[7].remote_port == 53 and events[7].process.name == "systemd-resolved"
    assert events[9].process.name == "python3.10"  # comm is cloud-init: the script, not the executable
    assert events[13].process.command_line == 'sh -c "curl -s http://169.254.169.254/latest/user-data | sh"'
    long_script = events[14].process.command_line
    assert "'http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role'" in long_script
    assert len(long_script) > 7000
    assert (events[18].process.name, events[18].process.path) == ("my tool", "/opt/my tool/bin/fetch")
    assert 11 not in events and 12 not in events  # unix socket connect, openat


def test_enriched_node_alerts_and_attributes() -> None:
    events, skips, _ = parse_file(FIXTURES / "enriched_node.log")
    assert skips == []
    assert outcomes(events) == {0: [], 1: [], 2: [], 3: [CMD_HIGH], 4: [NET]}
    assert suppressed(events) == {1: ["aws-ec2-instance-connect"], 2: ["aws-ec2-instance-connect"]}
    indexed = by_index(events)
    assert {event.host for event in events} == {"ip-10-0-0-12"}
    assert indexed[2].user == "ec2-instance-connect"
    assert indexed[2].process.parent_name == "eic_curl_authorized_keys"  # comm cut at 15 bytes, completed
    assert indexed[4].user == "ec2-user"


def test_same_curl_without_names_is_not_taken_for_ec2_instance_connect() -> None:
    """Raw (non-ENRICHED) records carry uid numbers: the user-scoped entry cannot match, so it alerts."""
    text = (FIXTURES / "enriched_node.log").read_bytes()
    raw = b"\n".join(line.split(b"\x1d")[0] for line in text.splitlines()) + b"\n"
    events = parse(raw)[0]
    assert by_index(events)[2].user == "996"
    assert outcomes(events)[2] == [NET]


@pytest.mark.parametrize("name", ["aarch64.log", "s390x.log"])
def test_other_arch_variants(name: str) -> None:
    events, skips, _ = parse_file(FIXTURES / name)
    assert skips == []
    assert outcomes(events) == {0: [CMD_MEDIUM], 1: [NET], 2: [NET]}
    indexed = by_index(events)
    assert (indexed[1].remote_ip, indexed[1].remote_port) == ("169.254.169.254", 80)
    assert (indexed[2].remote_ip, indexed[2].remote_port) == ("fd00:ec2::254", 80)
    assert indexed[0].kind is EventKind.PROCESS and indexed[0].host in ("arm-builder-1", "zvm-lpar-3")


def test_i386_socketcall_and_ppc64le() -> None:
    events, skips, _ = parse_file(FIXTURES / "other_arches.log")
    assert skips == []
    assert outcomes(events) == {0: [NET], 2: [NET], 3: [NET]}
    assert by_index(events)[0].action == "connect"


def test_hand_written_ausearch_interpreted() -> None:
    events, skips, parser = parse_file(FIXTURES / "ausearch_i.log")
    assert skips == []
    assert outcomes(events) == {0: [CMD_MEDIUM], 1: [NET], 2: [NET], 3: [NET], 4: [CMD_HIGH], 5: []}
    indexed = by_index(events)
    assert indexed[0].timestamp == datetime(2024, 5, 14, 10, 11, 12, 345000, tzinfo=UTC)
    assert indexed[1].action == "connect (EINPROGRESS)" and indexed[1].user == "ubuntu"
    assert indexed[4].process.command_line == 'sh -c "curl -s http://169.254.169.254/latest/user-data | sh"'
    assert indexed[5].user == "systemd-resolve"
    assert parser.stats.closed["separator"] == 5


def test_real_ausearch_output_matches_the_raw_log() -> None:
    """Output of the real ausearch 3.0.9 on raw_x86_64.log: same events and outcomes (see README for #14)."""
    events, skips, _ = parse_file(FIXTURES / "ausearch_tool_raw_x86_64.log")
    assert skips == []
    expected = dict(RAW_X86_64)
    expected[14] = [("imds-hidden-host", "high")]  # ausearch cut the long argument before the address
    assert outcomes(events) == expected
    raw = by_index(parse_file(FIXTURES / "raw_x86_64.log")[0])
    for index, event in by_index(events).items():
        twin = raw[index]
        assert (event.kind, event.remote_ip, event.remote_port, event.action, event.timestamp) == (
            twin.kind, twin.remote_ip, twin.remote_port, twin.action, twin.timestamp)
        assert (event.process.name, event.process.path, event.process.pid, event.process.parent_name) == (
            twin.process.name, twin.process.path, twin.process.pid, twin.process.parent_name)
        if index not in (14, 18):  # 14: cut by ausearch; 18: PROCTITLE with a space, quoting lost
            assert event.process.command_line == twin.process.command_line


# --------------------------------------------------------------------------- assembly


def test_assembly_interleaving_order_rollover_and_loss() -> None:
    events, skips, parser = parse_file(FIXTURES / "assembly.log")
    assert outcomes(events) == {0: [NET], 1: [CMD_HIGH], 2: [NET], 3: [NET], 4: [NET], 7: [NET], 8: []}
    indexed = by_index(events)
    assert indexed[0].process.command_line.startswith("curl http://169.254.169.254/")
    assert indexed[1].process.command_line == "wget -qO- http://169.254.169.254/latest/user-data"
    assert indexed[2].process.command_line == "python3 /tmp/p.py" and indexed[2].source.line == 9
    assert (indexed[3].remote_ip, indexed[4].remote_ip) == ("169.254.169.254", "169.254.170.2")
    assert [(s.reason, s.line) for s in skips] == [("incomplete-event", 17), ("incomplete-event", 26)]
    assert "without its SYSCALL record" in skips[0].detail and "late PROCTITLE" in skips[1].detail
    assert parser.stats.closed["timeout"] == 3 and parser.stats.late_records == 1
    assert [event.source.record for event in events] == sorted(event.source.record for event in events)


def _connect_lines(serial: int, pid: int, milliseconds: int, eoe: bool) -> list[bytes]:
    stamp = f"{1715681472 + milliseconds // 1000}.{milliseconds % 1000:03d}:{serial}".encode()
    lines = [
        b"type=SYSCALL msg=audit(" + stamp + b"): arch=c000003e syscall=42 success=no exit=-115 a0=3 a1=0 a2=10 "
        b"a3=0 items=0 ppid=1 pid=" + str(pid).encode() + b' uid=0 comm="curl" exe="/usr/bin/curl" key=(null)',
        b"type=SOCKADDR msg=audit(" + stamp + b"): saddr=02000050A9FEA9FE0000000000000000",
    ]
    if eoe:
        lines.append(b"type=EOE msg=audit(" + stamp + b"):")
    return lines


def test_memory_stays_bounded_without_eoe() -> None:
    """Thousands of events, none with EOE, records of neighbours interleaved: open events never exceed the
    window, every event is still emitted once, and the oldest are flushed (counted as evicted)."""
    rng = random.Random(5)
    lines: list[bytes] = []
    for serial in range(3000):
        pair = _connect_lines(serial, 10000 + serial, 0, eoe=False)
        lines.extend(pair)
    for _ in range(2000):  # shuffle locally: records move at most a few lines
        index = rng.randrange(len(lines) - 3)
        lines[index], lines[index + 2] = lines[index + 2], lines[index]
    events, skips, parser = parse(b"\n".join(lines) + b"\n", window_events=16, max_pids=100)
    assert parser.stats.max_open <= 17
    assert parser.stats.closed["evicted"] > 2900
    assert len(events) + len([s for s in skips if s.reason == "incomplete-event"]) >= 2990
    assert len(parser.assembler._pids) <= 100
    assert len(events) == len({event.process.pid for event in events})


def test_time_window_closes_events_and_pid_map_attributes_connects() -> None:
    exec_stamp = b"1715681472.000:1"
    lines = [
        b"type=SYSCALL msg=audit(" + exec_stamp + b"): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 "
        b'a3=4 items=2 ppid=500 pid=600 uid=0 comm="curl" exe="/usr/bin/curl" key=(null)',
        b"type=EXECVE msg=audit(" + exec_stamp + b'): argc=2 a0="curl" a1="http://169.254.169.254/latest/"',
        *_connect_lines(2, 600, 5000, eoe=False),
        *_connect_lines(3, 601, 9000, eoe=True),
    ]
    events, _, parser = parse(b"\n".join(lines))
    assert [event.kind for event in events] == [EventKind.PROCESS, EventKind.NETWORK, EventKind.NETWORK]
    assert events[1].process.command_line == "curl http://169.254.169.254/latest/"  # from the execve of pid 600
    assert events[2].process.command_line == ""  # pid 601 ran nothing seen
    assert parser.stats.closed == {"timeout": 2, "eoe": 1}


def test_parents_from_other_syscalls_and_pids_per_node() -> None:
    def syscall(node: bytes, serial: int, number: int, pid: int, ppid: int, comm: bytes, exe: bytes) -> bytes:
        return (node + b"type=SYSCALL msg=audit(1715681472.000:" + str(serial).encode() + b"): arch=c000003e "
                b"syscall=" + str(number).encode() + b" success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 ppid="
                + str(ppid).encode() + b" pid=" + str(pid).encode() + b" uid=0 comm=" + comm + b" exe=" + exe
                + b" key=(null)")

    sockaddr = b"): saddr=02000050A9FEA9FE"
    lines = [
        syscall(b"node=a ", 1, 257, 50, 1, b'"bash"', b'"/usr/bin/bash"'),  # openat: fast path, parsed lazily
        syscall(b"node=a ", 2, 59, 100, 50, b'"curl"', b'"/usr/bin/curl"'),
        b'node=a type=EXECVE msg=audit(1715681472.000:2): argc=2 a0="curl" a1="http://169.254.169.254/x"',
        syscall(b"node=b ", 2, 42, 100, 60, b'"curl"', b'"/usr/bin/curl"'),  # same pid, other host
        b"node=b type=SOCKADDR msg=audit(1715681472.000:2" + sockaddr,
        syscall(b"node=a ", 3, 42, 100, 50, b'"curl"', b'"/usr/bin/curl"'),
        b"node=a type=SOCKADDR msg=audit(1715681472.000:3" + sockaddr,
    ]
    events = parse(b"\n".join(lines))[0]
    assert [(e.host, e.kind.value, e.process.command_line, e.process.parent_name, e.process.parent_path)
            for e in events] == [
        ("a", "process", "curl http://169.254.169.254/x", "bash", "/usr/bin/bash"),
        ("b", "network", "", "", ""),
        ("a", "network", "curl http://169.254.169.254/x", "bash", "/usr/bin/bash"),
    ]


def test_execve_argument_bounds_and_missing_arguments() -> None:
    stamp = b"1715681472.000:1"
    big = b"A" * (MAX_ARGUMENT_BYTES + 10)
    lines = [
        b"type=SYSCALL msg=audit(" + stamp + b"): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 "
        b'items=2 ppid=1 pid=7 uid=0 comm="python3" exe="/usr/bin/python3.12" key=(null)',
        b"type=EXECVE msg=audit(" + stamp + b'): argc=4 a0="python3" a1="-c" a2_len=' + str(len(big)).encode()
        + b" a2[0]=" + big.hex().upper().encode(),
    ]
    events, skips, parser = parse(b"\n".join(lines))
    assert skips == []
    assert events[0].process.command_line == "python3 -c"
    assert "arguments cut at 65536 bytes" in events[0].raw and "a3 missing" in events[0].raw
    assert parser.stats.truncated_arguments == 1


def test_failed_execve_and_connect_without_sockaddr() -> None:
    stamp = b"1715681472.000:1"
    lines = [
        b"type=SYSCALL msg=audit(" + stamp + b"): arch=c000003e syscall=59 success=no exit=-13 a0=1 a1=2 a2=3 a3=4 "
        b'items=1 ppid=1 pid=7 uid=0 comm="bash" exe="/usr/bin/bash" key=(null)',
        b"type=EXECVE msg=audit(" + stamp + b'): argc=2 a0="/mnt/noexec/curl" a1="http://169.254.169.254/"',
        b"type=SYSCALL msg=audit(1715681472.000:2): arch=c000003e syscall=42 success=yes exit=0 a0=1 a1=2 a2=3 "
        b'a3=4 items=0 ppid=1 pid=8 uid=0 comm="curl" exe="/usr/bin/curl" key=(null)',
    ]
    events, skips, _ = parse(b"\n".join(lines))
    assert skips == [] and len(events) == 1
    assert events[0].action == "execve (EACCES)" and events[0].process.path == ""
    assert events[0].process.name == "curl"
    assert outcomes(events) == {0: [CMD_MEDIUM]}


# --------------------------------------------------------------------------- bad input


def test_malformed_records_are_skipped_with_their_lines() -> None:
    events, skips, _ = parse_file(FIXTURES / "malformed.log")
    assert [(s.reason, s.line) for s in skips] == [
        ("malformed-record", 1), ("malformed-record", 2), ("bad-hex", 5), ("bad-hex", 9), ("malformed-record", 11),
        ("malformed-record", 12), ("malformed-record", 14), ("invalid-utf8", 16), ("malformed-record", 19),
    ]
    assert all(s.file.endswith("malformed.log") for s in skips)
    assert outcomes(events) == {1: [], 2: [NET], 5: [NET]}
    assert by_index(events)[1].process.command_line == "curl"


def test_overlong_lines_crlf_and_a_last_line_without_newline() -> None:
    good = b"\r\n".join(_connect_lines(1, 5, 0, eoe=True))
    data = b"type=PATH msg=audit(1:2): " + b"x" * (MAX_LINE + 5) + b"\r\n" + good  # no final newline
    events, skips, _ = parse(data)
    assert [(s.reason, s.line) for s in skips] == [("malformed-record", 1)]
    assert len(events) == 1 and events[0].source.line == 2 and events[0].remote_ip == "169.254.169.254"
    tail = b"type=EXECVE msg=audit(1715681472.000:9): a0=" + b"41" * MAX_LINE  # cut mid-line, no newline
    events, skips, _ = parse(good + b"\n" + tail)
    assert len(events) == 1 and [s.reason for s in skips] == ["malformed-record"]


def test_unknown_arch_with_an_address_is_reported() -> None:
    lines = [
        b"type=SYSCALL msg=audit(1715681472.000:1): arch=8000002b syscall=98 success=yes exit=0 a0=1 a1=2 a2=3 "
        b'a3=4 items=0 ppid=1 pid=8 uid=0 comm="curl" exe="/usr/bin/curl" key=(null)',
        b"type=SOCKADDR msg=audit(1715681472.000:1): saddr=02000050A9FEA9FE",
    ]
    for ordered in (lines, lines[::-1]):
        events, skips, _ = parse(b"\n".join(ordered))
        assert events == [] and [(s.reason, s.line) for s in skips] == [("unsupported-arch", 1)]
    assert parse(lines[0])[:2] == ([], [])  # no address, no argv: nothing worth reporting


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_logs_never_raise(data: st.DataObject) -> None:
    source = bytearray((FIXTURES / "raw_x86_64.log").read_bytes()[:6000])
    for _ in range(data.draw(st.integers(0, 12))):
        position = data.draw(st.integers(0, len(source) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            source[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del source[position: position + data.draw(st.integers(1, 300))]
        else:
            source[position:position] = data.draw(st.binary(max_size=40))
        if not source:
            break
    events, skips, _ = parse(bytes(source))
    for event in events:
        DEFAULT.run(event)
    assert all(skip.line >= 1 for skip in skips)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(blob: bytes) -> None:
    parse(blob)
    parse(b"type=SYSCALL msg=audit(1715681472.000:1): " + blob)
    parse(b"type=SOCKADDR msg=audit(1715681472.000:1): saddr=" + blob.hex().encode()[:80])


# --------------------------------------------------------------------------- through the scanner


def test_gzip_and_several_files_through_scan(tmp_path: Path) -> None:
    packed = tmp_path / "audit.log.1.gz"
    packed.write_bytes(gzip.compress((FIXTURES / "aarch64.log").read_bytes()))
    plain = tmp_path / "audit.log"
    plain.write_bytes((FIXTURES / "s390x.log").read_bytes())
    result = scan([str(plain), str(packed)])
    assert [report.format for report in result.summary.files] == ["auditd", "auditd"]
    assert sorted((a.host, a.rule_id) for a in result.alerts) == sorted(
        [(host, rule) for host in ("arm-builder-1", "zvm-lpar-3")
         for rule in ("imds-command-line", "imds-network-connection", "imds-network-connection")])


def test_cli_reads_auditd_with_format_forced() -> None:
    result = CliRunner().invoke(main, ["scan", str(FIXTURES / "malformed.log"), "--format", "auditd",
                                       "--output", "jsonl"])
    assert result.exit_code == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert {a["source"]["format"] for a in alerts} == {"auditd"}
    assert sorted(a["source"]["line"] for a in alerts) == [7, 20]
    assert "bad-hex" in result.stderr


# --------------------------------------------------------------------------- real samples


def _scan_real(name: str, allowlist: Allowlist | None = None) -> Any:
    options = ScanOptions() if allowlist is None else ScanOptions(allowlist=allowlist)
    return scan([str(REAL / "go-libaudit" / name)], options)


@needs_shared
@pytest.mark.parametrize("name", GCE_SAMPLES)
def test_real_gce_agent_connect_is_parsed(name: str) -> None:
    events, skips, _ = parse_file(REAL / "go-libaudit" / name)
    assert skips == []
    network = [event for event in events if event.kind is EventKind.NETWORK]
    assert len(network) == 1
    event = network[0]
    assert (event.remote_ip, event.remote_port, event.action) == ("169.254.169.254", 80, "connect (EINPROGRESS)")
    assert (event.process.pid, event.process.path, event.process.name) == (1172, "/usr/bin/python2.7", "python2.7")
    assert event.process.command_line == "" and event.user == "root"
    assert 'comm="google_accounts"' in event.raw
    assert [e.process.command_line for e in events if e.kind is EventKind.PROCESS] == [
        "grep --color=auto mapping", "cat securitybeat"]


@needs_shared
@pytest.mark.parametrize("name", GCE_SAMPLES)
def test_real_gce_agent_alerts_without_the_default_allowlist(name: str) -> None:
    result = _scan_real(name, Allowlist([]))
    assert [(a.rule_id, a.severity.label, a.endpoint.canonical) for a in result.alerts] == [
        ("imds-network-connection", "medium", "169.254.169.254")]


@needs_shared
@pytest.mark.parametrize("name", GCE_SAMPLES)
def test_real_gce_agent_does_not_alert_by_default(name: str) -> None:
    """No argv in the log: the daemon entry (system Python, comm, init parent, root, no login) suppresses it."""
    result = _scan_real(name)
    assert result.alerts == []
    assert result.summary.suppressed == {"gcp-legacy-daemons-daemon": 1}


def _gce_daemon_connect(**change: str) -> bytes:
    """The real GCE agent's connect() (testdata_normal.log, serial 58) with fields replaced."""
    fields = {"ppid": "1", "auid": "4294967295", "uid": "0", "comm": '"google_accounts"',
              "exe": '"/usr/bin/python2.7"'}
    fields.update(change)
    syscall = ("type=SYSCALL msg=audit(1492037289.295:58): arch=c000003e syscall=42 success=no exit=-115 a0=6 "
               "a1=7ffed2893080 a2=10 a3=fe items=0 ppid={ppid} pid=1172 auid={auid} uid={uid} gid=0 euid=0 suid=0 "
               "fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm={comm} exe={exe} key=(null)")
    return "\n".join([syscall.format(**fields),
                      "type=SOCKADDR msg=audit(1492037289.295:58): saddr=02000050A9FEA9FE0000000000000000"]).encode()


def test_gce_daemon_entry_is_suppressed_only_with_its_whole_identity() -> None:
    assert suppressed(parse(_gce_daemon_connect())[0]) == {0: ["gcp-legacy-daemons-daemon"]}
    for change in ({"ppid": "4242"}, {"auid": "1000"}, {"uid": "1000"}, {"comm": '"google_accountz"'},
                   {"exe": '"/tmp/python2.7"'}, {"exe": '"/usr/bin/perl"'}):
        events = parse(_gce_daemon_connect(**change))[0]
        assert [rule for rule, _ in outcomes(events)[0]] == ["imds-network-connection"], change
        assert suppressed(events) == {}, change


def test_gce_daemon_entry_needs_the_script_when_a_command_line_names_one() -> None:
    title = b"\0".join([b"/usr/bin/python2.7", b"/tmp/x.py"]).hex().upper().encode()
    events = parse(_gce_daemon_connect() + b"\ntype=PROCTITLE msg=audit(1492037289.295:58): proctitle=" + title)[0]
    assert events[0].process.command_line == "/usr/bin/python2.7 /tmp/x.py"
    assert outcomes(events) == {0: [NET]}


@needs_shared
def test_real_gce_agent_with_its_argv_is_recognised() -> None:
    """The same real records plus the PROCTITLE a current kernel adds: the script entry identifies the agent."""
    lines = (REAL / "go-libaudit" / "testdata_normal.log").read_bytes().splitlines()[:2]
    title = b"\0".join([b"/usr/bin/python2.7", b"/usr/bin/google_accounts_daemon"]).hex().upper().encode()
    lines.append(b"type=PROCTITLE msg=audit(1492037289.295:58): proctitle=" + title)
    events = parse(b"\n".join(lines))[0]
    assert outcomes(events) == {0: []}
    assert suppressed(events) == {0: ["gcp-legacy-daemons-script"]}
    assert outcomes(events, NO_ALLOWLIST) == {0: [NET]}


@needs_shared
def test_real_cli_default_and_no_default_allowlist() -> None:
    path = str(REAL / "go-libaudit" / "testdata_normal.log")
    plain = CliRunner().invoke(main, ["scan", path, "--no-default-allowlist", "--output", "jsonl"])
    assert plain.exit_code == 0, plain.stderr
    alerts = [json.loads(line) for line in plain.stdout.splitlines() if line.strip()]
    assert [(a["rule_id"], a["process"]["pid"]) for a in alerts] == [("imds-network-connection", 1172)]


@needs_shared
def test_real_yaml_event_of_the_ubuntu_gce_agent() -> None:
    yaml = pytest.importorskip("yaml")
    tests = yaml.safe_load((REAL / "go-libaudit" / "aucoalesce_testdata_ubuntu-16.10-linux-4.8.0.yaml").read_text())
    events, skips, _ = parse(tests["tests"]["connect syscall"].encode())
    assert skips == []
    assert len(events) == 1 and events[0].process.path == "/usr/bin/python3.5"
    assert events[0].process.command_line == "(g_daemon)"
    assert outcomes(events, NO_ALLOWLIST) == {0: [NET]}
    assert outcomes(events) == {0: []}  # a rewritten title names no script: the daemon entry applies


@needs_shared
def test_real_single_record_logs() -> None:
    events, skips, _ = parse_file(REAL / "go-libaudit" / "auparse_testdata_audit-rhel7.log")
    assert events == []
    orphans = [s for s in skips if "169.254.169.254 port 80 without its SYSCALL" in s.detail]
    assert [(s.reason, s.line) for s in orphans] == [("incomplete-event", 22)]
    for path in sorted((REAL / "otrf").glob("*.log")):
        events, skips, _ = parse_file(path)
        assert skips == [] and events and all(event.kind is EventKind.PROCESS for event in events)
        assert all(alerts == [] for alerts in outcomes(events, NO_ALLOWLIST).values())


# --------------------------------------------------------------------------- unit: records and identity


@pytest.mark.parametrize(("value", "expected"), [
    ("02000050A9FEA9FE0000000000000000", ("inet", "169.254.169.254", 80)),
    ("02000050A9FEA9FE", ("inet", "169.254.169.254", 80)),  # no trailing zeros
    ("00020050A9FEA9FE00000000", ("inet", "169.254.169.254", 80)),  # big-endian family (s390x)
    ("0A000050" + "00000000" + "FD000EC2000000000000000000000254" + "00000000", ("inet6", "fd00:ec2::254", 80)),
    ("000A0050" + "00000000" + "00000000000000000000FFFFA9FEA9FE", ("inet6", "::ffff:169.254.169.254", 80)),
])
def test_sockaddr_from_hex(value: str, expected: tuple[str, str, int]) -> None:
    address = sockaddr_from_hex(value)
    assert address is not None and (address.family, address.ip, address.port) == expected


def test_sockaddr_other_families_and_errors() -> None:
    assert sockaddr_from_hex("01002F7661722F72756E2F6E7363642F736F636B657400") is None  # AF_UNIX
    assert sockaddr_from_hex("100000000000000000000000") is None  # AF_NETLINK
    assert sockaddr_from_hex("00000000") is None  # AF_UNSPEC
    for bad, reason in (("0200005", "bad-hex"), ("02000050A9FE", "malformed-record"), ("0A000050", "malformed-record"),
                        ("ZZ", "bad-hex"), ("02", "malformed-record")):
        with pytest.raises(RecordError) as raised:
            sockaddr_from_hex(bad)
        assert raised.value.reason == reason
    address = sockaddr_from_text("{ saddr_fam=inet6 laddr=fd00:ec2::254 lport=80 lflowinfo=0 lscope=0 }")
    assert address is not None and (address.ip, address.port) == ("fd00:ec2::254", 80)
    address = sockaddr_from_text("{ fam=inet laddr=169.254.169.254 lport=80 }")
    assert address is not None and address.ip == "169.254.169.254"
    assert sockaddr_from_text("{ saddr_fam=local path=/run/x }") is None
    with pytest.raises(RecordError):
        sockaddr_from_text("unknown-family(512)")


@pytest.mark.parametrize(("arch", "syscall", "a0", "interpreted", "expected"), [
    ("c000003e", "42", "3", False, "connect"), ("c000003e", "59", "", False, "execve"),
    ("c000003e", "322", "", False, "execve"), ("c000003e", "257", "", False, "other"),
    ("c000003e", str(42 | 0x40000000), "", False, "connect"),  # x32
    ("40000003", "102", "3", False, "connect"), ("40000003", "102", "1", False, "other"),
    ("40000003", "362", "", False, "connect"), ("40000003", "11", "", False, "execve"),
    ("c00000b7", "203", "", False, "connect"), ("c00000b7", "221", "", False, "execve"),
    ("80000016", "362", "", False, "connect"), ("80000016", "11", "", False, "execve"),
    ("c0000015", "328", "", False, "connect"), ("c0000015", "11", "", False, "execve"),
    ("c00000f3", "203", "", False, "connect"), ("8000002b", "42", "", False, None),
    ("x86_64", "connect", "", True, "connect"), ("i386", "socketcall(connect)", "connect", True, "connect"),
    ("i386", "socketcall(socket)", "socket", True, "other"), ("aarch64", "execve", "", True, "execve"),
])
def test_syscall_tables(arch: str, syscall: str, a0: str, interpreted: bool, expected: str | None) -> None:
    assert classify_syscall(arch, syscall, a0, interpreted) == expected


@pytest.mark.parametrize(("stamp", "interpreted", "expected"), [
    (b"1492037289.295:58", False, 1492037289295),
    (b"05/14/24 10:11:12.345:1", True, 1715681472345),
    (b"05/14/2024 10:11:12.345:1", True, 1715681472345),
    (b"2024-05-14 10:11:12.345:1", True, 1715681472345),
    (b"14.05.2024 10:11:12.345:1", True, 1715681472345),
    (b"14/05/2024 10:11:12.345:1", True, 1715681472345),
])
def test_event_stamps(stamp: bytes, interpreted: bool, expected: int) -> None:
    assert epoch_ms(stamp, interpreted) == expected


@pytest.mark.parametrize("stamp", [b"1492037289:58", b"1492037289.2a5:58", b"1492037289.295",
                                   b"13/13/2024 10:11:12.000:1"])
def test_bad_event_stamps(stamp: bytes) -> None:
    with pytest.raises(RecordError):
        epoch_ms(stamp, b"/" in stamp)


def test_identity_helpers() -> None:
    assert clean_exe("/usr/bin/python2.7;58d1ccfb (deleted)") == "/usr/bin/python2.7"
    assert clean_exe("/tmp/x (deleted)") == "/tmp/x"
    assert clean_exe("/usr/bin/curl") == "/usr/bin/curl"
    assert program_name("google_accounts", "/usr/bin/python2.7") == "python2.7"  # a script: comm names it
    assert program_name("cloud-init", "/usr/bin/python3.10") == "python3.10"
    assert program_name("google_guest_ag", "/usr/bin/google_guest_agent") == "google_guest_agent"  # cut at 15
    assert program_name("nc", "/usr/bin/nc.openbsd") == "nc"  # run through a symlink
    assert program_name("cloud-init", "/usr/bin/curl") == "cloud-init"  # a renamed/symlinked tool keeps its name
    assert program_name("wget", "/bin/busybox") == "wget"
    assert program_name("", "/usr/bin/curl") == "curl" and program_name("curl", "") == "curl"
    parent = Known("/usr/bin/bash", "eic_curl_author",
                   ("/bin/sh", "/usr/share/ec2-instance-connect/eic_curl_authorized_keys", "ec2-user"))
    assert full_comm(parent) == "eic_curl_authorized_keys"
    assert full_comm(Known("/usr/bin/bash", "bash")) == "bash"
    assert join_argv(["sh", "-c", "a b", 'say "hi"', "it's \"x\"", ""]) == (
        "sh -c \"a b\" 'say \"hi\"' it's \"x\" \"\"")
    assert unescape_interpreted("a\\012b\\011c\\134d") == "a\nb\tc\\134d"
    fields = interpreted_fields("saddr={ saddr_fam=inet laddr=1.2.3.4 lport=80 } exit=EINPROGRESS(Operation now "
                                "in progress) comm=my tool")
    assert fields == {"saddr": "{ saddr_fam=inet laddr=1.2.3.4 lport=80 }",
                      "exit": "EINPROGRESS(Operation now in progress)", "comm": "my tool"}


def test_log_without_connect_or_execve_is_read_not_empty(tmp_path: Any) -> None:
    """Audit records of other kinds are records read: the summary counts them and the scan is clean (exit 0)."""
    log = tmp_path / "audit.log"
    log.write_text(
        "type=USER_LOGIN msg=audit(1481077043.193:421): pid=1298 uid=0 auid=1000 ses=1 res=1\n"
        "\n"
        "type=SYSCALL msg=audit(1481077044.000:422): arch=c000003e syscall=2 success=yes exit=3 a0=1 a1=2 a2=3 "
        'a3=4 items=1 ppid=1 pid=7 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) '
        'ses=1 comm="cat" exe="/usr/bin/cat" key=(null)\n'
        'type=PATH msg=audit(1481077044.000:422): item=0 name="/etc/hosts" inode=1 dev=08:01 mode=0100644\n'
        "type=EOE msg=audit(1481077044.000:422): \n"
    )
    result = CliRunner().invoke(main, ["scan", str(log), "--output", "jsonl"])
    assert result.exit_code == 0, result.stderr
    assert "4 record(s) read" in result.stderr
    assert "EMPTY" not in result.stderr and "no records" not in result.stderr
    assert result.stdout.strip() == ""
