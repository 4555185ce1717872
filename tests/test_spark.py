"""The Spark engine gives the local engine's result, and its JVM prefilter never drops a line that can alert.

Spark tests need pyspark (``pip install -e '.[spark]'``) and a Java runtime; they share one local[2] session
whose splits are 1 MB, so the 5 MB generated file is read as several splits (line and record numbers are
computed across splits). The translation tests (Java regex read back by Python's `re`) need neither.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_prefilter import metadata_rows

from imds_detect import ScanOptions, Severity, load_config, scan
from imds_detect.detect.allowlist import Allowlist
from imds_detect.detect.detector import Detector
from imds_detect.engine.prefilter import Prefilter
from imds_detect.engine.scan import ScanResult
from imds_detect.engine.window import parse_bound
from imds_detect.knowledge.indicators import UTF16_BASE64_SHAPE, literal_needles
from imds_detect.sources.mde import MDE_ADAPTER
from imds_detect.spark.jvmfilter import (
    anchor_periodic,
    first_of,
    jvm_patterns,
    literal_of,
    python_equivalent,
    trie_branches,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "defender-sample.jsonl"
PATTERNS = jvm_patterns(MDE_ADAPTER.free_text_keys, MDE_ADAPTER.record_edges)
LOCAL_PREFILTER = Prefilter(MDE_ADAPTER.free_text_keys, MDE_ADAPTER.record_edges)


def _why_no_spark() -> str | None:
    try:
        found = importlib.util.find_spec("pyspark") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return "pyspark is not installed (pip install -e '.[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "no Java runtime (java on PATH or JAVA_HOME) for Spark"
    return None


WHY_NO_SPARK = _why_no_spark()
needs_spark = pytest.mark.skipif(WHY_NO_SPARK is not None, reason=WHY_NO_SPARK or "")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("imds-detect-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.files.maxPartitionBytes", str(1 << 20))  # several splits per file
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two 5 MB Defender files (one planted access per ~200 rows), the second gzipped."""
    folder = tmp_path_factory.mktemp("spark-gen")
    names = []
    for seed, name in ((1, "a.jsonl"), (2, "b.jsonl")):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_defender.py"), "--size", "5MB",
                        "--ratio", "200", "--seed", str(seed), "--out", str(folder / name)],
                       check=True, capture_output=True)
        (folder / f"{name}.labels.json").unlink()
        names.append(folder / name)
    with open(names[1], "rb") as plain, gzip.open(folder / "b.jsonl.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    names[1].unlink()
    return [str(names[0]), str(folder / "b.jsonl.gz")]


def _both(paths: list[str], jvm_prefilter: bool = True, **options: Any
          ) -> tuple[ScanResult, ScanResult, list[str], list[str]]:
    from imds_detect.spark import scan_with_spark

    local_warnings: list[str] = []
    spark_warnings: list[str] = []
    local = scan(paths, ScanOptions(warn=local_warnings.append, **options))
    remote = scan_with_spark(paths, ScanOptions(warn=spark_warnings.append, **options), jvm_prefilter=jvm_prefilter)
    return local, remote, local_warnings, spark_warnings


def _assert_same(paths: list[str], jvm_prefilter: bool = True, **options: Any) -> tuple[ScanResult, ScanResult]:
    local, remote, local_warnings, spark_warnings = _both(paths, jvm_prefilter, **options)
    assert [alert.as_dict() for alert in remote.alerts] == [alert.as_dict() for alert in local.alerts]
    assert [alert.as_dict() for alert in remote.suppressed] == [alert.as_dict() for alert in local.suppressed]
    local_summary, spark_summary = local.summary.as_dict(), remote.summary.as_dict()
    engine = spark_summary.pop("prefilter")
    local_engine = local_summary.pop("prefilter")
    assert spark_summary == local_summary
    assert engine == ("off" if local_engine == "off" else f"spark+{local_engine}")
    assert spark_warnings == local_warnings
    return local, remote


# -- equality with the local engine -----------------------------------------------------------------


@needs_spark
@pytest.mark.parametrize("options", [{}, {"min_severity": Severity.INFORMATIONAL, "show_suppressed": True}],
                         ids=["default", "informational-suppressed"])
def test_sample_same_as_local(spark: Any, options: dict[str, Any]) -> None:
    local, _ = _assert_same([str(SAMPLE)], **options)
    assert local.alerts


@needs_spark
@pytest.mark.parametrize("options", [
    {},
    {"min_severity": Severity.INFORMATIONAL, "show_suppressed": True},
    {"since": parse_bound("3m")},
    {"since": parse_bound("4m"), "until": parse_bound("1m"), "show_suppressed": True},
    {"since": parse_bound("2024-05-13T00:01:00Z"), "until": parse_bound("2024-05-13T00:04:00Z")},
    {"prefilter": False},
], ids=["default", "informational-suppressed", "since-relative", "window-relative", "window-absolute",
        "no-prefilter"])
def test_generated_same_as_local(spark: Any, generated: list[str], options: dict[str, Any]) -> None:
    local, remote = _assert_same(generated, **options)
    assert local.alerts
    if "since" in options:
        assert local.summary.outside_window > 0
    from imds_detect.spark import SparkScanResult

    assert isinstance(remote, SparkScanResult)
    assert remote.spark.spark_files == 2 and remote.spark.lines == local.summary.records
    if options.get("prefilter", True):
        assert remote.spark.candidates < local.summary.records // 2  # the JVM cleared most lines
        assert remote.spark.candidates >= local.summary.parsed


@needs_spark
def test_python_side_prefilter_same_as_local(spark: Any, generated: list[str]) -> None:
    _, remote = _assert_same(generated, jvm_prefilter=False, since=parse_bound("3m"), show_suppressed=True)
    from imds_detect.spark import SparkScanResult

    assert isinstance(remote, SparkScanResult) and remote.spark.candidates == remote.spark.lines


@needs_spark
def test_same_file_twice_and_directory_order(spark: Any, generated: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(generated[1], folder / "sub" / "z.jsonl.gz")
    shutil.copy(SAMPLE, folder / "a.jsonl")
    _assert_same([str(folder), generated[0], str(folder / "a.jsonl"), generated[0]])


def _odd_file(path: Path, rows: list[bytes]) -> None:
    """Lines of every awkward kind the local engine numbers, counts or reports."""
    out = bytearray()
    for index, line in enumerate(rows):
        kind = index % 16
        if kind == 1:
            out += b"\n"  # blank: not a record
        elif kind == 2:
            out += b"\r\n"  # blank too
        elif kind == 3:
            out += b"   \n"  # whitespace: a record, skipped
        if kind == 4:
            line = line[:-7]  # malformed JSON
        elif kind == 5:
            line += b"\r"  # CRLF
        elif kind == 6:
            line = b"\xef\xbb\xbf" + line  # BOM
        elif kind == 7:
            line = line.replace(b'"DeviceName":"', b'"DeviceName":"\xff\xfe')  # invalid UTF-8
        elif kind == 8:
            line += b"\r\r"
        elif kind == 9:
            line = b"x " + line
        elif kind == 10:
            line = b"[1, 2]"
        elif kind == 11:
            line = line.replace(b'"ProcessCommandLine":"', b'"ProcessCommandLine":"curl 2852039166/latest ')
        elif kind == 12:
            line = line.replace(b'"ProcessCommandLine":"', "\"ProcessCommandLine\":\"curl \uff11\uff16\uff19."
                                "254.169.254/latest/user-data ".encode())
        out += line + b"\n"
    out += (b'{"Timestamp":"2024-05-13T00:00:09Z","ActionType":"ProcessCreated","FileName":"curl",'
            b'"FolderPath":"/usr/bin/curl","ProcessCommandLine":"curl 169.254.169.254/latest/api/token"}')  # no \n
    path.write_bytes(bytes(out))


@needs_spark
def test_odd_lines_numbered_counted_and_reported_like_local(spark: Any, generated: list[str],
                                                             tmp_path: Path) -> None:
    rows = Path(generated[0]).read_bytes().split(b"\n")[:600]
    odd = tmp_path / "odd [1] {x}.jsonl"  # a space and glob characters in the name
    _odd_file(odd, rows)
    (tmp_path / "labels.json").write_text(json.dumps({"rows": 1}))  # not Defender: read on the driver
    (tmp_path / "export.csv").write_bytes(b"Timestamp,DeviceName,ActionType,ProcessCommandLine,FileName\n"
                                          b"2024-05-13T00:00:01Z,vm,ProcessCreated,curl 169.254.169.254,curl\n")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    shutil.copy(SAMPLE, tmp_path / "_underscore.jsonl")  # Spark's file sources skip such names
    shutil.copy(SAMPLE, tmp_path / "colon:name.jsonl")  # not a Hadoop path
    local, remote = _assert_same([str(tmp_path), str(tmp_path / "absent.jsonl")],
                                 min_severity=Severity.INFORMATIONAL)
    assert local.summary.skipped["malformed-json"] > 5  # more than the warnings show
    assert {report.status for report in local.summary.files} >= {"ok", "empty", "unrecognised"}
    from imds_detect.spark import SparkScanResult

    assert isinstance(remote, SparkScanResult) and remote.spark.driver_files == 5


@needs_spark
def test_config_allowlist_reaches_the_executors(spark: Any, generated: list[str], tmp_path: Path) -> None:
    config = tmp_path / "imds.toml"
    config.write_text('[allowlist]\ndisable = ["aws-ssm-agent"]\n[[allowlist.entry]]\nid = "corp-worker"\n'
                      'path = "/dev/shm/.k/kworker"\nrules = ["imds-network-connection"]\n')
    allowlist = load_config(str(config)).allowlist
    local, _ = _assert_same(generated, allowlist=allowlist, show_suppressed=True)
    assert any(alert.suppressed_by == "corp-worker" for alert in local.suppressed)
    assert not any(alert.suppressed_by == "aws-ssm-agent" for alert in local.suppressed)


@needs_spark
def test_uri_inputs_are_listed_through_hadoop(spark: Any, generated: list[str]) -> None:
    from imds_detect.spark import scan_with_spark

    folder = Path(generated[0]).parent
    local = scan(generated, ScanOptions())
    remote = scan_with_spark([folder.as_uri()], ScanOptions())
    renamed = {f"{folder.as_uri()}/{Path(name).name}": name for name in generated}
    alerts = []
    for alert in remote.alerts:
        data = alert.as_dict()
        data["source"]["file"] = renamed[data["source"]["file"]]
        alerts.append(data)
    assert alerts == [alert.as_dict() for alert in local.alerts]
    assert remote.summary.records == local.summary.records


@needs_spark
def test_refuses_what_spark_cannot_do(spark: Any) -> None:
    from imds_detect.spark import scan_with_spark

    with pytest.raises(ValueError, match="standard input"):
        scan_with_spark(["-"], ScanOptions())
    with pytest.raises(ValueError, match="stream"):
        scan_with_spark([str(SAMPLE)], ScanOptions(on_alert=lambda alert: None))


@needs_spark
@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_alerts_written_by_spark_equal_the_jsonl_output(spark: Any, tmp_path: Path, fmt: str) -> None:
    from imds_detect.spark import scan_with_spark

    target = tmp_path / f"alerts-{fmt}"
    result = scan_with_spark([str(SAMPLE)], ScanOptions(show_suppressed=True), write_to=(str(target), fmt))
    written = spark.read.parquet(str(target)) if fmt == "parquet" else spark.read.json(str(target))
    rows = sorted((row["source"]["line"], row["rule_id"], row["severity"], row["endpoint"]["canonical"],
                   row["suppressed_by"]) for row in written.collect())
    expected = sorted((alert.source.line, alert.rule_id, alert.severity.label, alert.endpoint.canonical,
                       alert.suppressed_by) for alert in result.alerts + result.suppressed)
    assert result.alerts and result.suppressed
    assert rows == expected


@needs_spark
def test_empty_result_still_writes_a_typed_dataset(spark: Any, tmp_path: Path) -> None:
    from imds_detect.spark import scan_with_spark

    quiet = tmp_path / "quiet.jsonl"
    quiet.write_text(json.dumps({"Timestamp": "2026-11-27T08:00:00Z", "DeviceName": "vm", "ActionType":
                                 "ConnectionSuccess", "RemoteIP": "10.0.0.1", "RemotePort": 443}) + "\n")
    target = tmp_path / "none"
    result = scan_with_spark([str(quiet)], ScanOptions(), write_to=(str(target), "parquet"))
    written = spark.read.parquet(str(target))
    assert result.alerts == [] and written.count() == 0
    assert dict(written.dtypes)["timestamp"] == "timestamp"


@needs_spark
def test_cli_engine_spark_prints_the_local_alerts(spark: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from imds_detect.cli import main

    runner = CliRunner()
    local = runner.invoke(main, ["scan", "--output", "jsonl", str(SAMPLE)])
    remote = runner.invoke(main, ["scan", "--engine", "spark", "--output", "jsonl", "--spark-output",
                                  str(tmp_path / "out"), str(SAMPLE)])
    assert local.exit_code == remote.exit_code == 0
    assert remote.stdout == local.stdout and local.stdout.count("\n") > 5
    assert spark.read.parquet(str(tmp_path / "out")).count() == local.stdout.count("\n")


# -- the JVM prefilter is safe ------------------------------------------------------------------------


def _local_alerting(line: bytes) -> bool:
    event = MDE_ADAPTER.parse_line(line, "t", 1, 0, lambda skip: None)
    return event is not None and bool(Detector(Allowlist([])).run(event).alerts)


def _locally_selected(lines: list[bytes]) -> set[int]:
    """Indices of the lines the local prefilter selects in a file made of `lines`."""
    block = b"\n".join(lines) + b"\n"
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    selected = set()
    for start, _end in LOCAL_PREFILTER.plan(block).spans:
        selected.add(max(index for index, offset in enumerate(starts) if offset <= start))
    return selected


def _generated_rows(count: int) -> list[bytes]:
    """`count` metadata rows drawn by the strategy of tests/test_prefilter.py (every host spelling class)."""
    rows: list[bytes] = []

    @settings(max_examples=count, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    @given(metadata_rows())
    def collect(row: bytes) -> None:
        rows.append(row)

    collect()
    return rows


def _numeric_rows() -> list[bytes]:
    """Rows whose only indicator is a numeric host (no literal, no path): the NUMERIC group must pass them."""
    base = {"Timestamp": "2026-11-27T08:00:00.1234567Z", "DeviceName": "vm-1", "ReportId": 1}
    rows = []
    for value in (2852039166, 2852039170, 1684301000):  # 169.254.169.254, 169.254.170.2, 100.100.100.200 as
        for host in (str(value), f"{value >> 24}.{value & 0xFFFFFF}",  # one number, two and three parts,
                     f"{value >> 24}.{(value >> 16) & 255}.{value & 0xFFFF}",
                     ".".join(f"0{(value >> shift) & 255:o}" for shift in (24, 16, 8, 0))):  # octal
            rows.append({**base, "ActionType": "ConnectionSuccess", "RemoteIP": "10.9.8.7", "RemotePort": 80,
                         "RemoteUrl": host, "InitiatingProcessFileName": "python3",
                         "InitiatingProcessFolderPath": "/usr/bin/python3"})
            rows.append({**base, "ActionType": "ProcessCreated", "FileName": "nc", "FolderPath": "/usr/bin/nc",
                         "ProcessCommandLine": f"nc {host} 80", "InitiatingProcessFileName": "bash"})
            rows.append({**base, "ActionType": "DnsConnectionInspected", "RemoteIP": "10.9.8.7", "RemotePort": 53,
                         "AdditionalFields": json.dumps({"query": host})})
    return [json.dumps(row).encode() for row in rows]


@needs_spark
def test_jvm_filter_passes_every_alerting_generated_row(spark: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    rows = _generated_rows(250) + _numeric_rows()
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    value = F.col("value")
    passed = {bytes(row[0]) for row in spark.read.text(str(path), lineSep="\n")
              .filter(value.rlike(PATTERNS.candidate)).select(value.cast("binary")).collect()}
    alerting = [row for row in rows if _local_alerting(row)]
    assert len(alerting) > len(rows) // 2, "the strategy builds rows that alert"
    assert all(row in alerting for row in _numeric_rows())
    assert [row for row in alerting if row not in passed] == []
    assert [rows[index] for index in _locally_selected(rows) if rows[index] not in passed] == []


@needs_spark
def test_jvm_filter_passes_every_locally_selected_line(spark: Any, generated: list[str]) -> None:
    from pyspark.sql import functions as F

    lines = Path(generated[0]).read_bytes().rstrip(b"\n").split(b"\n")
    value = F.col("value")
    passed = {bytes(row[0]) for row in spark.read.text(generated[0], lineSep="\n")
              .filter(value.rlike(PATTERNS.candidate)).select(value.cast("binary")).collect()}
    selected = _locally_selected(lines)
    assert selected
    assert [lines[index] for index in selected if lines[index] not in passed] == []
    assert len(passed) < len(lines) // 3


# -- the translation (no Spark needed) ----------------------------------------------------------------


def test_translated_regex_selects_what_the_local_prefilter_selects() -> None:
    """Python's `re` reading the Java regex (same constructs) finds every STRONG/NUMERIC line."""
    rows = SAMPLE.read_bytes().rstrip(b"\n").split(b"\n")
    candidate = python_equivalent(PATTERNS.candidate)
    edges = {index for index, row in enumerate(rows) if not (row.startswith(b"{") and row.endswith(b"}"))}
    for index in _locally_selected(rows) - edges:
        assert candidate.search(rows[index].decode("utf-8", "replace")), rows[index][:200]


@settings(max_examples=300, deadline=None)
@given(metadata_rows())
def test_translated_regex_on_generated_rows(row: bytes) -> None:
    if _locally_selected([row]) or _local_alerting(row):
        assert python_equivalent(PATTERNS.candidate).search(row.decode("utf-8", "replace"))


def test_literal_of_reads_back_re_escape() -> None:
    for needle in (*literal_needles(), "a.b", "x\\y", "[](){}", "\uff11"):
        assert literal_of(re.escape(needle.encode())) == needle.encode()
    assert literal_of(rb"%[0-9a-f]{2}") is None
    assert literal_of(rb"\\x") == b"\\x"
    assert literal_of(rb"\x41") is None


@given(st.lists(st.text(alphabet="ab.-\\x\uff11", min_size=1, max_size=6), min_size=1, max_size=8),
       st.text(alphabet="ab.-\\x\uff11Z", max_size=30))
def test_trie_matches_exactly_the_words(words: list[str], text: str) -> None:
    words = [word.lower() for word in words]
    regex = python_equivalent("(?i)(?:" + "|".join(trie_branches(words)) + ")")
    assert bool(regex.search(text)) == any(word in text.lower() for word in words)


@given(st.text(alphabet="AQgwBIEMUYcko048DFHhst+/=Z", max_size=60))
def test_anchored_base64_shape_is_the_same_regex(text: str) -> None:
    shape = UTF16_BASE64_SHAPE.decode("ascii")
    anchored = anchor_periodic(shape)
    assert anchored != shape
    assert bool(python_equivalent(anchored).search(text)) == bool(re.search(shape, text, re.IGNORECASE))


def test_first_characters() -> None:
    assert first_of("ab").chars == {"a", "A"}
    assert first_of("(?:x|\\.y)z").chars == {"x", "X", "."}
    assert first_of("(?=[0-9])\\s?[0-9]").chars == {*" \t\n\x0b\f\r", *"0123456789"}
    assert first_of("[^a]").non_ascii and "b" in first_of("[^a]").chars
    assert first_of("a?").chars == first_of(".").chars  # can match empty: anything
