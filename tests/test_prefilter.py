"""The prefilter is safe: a record that can alert is never cleared, whatever the host spelling.

Hypothesis builds Defender rows that reach a metadata endpoint through every encoding class of
DOMAIN.md section 2 (numeric forms with wrapping, IPv4-mapped IPv6, Unicode, percent-encoding,
names, wildcard DNS) and asserts: every row that alerts without the prefilter is selected by it
(Hyperscan and the pure-Python engine alike), and a whole scan gives identical alerts with and
without it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hosts import METADATA_V4, METADATA_V6, ipv4_spelling, ipv6_spelling, unicode_and_percent

from imds_detect import ScanOptions, Severity, scan
from imds_detect.detect.allowlist import Allowlist
from imds_detect.detect.detector import Detector
from imds_detect.engine.prefilter import Prefilter
from imds_detect.knowledge import endpoints
from imds_detect.knowledge.indicators import could_mention_metadata
from imds_detect.knowledge.urls import find_metadata_references
from imds_detect.sources.mde import MDE_ADAPTER

PREFILTERS = (Prefilter(MDE_ADAPTER.free_text_keys, MDE_ADAPTER.record_edges),
              Prefilter(MDE_ADAPTER.free_text_keys, MDE_ADAPTER.record_edges, use_hyperscan=False))
DETECTOR = Detector(Allowlist([]))
ROOT = Path(__file__).resolve().parent.parent

COMMANDS = (
    ("/usr/bin/curl", "curl -s http://{h}/latest/meta-data/iam/security-credentials/role"),
    ("/usr/bin/curl", "curl {h}/latest/user-data"),
    ("/usr/bin/wget", "wget -qO- 'http://{h}:80/computeMetadata/v1/instance/service-accounts/default/token'"),
    ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
     "powershell -c \"Invoke-RestMethod -Headers @{{Metadata='true'}} -Uri http://{h}/metadata/instance\""),
    ("/usr/bin/bash", "bash -c 'exec 3<>/dev/tcp/{h}/80; cat <&3'"),
    ("/usr/bin/nc", "nc {h} 80"),
    ("/usr/bin/python3", "python3 -c \"import urllib.request as u; u.urlopen('http://{h}/latest/api/token')\""),
    ("/usr/bin/curl", "curl http://good.example.com@{h}/latest/meta-data/"),
    ("/usr/bin/curl", "curl 'https://app.example.com/fetch?url=http://{h}/latest/user-data'"),
)


def _in_url(host: str) -> str:
    """Bracket a bare IPv6 literal so that it can stand in a URL."""
    return f"[{host}]" if ":" in host and not host.startswith("[") and "%5b" not in host.lower() else host


@st.composite
def metadata_host_spelling(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["v4", "v6", "name", "wildcard"]))
    if kind == "v4":
        return draw(ipv4_spelling(int(ipaddress.IPv4Address(draw(st.sampled_from(METADATA_V4))))))
    if kind == "v6":
        return draw(ipv6_spelling(int(ipaddress.IPv6Address(draw(st.sampled_from(METADATA_V6))))))
    if kind == "name":
        names = [n.name for n in endpoints.NAMES]
        return draw(unicode_and_percent(draw(st.sampled_from(names))))
    address = draw(st.sampled_from(METADATA_V4))
    label = draw(st.sampled_from([address, address.replace(".", "-"),
                                  f"{int(ipaddress.IPv4Address(address)):08x}"]))
    return draw(unicode_and_percent(f"{label}.{draw(st.sampled_from(endpoints.WILDCARD_DNS_SUFFIXES))}"))


def _row(draw: st.DrawFn, host: str) -> dict[str, object]:
    where = draw(st.sampled_from(["process", "network-url", "network-ip", "http", "dns", "powershell",
                                  "encoded-command"]))
    base: dict[str, object] = {"Timestamp": "2026-11-27T08:00:00.1234567Z", "DeviceName": "vm-1",
                               "ReportId": 1, "DeviceId": "0123456789abcdef0123456789abcdef01234567"}
    if where in ("process", "powershell"):
        path, template = draw(st.sampled_from(COMMANDS))
        command = template.format(h=_in_url(host) if "{h}/" in template or "{h}:" in template else host)
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        if where == "encoded-command":  # PowerShell -EncodedCommand: base64 of UTF-16LE, any spelling inside
            encoded = base64.b64encode(command.encode("utf-16-le")).decode()
            return {**base, "ActionType": "ProcessCreated", "FileName": "powershell.exe",
                    "FolderPath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                    "ProcessCommandLine": f"powershell.exe -NoP -NonI -EncodedCommand {encoded}",
                    "AccountName": "u", "InitiatingProcessFileName": "cmd.exe"}
        if where == "powershell":
            return {**base, "ActionType": "PowerShellCommand", "InitiatingProcessFileName": "powershell.exe",
                    "InitiatingProcessFolderPath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                    "InitiatingProcessCommandLine": "powershell.exe -NoProfile",
                    "AdditionalFields": json.dumps({"Command": command})}
        return {**base, "ActionType": "ProcessCreated", "FileName": name, "FolderPath": path,
                "ProcessCommandLine": command, "AccountName": "u", "InitiatingProcessFileName": "bash"}
    if where in ("network-url", "network-ip"):
        return {**base, "ActionType": "ConnectionSuccess", "RemoteIP": host if where == "network-ip" else "10.9.8.7",
                "RemotePort": 80, "RemoteUrl": host if where == "network-url" else "",
                "LocalIP": "10.0.0.5", "LocalPort": 50123, "InitiatingProcessFileName": "python3",
                "InitiatingProcessFolderPath": "/usr/bin/python3", "InitiatingProcessCommandLine": "python3 x.py"}
    if where == "http":
        fields = {"host": host, "uri": "/latest/meta-data/iam/security-credentials/r", "method": "GET"}
        return {**base, "ActionType": "HttpConnectionInspected", "RemoteIP": "10.9.8.7", "RemotePort": 80,
                "AdditionalFields": json.dumps(fields)}
    return {**base, "ActionType": "DnsConnectionInspected", "RemoteIP": "10.9.8.7", "RemotePort": 53,
            "AdditionalFields": json.dumps({"query": host})}


@st.composite
def metadata_rows(draw: st.DrawFn) -> bytes:
    row = _row(draw, draw(metadata_host_spelling()))
    return json.dumps(row, ensure_ascii=draw(st.booleans())).encode("utf-8")


def _alerts(line: bytes) -> list[str]:
    skips: list[object] = []
    event = MDE_ADAPTER.parse_line(line, "t", 1, 0, skips.append)
    if event is None:
        return []
    return [alert.rule_id for alert in DETECTOR.run(event).alerts]


@settings(max_examples=1500, deadline=None)
@given(line=metadata_rows())
def test_every_row_that_alerts_is_selected(line: bytes) -> None:
    if not _alerts(line):
        return
    for prefilter in PREFILTERS:
        assert prefilter.plan(line + b"\n").spans, (prefilter.engine, line)


@settings(max_examples=1500, deadline=None)
@given(host=metadata_host_spelling(), template=st.sampled_from(COMMANDS))
def test_gate_admits_every_text_the_extractor_resolves(host: str, template: tuple[str, str]) -> None:
    text = template[1].format(h=_in_url(host))
    if find_metadata_references(text):
        assert could_mention_metadata(text), text


@settings(max_examples=500, deadline=None)
@given(address=st.sampled_from(METADATA_V4), template=st.sampled_from(COMMANDS), shift=st.integers(0, 2),
       urlsafe=st.booleans())
def test_gate_admits_standard_hosts_in_utf8_base64(address: str, template: tuple[str, str], shift: int,
                                                    urlsafe: bool) -> None:
    """Base64 of UTF-8 text at any byte alignment: the literal spellings are still seen (see indicators)."""
    raw = ("x" * shift + template[1].format(h=address)).encode()
    encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    text = f"sh -c 'echo {encoded} | base64 -d | sh'"
    assert could_mention_metadata(text), text
    line = json.dumps({"Timestamp": "2026-11-27T08:00:00Z", "ActionType": "ProcessCreated",
                       "FileName": "sh", "ProcessCommandLine": text}).encode()
    for prefilter in PREFILTERS:
        assert prefilter.plan(line + b"\n").spans, (prefilter.engine, line)


BENIGN_LINES = (
    b'{"Timestamp":"2026-11-27T08:00:01Z","DeviceName":"vm-2","ActionType":"ConnectionSuccess",'
    b'"RemoteIP":"10.1.2.3","RemotePort":443,"ReportId":20261127}',
    b"", b"\r", b"not json at all", b'{"truncated": "row"',
    b'{"Timestamp":"2026-11-27T08:00:02Z","ProcessCommandLine":"ping 1.2.3.4 -n 2852039","ReportId":7}',
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.one_of(metadata_rows(), st.sampled_from(BENIGN_LINES)), min_size=1, max_size=12))
def test_python_engine_plans_blocks_like_hyperscan(lines: list[bytes]) -> None:
    """Several candidates, blank and malformed lines in a row: the pure-Python matcher misses none of them."""
    hyperscan_prefilter, python_prefilter = PREFILTERS
    if hyperscan_prefilter.engine != "hyperscan":
        return  # nothing to compare with (the other tests cover the Python engine alone)
    block = b"\n".join(lines) + b"\n"
    assert python_prefilter.plan(block) == hyperscan_prefilter.plan(block)


def test_address_fields_are_read_strictly_with_and_without_the_prefilter(tmp_path: Path) -> None:
    """RemoteIP is machine-written: `2852039166` there is not an address, for the rules and the prefilter alike;
    the standard `169.254.169.254` and the IPv4-mapped form alert either way."""
    fields = json.dumps({"direction": "Out", "method": "GET", "uri": "/"})
    row = {"Timestamp": "2026-11-27T08:00:00Z", "DeviceName": "web-1", "ActionType": "HttpConnectionInspected",
           "RemoteIP": "2852039166", "RemotePort": 80, "InitiatingProcessFileName": "python3",
           "InitiatingProcessFolderPath": "/usr/bin/python3", "AdditionalFields": fields}
    rows = [row, {**row, "RemoteIP": "169.254.169.254"}, {**row, "RemoteIP": "::ffff:169.254.169.254"},
            {**row, "ActionType": "ConnectionSuccess", "AdditionalFields": ""}]
    path = tmp_path / "inspected.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for prefilter in (True, False):
        result = scan([str(path)], ScanOptions(prefilter=prefilter))
        assert sorted(alert.source.line for alert in result.alerts) == [2, 3]


def test_most_generated_rows_really_alert() -> None:
    """Guard against a vacuous property: the generator must mostly produce rows that alert."""
    alerting = 0
    total = 300

    @settings(max_examples=total, deadline=None, database=None)
    @given(line=metadata_rows())
    def count(line: bytes) -> None:
        nonlocal alerting
        alerting += bool(_alerts(line))

    count()
    assert alerting > total * 0.6, alerting


def test_benign_rows_are_mostly_cleared(tmp_path: Path) -> None:
    data = tmp_path / "benign.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_defender.py"), "--size", "3MB",
                    "--out", str(data), "--ratio", "1000000"], check=True, capture_output=True)
    block = data.read_bytes()
    lines = block.count(b"\n")
    for prefilter in PREFILTERS:
        selected = len(prefilter.plan(block).spans)
        assert selected < lines * 0.15, (prefilter.engine, selected, lines)


def test_scan_with_and_without_prefilter_is_identical(tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_defender.py"), "--size", "4MB",
                    "--out", str(data), "--ratio", "100"], check=True, capture_output=True)
    options = {"min_severity": Severity.INFORMATIONAL, "show_suppressed": True}
    fast = scan([str(data)], ScanOptions(**options))
    slow = scan([str(data)], ScanOptions(prefilter=False, **options))
    assert [a.as_dict() for a in fast.alerts] == [a.as_dict() for a in slow.alerts]
    assert [a.as_dict() for a in fast.suppressed] == [a.as_dict() for a in slow.suppressed]
    assert len(fast.alerts) > 10
    assert fast.summary.records == slow.summary.records
    # Rows of other tables are only recognised when parsed: with the prefilter most are counted as cleared.
    problems = {"malformed-json", "not-an-object", "bad-timestamp", "blank-line"}
    assert {k: v for k, v in fast.summary.skipped.items() if k in problems} == {
        k: v for k, v in slow.summary.skipped.items() if k in problems}
    assert fast.summary.prefiltered > fast.summary.records // 2


def test_encoded_powershell_alerts_through_the_prefilter(tmp_path: Path) -> None:
    script = "Invoke-RestMethod -Headers @{Metadata='true'} -Uri 'http://169.254.169.254/metadata/identity/oauth2/token'"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    benign = base64.b64encode("Get-ChildItem C:\\Users | Measure-Object".encode("utf-16-le")).decode()
    folder = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    rows = [{"Timestamp": f"2026-11-27T08:00:0{i}Z", "DeviceName": "wks-1", "ActionType": "ProcessCreated",
             "FileName": "powershell.exe", "FolderPath": folder,
             "ProcessCommandLine": f"powershell.exe -NoP -EncodedCommand {body}", "AccountName": "u"}
            for i, body in enumerate([encoded, benign])]
    data = tmp_path / "enc.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = scan([str(data)], ScanOptions())
    assert [(a.rule_id, a.severity.label, a.source.line) for a in result.alerts] == [("imds-command-line", "high", 1)]
    assert result.alerts[0].endpoint.path_class == "token"


def test_folding_characters_cache_gives_the_computed_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached set of Unicode-folding characters is the computed one, and a damaged cache is recomputed."""
    from imds_detect.knowledge import indicators

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    computed = indicators._folding_characters()
    assert len(computed) > 1000 and "\uff10" in computed  # (full-width zero folds to a digit)
    indicators.folding_characters.cache_clear()
    assert indicators.folding_characters() == computed  # computed, then written
    [cached] = (tmp_path / "imds-detect").glob("folding-*.txt")
    indicators.folding_characters.cache_clear()
    assert indicators.folding_characters() == computed  # read back
    cached.write_text("12", encoding="utf-8")  # cut short: no final newline
    indicators.folding_characters.cache_clear()
    assert indicators.folding_characters() == computed
    indicators.folding_characters.cache_clear()


