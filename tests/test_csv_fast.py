"""The fast reading of Defender CSV exports (``sources/mde_csv.py``) against the reference reading.

The reference is ``csv.reader`` over every line with the row gate; the fast reading cuts blocks into plain records in
C, marks the records that could mention metadata with one scan of the block (:func:`mention_ends`), and parses only
those. On generated exports - every kind of field, quoted newlines, CRLF, blank lines, rows csv.reader refuses or
reads with another width, lone CRs, invalid UTF-8, a BOM, a cut last record, a field over csv.reader's limit, tiny
read sizes so that records straddle reads - both must give the same events, skips, line and record numbers and
counts. The block gate must mark every record that the row gate passes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hosts import METADATA_V4, ipv4_spelling

from imds_detect import ScanOptions, scan
from imds_detect.knowledge.indicators import could_mention_bytes, mention_ends
from imds_detect.sources import mde_csv
from imds_detect.sources.base import ReadCounts, Skip
from imds_detect.sources.csv_records import NATIVE_RECORDS
from imds_detect.sources.mde import MDE_ADAPTER

native = pytest.mark.skipif(NATIVE_RECORDS is None or mention_ends(b"") is None,
                            reason="the C extensions imds_detect._csv_records and _numeric_tokens are not built "
                                   "(no compiler at install, or IMDS_DETECT_PURE_PYTHON set)")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
HEADER = ["Timestamp", "DeviceName", "ActionType", "RemoteIP", "RemotePort", "InitiatingProcessFileName",
          "InitiatingProcessCommandLine", "ProcessCommandLine"]


def read_both(data: bytes, monkeypatch: pytest.MonkeyPatch, read_bytes: int,
              needs_newest: bool = False) -> tuple[Any, Any]:
    """(events as dicts, skips, records counted, the events' raw texts, and the newest time of the rows cleared
    unread when `needs_newest`) of the reference and the fast reading."""
    results = []
    for fast in (False, True):
        with monkeypatch.context() as patch:
            patch.setattr(mde_csv, "READ_BYTES", read_bytes)
            if not fast:
                patch.setattr(mde_csv, "NATIVE_RECORDS", None)
            skips: list[Skip] = []
            counts = ReadCounts(needs_newest=needs_newest)
            events = list(MDE_ADAPTER.parse_counted(io.BytesIO(data), "t.csv", skips.append, counts))
            results.append(([dataclasses.asdict(event) for event in events],
                            [(s.reason, s.line, s.detail) for s in skips], counts.records,
                            [event.raw for event in events], counts.newest if needs_newest else None))
    return results[0], results[1]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@st.composite
def cell(draw: st.DrawFn) -> str:
    """A cell's text: plain words, metadata spellings, quotes, newlines, CRs, commas, non-ASCII."""
    parts = draw(st.lists(st.one_of(
        st.sampled_from(["curl", "amazon-ssm-agent", "http://", "/latest/meta-data/", "metadata", "10.1.2.3", "443",
                         "2024-05-13T00:00:00Z", "x", " ", "é", "\u2460", "0x", "%41"]),
        st.sampled_from(METADATA_V4).map(lambda address: address),
        st.integers(0, 2**32 - 1).flatmap(lambda value: st.just(value)).map(str),
        st.sampled_from(['"', ",", "\n", "\r\n", "\r", "\x00", "\t"]),
        st.text(st.characters(codec="utf-8"), max_size=4)), max_size=4))
    if draw(st.booleans()):
        address = draw(st.sampled_from(METADATA_V4))
        value = int.from_bytes(bytes(int(part) for part in address.split(".")), "big")
        parts.append(draw(ipv4_spelling(value)))
    return "".join(parts)


