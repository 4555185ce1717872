"""The Parquet adapter: Defender / Sentinel rows read column-wise, the column prefilter, time types,
nested AdditionalFields, counting, unusable files and a missing pyarrow."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imds_detect.cli import main
from imds_detect.engine.scan import ScanOptions, ScanResult, scan
from imds_detect.knowledge.indicators import could_mention_metadata
from imds_detect.model import Alert, Severity
from imds_detect.sources import parquet as parquet_module
from imds_detect.sources.base import ReadCounts, Skip
from imds_detect.sources.parquet import MAGIC, PARQUET_ADAPTER, candidate_rows
from imds_detect.sources.registry import BY_NAME, detect_format

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "parquet"
GENERATOR = ROOT / "benchmarks" / "generate_defender.py"

HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None
needs_pyarrow = pytest.mark.skipif(not HAVE_PYARROW, reason="pyarrow is not installed")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fixtures = _load("parquet_fixtures_generate", FIXTURES / "generate.py")
ROWS = [row for row, _ in fixtures.ROWS]
STRUCT_ROWS = [row for row, _ in fixtures.STRUCT_ROWS]


def options(prefilter: bool = True, **extra: Any) -> ScanOptions:
    return ScanOptions(prefilter=prefilter, show_suppressed=True, min_severity=Severity.INFORMATIONAL, **extra)


def run(paths: list[Path], prefilter: bool = True, **extra: Any) -> ScanResult:
    return scan([str(path) for path in paths], options(prefilter, **extra))


def outcomes(result: ScanResult) -> dict[int, list[str]]:
    """record -> sorted outcomes ("alert:<rule>" / "suppressed:<entry>")."""
    found: dict[int, list[str]] = {}
    for alert in result.alerts + result.suppressed:
        label = f"suppressed:{alert.suppressed_by}" if alert.suppressed_by else f"alert:{alert.rule_id}"
        found.setdefault(alert.source.record, []).append(label)
    return {record: sorted(labels) for record, labels in found.items()}


def expected(labelled: list[tuple[dict[str, Any], str]]) -> dict[int, list[str]]:
    return {index: [label] for index, (_, label) in enumerate(labelled)
            if label.startswith(("alert:", "suppressed:"))}


def logical(alert: Alert) -> dict[str, Any]:
    """An alert as JSON, without the file, the format and the raw record text."""
    data = alert.as_dict()
    data.pop("raw", None)
    data["source"] = {"line": alert.source.line, "record": alert.source.record}
    return data


def alerts_of(result: ScanResult) -> list[dict[str, Any]]:
    return [logical(alert) for alert in result.alerts + result.suppressed]


# --------------------------------------------------------------------------- recognition


def test_sniff_and_registry() -> None:
    head = (FIXTURES / "defender.parquet").read_bytes()[:65536]
    assert head[:4] == MAGIC
    assert PARQUET_ADAPTER.sniff(head)
    assert detect_format(head) is PARQUET_ADAPTER
    assert BY_NAME["parquet"] is PARQUET_ADAPTER
    assert not PARQUET_ADAPTER.sniff(b'{"Timestamp":"2024-05-01T10:00:00Z","ActionType":"ConnectionSuccess"}\n')
    assert not PARQUET_ADAPTER.sniff(b"PAR")
    assert detect_format((ROOT / "samples" / "defender-sample.jsonl").read_bytes()[:65536]) is BY_NAME["mde"]


# --------------------------------------------------------------------------- planted rows


@needs_pyarrow
@pytest.mark.parametrize("prefilter", [True, False])
def test_defender_rows_alert_exactly_as_labelled(prefilter: bool) -> None:
    result = run([FIXTURES / "defender.parquet"], prefilter)
    assert outcomes(result) == expected(fixtures.ROWS)
    summary = result.summary
    assert summary.records == len(ROWS)  # every row counted, cleared or not
    assert summary.files[0].format == "parquet" and summary.files[0].status == "ok"
    for alert in result.alerts + result.suppressed:
        assert alert.source.format == "parquet"
        assert alert.source.line == alert.source.record + 1
        assert alert.source.file.endswith("defender.parquet")
        assert alert.raw.startswith('{"Type":')
    if prefilter:
        assert summary.parsed < len(ROWS)  # cleared rows are not built
        assert dict(summary.skipped) == {}  # the DeviceFileEvents row was cleared, not parsed
    else:
        assert summary.parsed == len(ROWS) - 1
        assert dict(summary.skipped) == {"unsupported-table": 1}


@needs_pyarrow
def test_prefilter_clears_only_rows_that_cannot_alert() -> None:
    import pyarrow.parquet as pq

    batch = next(pq.ParquetFile(FIXTURES / "defender.parquet").iter_batches(batch_size=1000))
    chosen = set(candidate_rows(batch))
    cleared = {index for index, (_, label) in enumerate(fixtures.ROWS) if index not in chosen}
    # benign svchost, `ls`, the DeviceFileEvents row, and a numeric look-alike (192.168.100.200) that is
    # confirmed not to be a metadata address
    assert cleared == {0, 9, 10, 12}
    # rows whose only hint is a numeric spelling (octal dotted, decimal integer) are kept
    assert {6, 7} <= chosen


@needs_pyarrow
def test_column_gate_equals_the_scalar_gate_per_row() -> None:
    """A row is a candidate exactly when one of its (non-time) values passes could_mention_metadata."""
    import pyarrow as pa

    for rows, additional in ((ROWS, None), (STRUCT_ROWS, fixtures.struct_type()),
                             (STRUCT_ROWS, pa.map_(pa.string(), pa.string()))):
        batch = fixtures.table(rows, additional=additional).to_batches()[0]
        reference = [index for index, row in enumerate(rows) if _row_passes(row)]
        assert candidate_rows(batch) == reference
        assert _undeduplicated_rows(batch) == reference
        assert _python_engine_rows(batch) == reference


def _row_passes(row: dict[str, Any]) -> bool:
    values: list[Any] = []
    for name, value in row.items():
        if name == "Timestamp" or value is None:
            continue
        values.extend(value.values() if isinstance(value, dict) else [value])
    return any(value is not None and could_mention_metadata(str(value)) for value in values)


@needs_pyarrow
def test_gate_sees_every_numeric_token_and_every_value_with_either_engine() -> None:
    """A non-metadata number before a metadata one in the same value, and such values one after another
    (the `re` engine reports one match per group and line, and resumes after the next newline)."""
    commands = ["curl http://192.168.100.200/ && curl http://2852039166/", "wget 10.20.30.400",
                "curl 192.168.100.200", "curl 0251.0376.0251.0376", "echo 1234567890", "curl 1.2.3.4"]
    rows = [fixtures._proc(i, "curl", "/usr/bin/curl", command) for i, command in enumerate(commands)]
    batch = fixtures.table(rows).to_batches()[0]
    for rows_of in (candidate_rows, _undeduplicated_rows, _python_engine_rows):
        assert rows_of(batch) == [0, 3]


@needs_pyarrow
@pytest.mark.parametrize("prefilter", [True, False])
def test_additional_fields_as_struct(prefilter: bool) -> None:
    result = run([FIXTURES / "struct_additional.parquet"], prefilter)
    assert outcomes(result) == expected(fixtures.STRUCT_ROWS)
    http = next(alert for alert in result.alerts if alert.source.record == 0)
    assert http.endpoint.path == "/latest/meta-data/iam/security-credentials/role"


@needs_pyarrow
def test_additional_fields_as_map_and_json_string_give_the_same_alerts(tmp_path: Path) -> None:
    import pyarrow as pa

    struct = run([FIXTURES / "struct_additional.parquet"])
    as_map = fixtures.write(tmp_path / "map.parquet", STRUCT_ROWS, additional=pa.map_(pa.string(), pa.string()))
    as_text = fixtures.write(tmp_path / "text.parquet", STRUCT_ROWS)
    for path in (as_map, as_text):
        for prefilter in (True, False):
            assert alerts_of(run([path], prefilter)) == alerts_of(struct)


@needs_pyarrow
def test_nested_nanosecond_times_are_readable(tmp_path: Path) -> None:
    """Python cannot hold nanoseconds: nested timestamps (and other ns columns) are made microseconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = pa.struct([*fixtures.struct_type(), pa.field("seen", pa.timestamp("ns", tz="UTC"))])
    rows = [dict(row, AdditionalFields=dict(row["AdditionalFields"], seen=None)) for row in STRUCT_ROWS]
    table = fixtures.table(rows, additional=kind)
    seen = pa.array([1714557600123456789] * len(rows), pa.timestamp("ns", tz="UTC"))
    extra = table.column("AdditionalFields").combine_chunks()
    fields = [extra.field(i) for i in range(kind.num_fields - 1)] + [seen]
    table = table.set_column(table.schema.get_field_index("AdditionalFields"), "AdditionalFields",
                             pa.StructArray.from_arrays(fields, fields=list(kind)))
    table = table.append_column("Took", pa.array([1500] * len(rows), pa.duration("ns")))
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    struct = run([FIXTURES / "struct_additional.parquet"])
    assert alerts_of(run([path], prefilter=False)) == alerts_of(struct)
    assert alerts_of(run([path])) == alerts_of(struct)
    assert '"seen":"2024-05-01T10:00:00.123456+00:00"' in run([path]).alerts[0].raw


