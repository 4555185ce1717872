"""The auditd benchmark generator writes deterministic, labelled raw audit records that imds-detect reads as
labelled: every planted event alerts at its line, no decoy or other event does."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from imds_detect import ScanOptions, scan

GENERATOR = Path(__file__).resolve().parents[1] / "benchmarks" / "generate_auditd.py"
SEED = 11
RATIO = 50

RECORD = re.compile(r"^(?:node=(\S+) )?type=([A-Z_]+) msg=audit\((\d+)\.(\d{3}):(\d+)\):")
METADATA_IPS = {"169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.170.23",
                "100.100.100.200"}
# What a decoy event touches: the metadata address (text or saddr hex), the AWS resolver and time
# addresses, Azure's WireServer.
DECOY_MARKS = ("A9FEA9FE", "A9FEA9FD", "A9FEA97B", "A83F8110", "169.254.169.254",
               "3136392E3235342E3136392E323534")
# An execve whose arguments continue in a second EXECVE record (the kernel's 7500-byte record budget):
# the default scan's shortcut once judged it by its first record alone; it must alert like the others.
LONG_ARGUMENTS = ("curl-long-headers", "execve")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_auditd", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

Generated = tuple[Path, dict[str, Any], list[str]]


def _run(out: Path, size: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--size", size, "--out", str(out), "--seed", str(SEED), "--ratio",
         str(RATIO), *extra],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return done.stdout


def _load(out: Path) -> Generated:
    labels = json.loads(out.with_name(out.name + ".labels.json").read_text(encoding="utf-8"))
    return out, labels, out.read_text(encoding="ascii").split("\n")[:-1]


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    out = tmp_path_factory.mktemp("auditd") / "audit.log"
    stdout = _run(out, "2MB")
    assert re.search(r"records written: \d+", stdout) and "MB/s" in stdout
    return _load(out)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    out = tmp_path_factory.mktemp("auditd-nodes") / "audit.log"
    _run(out, "1MB", "--node", "3")
    return _load(out)


def _event(lines: list[str], first: int) -> list[str]:
    """The records of the event whose first record is at 1-based line `first` (same node and stamp)."""
    match = RECORD.match(lines[first - 1])
    assert match, lines[first - 1]
    key = (match.group(1), match.group(3), match.group(4), match.group(5))
    records = []
    for line in lines[first - 1: first + 40]:
        m = RECORD.match(line)
        if m and (m.group(1), m.group(3), m.group(4), m.group(5)) == key:
            records.append(line)
    return records


def _value(field: str) -> str:
    if field.startswith('"'):
        return field[1:-1]
    return bytes.fromhex(field).decode()


def _argv(records: list[str]) -> str:
    """The execve arguments (quoted, hex, or aN_len/aN[i] chunks over several records) joined by spaces."""
    parts: dict[int, list[str]] = defaultdict(list)
    for record in records:
        if " type=EXECVE " not in f" {record}":
            continue
        for index, chunk, value in re.findall(r" a(\d+)(?:\[(\d+)\])?=(\"[^\"]*\"|[0-9A-F]+)", record):
            del chunk
            parts[int(index)].append(_value(value))
    return " ".join("".join(parts[i]) for i in sorted(parts))


def _sockaddr_ip(records: list[str]) -> str:
    for record in records:
        match = re.search(r"type=SOCKADDR msg=audit\([^)]*\): saddr=([0-9A-F]+)", record)
        if match:
            data = bytes.fromhex(match.group(1))
            if data[:2] == b"\x02\x00":
                return str(ipaddress.IPv4Address(data[4:8]))
            if data[:2] == b"\x0a\x00":
                address = ipaddress.IPv6Address(data[8:24])
                return f"::ffff:{address.ipv4_mapped}" if address.ipv4_mapped else address.compressed
    return ""


@pytest.mark.parametrize("which", ["single", "nodes"])
def test_records_are_raw_audit_records(which: str, request: pytest.FixtureRequest) -> None:
    path, labels, lines = request.getfixturevalue(which)
    assert labels["records"] == len(lines) and labels["bytes"] == path.stat().st_size
    kinds: set[str] = set()
    first_serial: dict[tuple[str, str], int] = {}
    order: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        match = RECORD.match(line)
        assert match, line
        node, kind, serial = match.group(1) or "", match.group(2), int(match.group(5))
        assert (node != "") == (which == "nodes")
        kinds.add(kind)
        if (node, match.group(5)) not in first_serial:
            first_serial[(node, match.group(5))] = serial
            order[node].append(serial)
    for serials in order.values():  # events appear in serial order per node (records may interleave)
        assert serials == sorted(serials) and len(set(serials)) == len(serials)
    assert {"SYSCALL", "EXECVE", "CWD", "PATH", "SOCKADDR", "PROCTITLE", "EOE", "USER_ACCT", "CRED_ACQ",
            "SERVICE_START"} <= kinds
    text = "\n".join(lines)
    for syscall in (42, 59, 257):
        assert f" syscall={syscall} " in text
    assert "saddr=0100" in text and "saddr=0200" in text and "saddr=0A00" in text
    assert labels["interleaved_pairs"] > 0
    if which == "nodes":
        assert {m.group(1) for m in map(RECORD.match, lines) if m} == {"host1", "host2", "host3"}


def test_labels_match_the_records(single: Generated) -> None:
    _, labels, lines = single
    planted = labels["planted"]
    assert labels["planted_count"] == len(planted) == len(labels["lines"]) > 20
    assert labels["accesses"] >= labels["events"] / RATIO / 2
    templates = {p["template"] for p in planted}
    assert len(templates) >= 10
    assert LONG_ARGUMENTS[0] in templates
    for p in planted:
        records = _event(lines, p["line"])
        assert " type=SYSCALL " in f" {records[0]}", p
        if p["kind"] == "execve":
            assert " syscall=59 " in records[0]
            if p["host"]:
                assert p["host"] in _argv(records), p
        else:
            assert " syscall=42 " in records[0]
            assert _sockaddr_ip(records) in METADATA_IPS, p
    assert sum(labels["decoy_counts"].values()) > 20
    for kind, decoy_lines in labels["decoys"].items():
        for line in decoy_lines:
            records = _event(lines, line)
            assert " type=SYSCALL " in f" {records[0]}", (kind, line)
            if kind.endswith("-exec"):  # the execve of a script agent (cloud-init, waagent) under python3
                assert " syscall=59 " in records[0] and " comm=" in records[0], (kind, line)
            else:
                assert any(mark in record for record in records for mark in DECOY_MARKS), (kind, line)


def test_deterministic_and_prefix(tmp_path: Path, single: Generated) -> None:
    big = single[0]
    one = tmp_path / "one.log"
    again = tmp_path / "again.log"
    gen.generate(one, 1_000_000, seed=SEED, ratio=RATIO)
    gen.generate(again, 1_000_000, seed=SEED, ratio=RATIO)
    small = one.read_bytes()
    assert small == again.read_bytes()
    assert big.read_bytes().startswith(small) and len(small) < big.stat().st_size
    small_labels = json.loads(one.with_name(one.name + ".labels.json").read_text(encoding="utf-8"))
    big_labels = single[1]
    assert big_labels["planted"][: len(small_labels["planted"])] == small_labels["planted"]
    other = tmp_path / "other.log"
    gen.generate(other, 1_000_000, seed=SEED + 1, ratio=RATIO)
    assert other.read_bytes() != small


def _alerted_rules(path: Path, prefilter: bool) -> dict[int, set[str]]:
    result = scan([str(path)], ScanOptions(format="auditd", prefilter=prefilter))
    rules_at: dict[int, set[str]] = defaultdict(set)
    for alert in result.alerts:
        assert alert.source.file.endswith(path.name)
        rules_at[alert.source.line].add(alert.rule_id)
    return rules_at


@pytest.mark.parametrize(("which", "prefilter"), [("single", True), ("single", False), ("nodes", True)])
def test_scan_alerts_exactly_on_planted_events(which: str, prefilter: bool, request: pytest.FixtureRequest) -> None:
    path, labels, _ = request.getfixturevalue(which)
    rules_at = _alerted_rules(path, prefilter)
    planted = {p["line"]: p for p in labels["planted"]}
    decoys = {line for lines in labels["decoys"].values() for line in lines}
    missed = [p for line, p in planted.items() if line not in rules_at]
    assert not missed, missed[:5]
    wrong = [(p, sorted(rules_at[line])) for line, p in planted.items() if not set(p["rules"]) <= rules_at[line]]
    assert not wrong, wrong[:5]
    assert not set(rules_at) & decoys
    assert set(rules_at) == set(planted)