def test_folding_characters_cache_is_shared_between_processes(tmp_path: Path) -> None:
    """A second process reads the set the first wrote: one cache file (a stale set is removed on writing), and the
    second does not compute it."""
    (tmp_path / "imds-detect").mkdir()
    (tmp_path / "imds-detect" / "folding-0123.txt").write_text("1\n", encoding="utf-8")
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    program = ("import sys, unicodedata\nfrom imds_detect.knowledge import indicators\n"
               "def computing(*_args):\n    raise AssertionError('computed again')\n"
               "if sys.argv[1] == 'read':\n"
               "    unicodedata.normalize = computing  # the set must come from the cache\n"
               "print(len(indicators.folding_characters()))\n")
    counts = [subprocess.run([sys.executable, "-c", program, mode], env=environment, capture_output=True, text=True,
                             check=True).stdout for mode in ("write", "read")]
    assert counts[0] == counts[1] and int(counts[0]) > 1000
    assert len(list((tmp_path / "imds-detect").glob("folding-*.txt"))) == 1


def test_code_fingerprint_follows_the_code_not_the_process() -> None:
    """Equal code gives an equal fingerprint (nested code included, whatever its address); other code does not."""
    from imds_detect.knowledge.indicators import _code_fingerprint

    def make(limit: int) -> types.CodeType:
        namespace: dict[str, Any] = {}
        exec(f"def f(text):\n    return ''.join(c for c in text if c in {{'a', 'b'}} and ord(c) < {limit})\n",
             namespace)
        return namespace["f"].__code__  # type: ignore[no-any-return]

    first, again, other = make(100), make(100), make(101)
    assert first is not again and repr(first.co_consts) != repr(again.co_consts)  # (addresses differ)
    assert _code_fingerprint(first) == _code_fingerprint(again)
    assert _code_fingerprint(first) != _code_fingerprint(other)