@st.composite
def export(draw: st.DrawFn) -> bytes:
    """A CSV export: the header, then rows (mostly well formed, some not), in bytes."""
    width = len(HEADER)
    lines = [",".join(_quoted(name) for name in HEADER) if draw(st.booleans()) else ",".join(HEADER)]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["row"] * 6 + ["blank", "short", "stray", "after", "lone-cr", "raw"]))
        values = [draw(st.sampled_from(["2024-05-13T00:00:00Z", "2024-05-13T00:00:01.5Z", "bad", ""]))]
        values += [draw(cell()) if draw(st.integers(0, 3)) == 0 else "x" for _ in range(width - 1)]
        values[2] = draw(st.sampled_from(["ConnectionSuccess", "ProcessCreated", "Other"]))
        quoted = [_quoted(v) if draw(st.booleans()) or any(c in v for c in '",\r\n') else v for v in values]
        if kind == "blank":
            lines.append("")
            continue
        if kind == "short":
            quoted = quoted[: draw(st.integers(1, width - 1))]
        elif kind == "stray":
            quoted[draw(st.integers(0, width - 1))] = 'a"b'
        elif kind == "after":
            quoted[draw(st.integers(0, width - 1))] = '"a"b'
        elif kind == "lone-cr":
            quoted[draw(st.integers(0, width - 1))] = "a\rb"
        elif kind == "raw":
            quoted = values  # quotes, commas and newlines as they are
        lines.append(",".join(quoted))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + (ending if draw(st.booleans()) else "")
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.booleans()) and len(data) > len(lines[0]) + 4:  # invalid UTF-8, or a stray quote
        at = draw(st.integers(len(lines[0]) + 3, len(data) - 1))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xe2\x82", b"\xc3", b"", b'"'])) + data[at:]
    if draw(st.booleans()):
        data = data[: draw(st.integers(len(data) // 2, len(data)))]
    return data


@native
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=export(), read_bytes=st.sampled_from([3, 64, 1000, 1 << 20]), needs_newest=st.booleans())
def test_fast_reading_equals_the_reference(data: bytes, read_bytes: int, needs_newest: bool) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        reference, fast = read_both(data, monkeypatch, read_bytes, needs_newest)
    assert fast == reference


@native
@pytest.mark.parametrize("first", ["Timestamp", "DeviceName"])
def test_the_newest_time_counts_the_rows_cleared_unread(monkeypatch: pytest.MonkeyPatch, first: str) -> None:
    """With a relative window, the rows the gate clears still give their time: read from the first column when
    the time is there (quoted, doubled quotes, plain, a one-column tail), else by the reference step."""
    columns = [first, *(name for name in HEADER if name != first)]
    times = ["2024-05-13T00:00:09Z", "2024-05-13T00:00:07Z", "2024-05-14T10:00:00+02:00", '2024-05-13T00:00:08Z']
    lines = [",".join(columns)]
    for number, moment in enumerate(times):
        values = {"Timestamp": moment, "DeviceName": "h", "ActionType": "ConnectionSuccess", "RemoteIP": "10.0.0.1",
                  "RemotePort": "80", "InitiatingProcessFileName": "app", "InitiatingProcessCommandLine": "app",
                  "ProcessCommandLine": ""}
        cells = [values[name] for name in columns]
        lines.append(",".join(_quoted(cell) if number % 2 else cell for cell in cells))
    lines.append(lines[1].replace("2024-05-13T00:00:09Z", '"2024-05-15T00:00:00Z"""', 1))  # a doubled quote
    data = ("\n".join(lines) + "\n").encode()
    reference, fast = read_both(data, monkeypatch, 1 << 20, needs_newest=True)
    assert fast == reference
    assert reference[4] is not None and reference[4].isoformat() == "2024-05-14T08:00:00+00:00"
    assert not fast[0] and fast[2] == 5  # every row cleared by the gate, counted


@native
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_fast_reading_takes_plain_rows_and_hands_the_others_over(monkeypatch: pytest.MonkeyPatch,
                                                                  ending: str) -> None:
    """A known export: which rows alert-worthy rows become events, which are reported, and the counts."""
    header = ",".join(_quoted(name) for name in HEADER)
    row = ",".join(_quoted(v) for v in ["2024-05-13T00:00:00Z", "h", "ConnectionSuccess", "{ip}", "80", "curl",
                                        "curl -s\nhttp://{ip}/{path}", ""])
    lines = [header, row.format(ip="10.0.0.1", path="index.html"), "",
             row.format(ip="169.254.169.254", path="latest/meta-data/"), 'x"y,1', '"a"b,' * 7 + '"c"',
             row.format(ip="10.0.0.2", path="index.html"),
             row.format(ip="10.0.0.3", path="").removesuffix('""') + "2852039166"]  # a number ends the record
    data = (ending.join(lines) + ending).encode()
    reference, fast = read_both(data, monkeypatch, 1 << 20)
    assert fast == reference
    events, skips, records, raws, _ = fast
    assert [(e["source"]["line"], e["source"]["record"]) for e in events] == [(5, 1), (11, 5)]
    assert [reason for reason, _, _ in skips] == ["csv-field-count", "csv-error"]
    assert [line for _, line, _ in skips] == [7, 8]
    assert records == 6 and raws[0].startswith('"2024-05-13T00:00:00Z","h"') and "\n" in raws[0]


@native
def test_a_field_over_the_csv_limit_is_reported_as_the_reference_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    header = ",".join(HEADER)
    big = _quoted("a" * (csv.field_size_limit() + 10))
    row = ",".join(["2024-05-13T00:00:00Z", "h", "ConnectionSuccess", "169.254.169.254", "80", "curl", big, ""])
    data = "\n".join([header, row, row.replace(big, "x")]).encode() + b"\n"
    reference, fast = read_both(data, monkeypatch, 1 << 20)
    assert fast == reference
    assert [reason for reason, _, _ in fast[1]] == ["csv-error"] and len(fast[0]) == 1


@st.composite
def records_block(draw: st.DrawFn) -> list[bytes]:
    """Records (each ending with a newline) of text that may name metadata in any spelling, or not."""
    records = []
    for _ in range(draw(st.integers(1, 12))):
        text = draw(cell()).replace("\n", " ")
        records.append(text.encode("utf-8", "surrogatepass") + draw(st.sampled_from([b"\n", b"\r\n"])))
    return records


@native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_block())
def test_block_gate_marks_every_record_the_row_gate_passes(records: list[bytes]) -> None:
    block = b"".join(records)
    marks = mention_ends(block)
    assert marks is not None
    start = 0
    for record in records:
        end = start + len(record)
        if could_mention_bytes(record):
            assert any(start <= mark - 1 < end for mark in marks), record
        start = end


@native
def test_block_gate_finds_each_kind_where_it_is() -> None:
    block = b"a,b\nx 169.254.169.254 y\nnothing 123\nrun 2852039166\ncurl metadata.google.internal\n"
    marks = sorted(mention_ends(block) or [])
    lines = [block.count(b"\n", 0, mark - 1) for mark in marks]
    assert set(lines) == {1, 3, 4}


@native
@pytest.mark.skipif(not (SHARED / "mde").is_dir(), reason="../shared/data/mde not present")
def test_real_exports_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((SHARED / "mde").glob("*.csv"))
    if not files:
        pytest.skip("no CSV export in ../shared/data/mde")
    for path in files:
        reference, fast = read_both(path.read_bytes(), monkeypatch, 1 << 16)
        assert fast == reference, path.name


@native
def test_scan_of_a_csv_export_is_the_same_without_the_fast_reading(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: alerts and the summary, with the fast reading and with the reference."""
    header = ",".join(HEADER)
    rows = []
    for n in range(3000):
        ip = "169.254.169.254" if n % 97 == 0 else f"10.0.{n % 250}.{n % 7}"
        command = "curl http://169.254.169.254/latest/meta-data/iam/" if n % 301 == 0 else "python app.py"
        rows.append(",".join([f"2024-05-13T00:{n // 60 % 60:02d}:{n % 60:02d}Z", f"h{n % 5}", "ConnectionSuccess", ip,
                              "80", "curl" if n % 2 else "python", _quoted(command), ""]))
    path = tmp_path / "export.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    fast = scan([str(path)], ScanOptions())
    monkeypatch.setattr(mde_csv, "NATIVE_RECORDS", None)
    reference = scan([str(path)], ScanOptions())
    assert [a.as_dict() for a in fast.alerts] == [a.as_dict() for a in reference.alerts]
    assert fast.summary.as_dict() == reference.summary.as_dict()
    assert len(fast.alerts) >= 10 and fast.summary.records == 3000