# --------------------------------------------------------------------------- parity with JSON lines


@needs_pyarrow
@pytest.mark.parametrize("timestamp", ["timestamp", "string"])
def test_same_alerts_as_the_json_lines_of_the_same_rows(tmp_path: Path, timestamp: str) -> None:
    import pyarrow as pa

    rows = ROWS + STRUCT_ROWS
    kind = pa.string() if timestamp == "string" else None
    parquet = fixtures.write(tmp_path / "rows.parquet", rows, row_group_size=5, timestamp=kind)
    jsonl = fixtures.write_jsonl(tmp_path / "rows.jsonl", rows)
    by_mde = run([jsonl])
    assert by_mde.alerts  # the comparison means something
    assert alerts_of(run([parquet])) == alerts_of(by_mde)
    assert alerts_of(run([parquet], prefilter=False)) == alerts_of(run([jsonl], prefilter=False))


def _generated_defender(tmp_path: Path, size: str = "1500KB", ratio: int = 40) -> Path:
    out = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(GENERATOR), "--size", size, "--out", str(out), "--seed", "11",
                    "--ratio", str(ratio)], check=True, capture_output=True, timeout=120)
    return out


def _jsonl_to_parquet(source: Path, target: Path, row_group_size: int) -> int:
    """Defender JSON lines -> Parquet with the union of the columns (absent: null), Timestamp as a
    timestamp[ns, UTC] column, integers as int64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = list(dict.fromkeys(name for row in rows for name in row))
    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        if name == "Timestamp":
            arrays.append(pa.array(values, pa.string()).cast(pa.timestamp("ns", tz="UTC")))
        elif all(value is None or type(value) is int for value in values):
            arrays.append(pa.array(values, pa.int64()))
        else:
            arrays.append(pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                                   pa.string()))
    pq.write_table(pa.table(arrays, names=names), target, row_group_size=row_group_size)
    return len(rows)


@needs_pyarrow
def test_generated_mixed_data_prefilter_on_off_and_json_lines_agree(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    jsonl = _generated_defender(tmp_path)
    parquet = tmp_path / "generated.parquet"
    count = _jsonl_to_parquet(jsonl, parquet, row_group_size=300)
    monkeypatch.setattr(parquet_module, "BATCH_ROWS", 128)  # batches smaller than row groups
    monkeypatch.setattr(parquet_module, "_LEARN_ROWS", 64)  # mostly unique columns: values tested one by one
    on, off = run([parquet]), run([parquet], prefilter=False)
    assert len(on.alerts) >= 10 and on.suppressed  # planted rows and agent decoys
    assert alerts_of(on) == alerts_of(off) == alerts_of(run([jsonl]))
    assert on.summary.records == off.summary.records == count
    assert on.summary.parsed < count // 5  # most rows were cleared column-wise
    assert on.summary.usable == count - sum(on.summary.skipped.values())


# Fragments for generated rows: metadata hosts in many spellings next to ordinary ones.
HOSTS = ["169.254.169.254", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "169.254.43518",
         "[::ffff:a9fe:a9fe]", "metadata.google.internal", "[fd00:ec2::254]", "100.100.100.200", "169.254.170.2",
         "%31%36%39.254.169.254", "１６９.２５４.１６９.２５４", "169.254.169.254.nip.io", "example.com", "10.0.0.1",
         "192.168.100.200", "2852039167", "api.github.com", "4294967295", "1.2.3.4"]
PATHS = ["/latest/meta-data/iam/security-credentials/", "/computeMetadata/v1/", "/", "/index.html",
         "/metadata/identity/oauth2/token", "", "/latest/user-data"]
TOOLS = ["curl -s {url}", "wget -qO- {url}", "python3 -c \"import urllib.request as u;u.urlopen('{url}')\"",
         "ls -la /srv", "echo {url}", "powershell -c Invoke-RestMethod {url}"]
IPS = [None, "169.254.169.254", "::ffff:a9fe:a9fe", "20.190.151.7", "192.168.100.200", "10.0.0.5", "fd00:ec2::254",
       "168.63.129.16", "100.100.100.200", ""]
IMAGES = [("curl", "/usr/bin/curl"), ("amazon-ssm-agent", "/usr/bin/amazon-ssm-agent"),
          ("amazon-ssm-agent", "/tmp/amazon-ssm-agent"), ("python3", "/usr/bin/python3"),
          ("svchost.exe", "C:\\Windows\\System32\\svchost.exe"), ("google_guest_agent", "/usr/bin/google_guest_agent")]
KINDS = ["ConnectionSuccess", "ProcessCreated", "HttpConnectionInspected", "DnsConnectionInspected", "FileCreated"]


@st.composite
def defender_rows(draw: st.DrawFn) -> dict[str, Any]:
    url = (draw(st.sampled_from(["http://", "https://", ""])) + draw(st.sampled_from(HOSTS))
           + draw(st.sampled_from(PATHS)))
    command = draw(st.sampled_from(TOOLS)).format(url=url)
    name, folder = draw(st.sampled_from(IMAGES))
    kind = draw(st.sampled_from(KINDS))
    second = draw(st.integers(0, 59))
    if kind == "ProcessCreated":
        row = fixtures._proc(second, name, folder, command)
    elif kind == "FileCreated":
        row = fixtures._proc(second, name, folder, command, table="DeviceFileEvents", action=kind)
    else:
        extra = None
        if kind == "HttpConnectionInspected":
            extra = {"host": draw(st.sampled_from(HOSTS)), "uri": draw(st.sampled_from(PATHS))}
        elif kind == "DnsConnectionInspected":
            extra = {"query": draw(st.sampled_from(HOSTS)).strip("[]")}
        url_value = draw(st.sampled_from([None, "", url]))
        row = fixtures._net(second, draw(st.sampled_from(IPS)), draw(st.sampled_from([None, 80, 443, 53, 40342])),
                            name, folder, draw(st.sampled_from([None, command])), url=url_value, action=kind,
                            extra=extra)
    if draw(st.booleans()):
        row.pop("Type")  # advanced hunting rows: the table comes from ActionType or the columns
    return row


@needs_pyarrow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(defender_rows(), min_size=1, max_size=12))
def test_prefilter_never_changes_alerts(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = fixtures.write(tmp_path / "generated.parquet", rows, row_group_size=5)
    on, off = run([path]), run([path], prefilter=False)
    assert alerts_of(on) == alerts_of(off)
    assert on.summary.records == off.summary.records == len(rows)
    batch = fixtures.table(rows).to_batches()[0]
    reference = [index for index, row in enumerate(rows) if _row_passes(row)]
    assert candidate_rows(batch) == reference
    assert _undeduplicated_rows(batch) == reference
    assert _python_engine_rows(batch) == reference


class _Everything:
    """A set that holds every key (every leaf judged mostly unique)."""

    def __contains__(self, key: object) -> bool:
        return True

    def add(self, key: object) -> None:
        pass


def _undeduplicated_rows(batch: Any) -> list[int]:
    """candidate_rows when every value is tested, not each distinct value once."""
    prefilter = parquet_module._BatchFilter(parquet_module._arrow(), parquet_module._default_gate())
    prefilter.mostly_unique = _Everything()  # type: ignore[assignment]
    return prefilter.rows(batch)


_PYTHON_GATE: list[Any] = []


def _python_engine_rows(batch: Any) -> list[int]:
    """candidate_rows with the `re` engine (no Hyperscan): it reports one match per group and line only."""
    if not _PYTHON_GATE:
        _PYTHON_GATE.append(parquet_module._Gate(use_hyperscan=False))
    return parquet_module._BatchFilter(parquet_module._arrow(), _PYTHON_GATE[0]).rows(batch)


# --------------------------------------------------------------------------- time, nulls, positions

STAMP = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def _one_alert_row(**changes: Any) -> dict[str, Any]:
    row = dict(ROWS[2])  # python3 to 169.254.169.254
    row.update(changes)
    return row


@needs_pyarrow
@pytest.mark.parametrize(
    ("kind", "text", "moment"),
    [
        ("ns-utc", "2024-05-01T10:00:00.1234567Z", STAMP),
        ("us-naive", "2024-05-01T10:00:00.1234567Z", STAMP),
        ("ms-berlin", "2024-05-01T10:00:00.1234567Z", STAMP.replace(microsecond=123000)),
        ("s-naive", "2024-05-01T10:00:00.1234567Z", STAMP.replace(microsecond=0)),
        ("string", "2024-05-01T10:00:00.1234567Z", STAMP),
        ("string", "2024-05-01T12:00:00.123456+02:00", STAMP),
        ("string", "2024-05-01 10:00:00", STAMP.replace(microsecond=0)),
        ("string", "5/1/2024, 10:00:00.123 AM", STAMP.replace(microsecond=123000)),
    ],
)
def test_timestamp_types(tmp_path: Path, kind: str, text: str, moment: datetime) -> None:
    import pyarrow as pa

    types = {"ns-utc": pa.timestamp("ns", tz="UTC"), "us-naive": pa.timestamp("us"),
             "ms-berlin": pa.timestamp("ms", tz="Europe/Berlin"), "s-naive": pa.timestamp("s"),
             "string": pa.string()}
    path = fixtures.write(tmp_path / "t.parquet", [_one_alert_row(Timestamp=text)], timestamp=types[kind])
    for prefilter in (True, False):
        result = run([path], prefilter)
        assert [alert.timestamp for alert in result.alerts] == [moment]
        assert result.summary.skipped == {}


@needs_pyarrow
def test_sentinel_time_generated_and_null_timestamps(tmp_path: Path) -> None:
    import pyarrow as pa

    rows = [_one_alert_row(), _one_alert_row(), ROWS[0]]
    table = fixtures.table(rows)
    stamps = table.column("Timestamp").cast(pa.timestamp("us", tz="UTC"), safe=False)
    table = table.drop_columns(["Timestamp"]).append_column(
        "Timestamp", pa.array([None, None, None], pa.timestamp("ns", tz="UTC"))
    ).append_column("TimeGenerated", pa.array([stamps[0].as_py(), None, stamps[2].as_py()],
                                              pa.timestamp("us", tz="UTC")))
    import pyarrow.parquet as pq

    path = tmp_path / "sentinel.parquet"
    pq.write_table(table, path)
    result = run([path])
    assert [alert.timestamp for alert in result.alerts] == [STAMP.replace(second=2)]  # from TimeGenerated
    assert result.summary.skipped == {"bad-timestamp": 1}  # the candidate without any time
    assert result.summary.records == 3


@needs_pyarrow
def test_nulls_are_absent_values() -> None:
    skips: list[Skip] = []
    with (FIXTURES / "defender.parquet").open("rb") as stream:  # a seekable stream is read directly
        events = list(PARQUET_ADAPTER.parse(stream, "d.parquet", skips.append))
    nc = next(event for event in events if event.source.record == 11)
    assert nc.remote_url == "" and nc.process.command_line == "" and nc.process.name == "nc"
    assert nc.remote_port == 80 and nc.process.pid == 1011
    assert [skip.reason for skip in skips] == ["unsupported-table"]
    assert [event.source.record for event in events] == [i for i in range(len(ROWS)) if i != 12]


@needs_pyarrow
def test_row_numbers_across_row_groups_and_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet_module, "BATCH_ROWS", 3)
    rows = ROWS * 3
    path = fixtures.write(tmp_path / "many.parquet", rows, row_group_size=5)
    for prefilter in (True, False):
        result = run([path], prefilter)
        found = outcomes(result)
        labels = [label for _, label in fixtures.ROWS] * 3
        assert found == {i: [label] for i, label in enumerate(labels) if label.startswith(("alert:", "supp"))}
        assert result.summary.records == len(rows)


@needs_pyarrow
def test_relative_window_is_the_same_with_and_without_prefilter(tmp_path: Path) -> None:
    from imds_detect.engine.window import parse_bound

    late = dict(ROWS[0], Timestamp="2024-05-01T13:00:00Z")  # benign, cleared by the prefilter
    path = fixtures.write(tmp_path / "w.parquet", [_one_alert_row(), late])
    for prefilter in (True, False):
        result = run([path], prefilter, since=parse_bound("1h"))
        assert result.alerts == [] and result.summary.outside_window == 1


# --------------------------------------------------------------------------- unusable files, inputs


def _cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@needs_pyarrow
def test_cli_scan_parquet_jsonl_output() -> None:
    code, out, err = _cli(str(FIXTURES / "defender.parquet"), "--output", "jsonl", "--fail-on", "high")
    assert code == 1  # high alerts found
    alerts = [json.loads(line) for line in out.splitlines()]
    assert sorted(a["source"]["record"] for a in alerts) == sorted(
        i for i, (_, label) in enumerate(fixtures.ROWS) if label.startswith("alert:"))
    assert {a["source"]["format"] for a in alerts} == {"parquet"}
    assert f"{len(ROWS)} record(s) read" in err


def test_cli_truncated_parquet_is_named_and_exits_2() -> None:
    truncated = str(FIXTURES / "truncated.parquet")
    code, out, err = _cli(truncated, "--output", "jsonl")
    assert code == 2 and out == ""
    expected_reason = "unreadable-parquet" if HAVE_PYARROW else "missing-dependency"
    assert f"{truncated}:1: skipped ({expected_reason})" in err
    assert f"{truncated}: UNUSABLE" in err
    if HAVE_PYARROW:
        assert "truncated or not Parquet" in err
        # with a readable input next to it the scan runs (exit 0) and the bad file is listed
        code, out, err = _cli(truncated, str(FIXTURES / "struct_additional.parquet"), "--output", "jsonl")
        assert code == 0 and len(out.splitlines()) == 4 and f"{truncated}: UNUSABLE" in err


@needs_pyarrow
def test_parquet_forced_on_another_format(tmp_path: Path) -> None:
    code, _, err = _cli("--format", "parquet", str(ROOT / "samples" / "defender-sample.jsonl"))
    assert code == 2 and "unreadable-parquet" in err and "forced by --format" in err


@needs_pyarrow
def test_corrupt_row_group_is_reported_and_the_others_are_read(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "corrupt.parquet"
    pq.write_table(fixtures.table(ROWS), path, row_group_size=7, compression="zstd")
    column = pq.ParquetFile(path).metadata.row_group(1).column(5)
    data = bytearray(path.read_bytes())
    start = column.dictionary_page_offset or column.data_page_offset
    for offset in range(start + 1, start + 9):  # damage the second row group's page header
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    monkeypatch.setattr(parquet_module, "BATCH_ROWS", 7)
    result = run([path])
    assert result.summary.skipped == {"unreadable-row-group": 1}
    assert result.summary.records == len(ROWS) - 7 + 1  # the lost row group is one skipped record
    assert set(outcomes(result)) == {i for i in expected(fixtures.ROWS) if not 7 <= i < 14}


def _hide_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pyarrow", "pyarrow.compute", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` now raises ImportError


def test_missing_pyarrow_is_one_clear_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_pyarrow(monkeypatch)
    data = (FIXTURES / "defender.parquet").read_bytes()
    assert PARQUET_ADAPTER.sniff(data[:65536])  # still recognised
    skips: list[Skip] = []
    counts = ReadCounts()
    assert list(PARQUET_ADAPTER.parse_counted(io.BytesIO(data), "d.parquet", skips.append, counts)) == []
    assert [(skip.reason, skip.line) for skip in skips] == [("missing-dependency", 1)]
    assert "imds-detect[parquet]" in skips[0].detail and counts.records == 1

    code, out, err = _cli(str(FIXTURES / "defender.parquet"), "--output", "jsonl")
    assert code == 2 and out == ""
    assert "defender.parquet:1: skipped (missing-dependency)" in err and "pip install 'imds-detect[parquet]'" in err
    # other inputs are still scanned
    code, out, _ = _cli(str(FIXTURES / "defender.parquet"), str(ROOT / "samples" / "defender-sample.jsonl"),
                        "--output", "jsonl")
    assert code == 0 and out


@needs_pyarrow
def test_gzipped_parquet_is_spooled_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "defender.parquet.gz"
    raw = (FIXTURES / "defender.parquet").read_bytes()
    path.write_bytes(gzip.compress(raw))
    with caplog.at_level(logging.WARNING, logger="imds_detect.sources.parquet"):
        result = run([path])
    assert outcomes(result) == expected(fixtures.ROWS)
    assert any("spooled" in message and f"{len(raw)} bytes" in message and str(path) in message
               for message in caplog.messages)


@needs_pyarrow
def test_stdin() -> None:
    code, out, _ = _cli("-", "--output", "jsonl", stdin=(FIXTURES / "defender.parquet").read_bytes())
    assert code == 0
    records = sorted(json.loads(line)["source"]["record"] for line in out.splitlines())
    assert records == sorted(i for i, (_, label) in enumerate(fixtures.ROWS) if label.startswith("alert:"))


@needs_pyarrow
def test_fixtures_match_their_generator() -> None:
    import pyarrow.parquet as pq

    assert pq.read_table(FIXTURES / "defender.parquet").equals(fixtures.table(ROWS))
    assert pq.read_table(FIXTURES / "struct_additional.parquet").equals(
        fixtures.table(STRUCT_ROWS, additional=fixtures.struct_type()))
    whole = (FIXTURES / "defender.parquet").read_bytes()
    assert whole.startswith((FIXTURES / "truncated.parquet").read_bytes())
