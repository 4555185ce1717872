"""The benchmark data generator writes valid, labelled, deterministic Defender rows in JSON lines and CSV."""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

GENERATOR = Path(__file__).resolve().parents[1] / "benchmarks" / "generate_defender.py"
SIZE = "2MB"
SEED = 7
RATIO = 100

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
DEVICE_ID = re.compile(r"^[0-9a-f]{40}$")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_defender", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _run(out: Path, fmt: str = "jsonl", size: str = SIZE) -> dict[str, int]:
    done = subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--size",
            size,
            "--out",
            str(out),
            "--seed",
            str(SEED),
            "--ratio",
            str(RATIO),
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    figures = {}
    for key, pattern in (
        ("rows", r"rows written: (\d+)"),
        ("planted", r"rows planted: (\d+)"),
        ("bytes", r"bytes written: (\d+)"),
    ):
        match = re.search(pattern, done.stdout)
        assert match, f"missing {key!r} in output:\n{done.stdout}"
        figures[key] = int(match.group(1))
    return figures


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], dict[str, Any]]:
    out = tmp_path_factory.mktemp("gen") / "defender.jsonl"
    figures = _run(out)
    labels = json.loads(out.with_name(out.name + ".labels.json").read_text(encoding="utf-8"))
    return out, figures, labels


def test_every_line_is_a_defender_row(jsonl: tuple[Path, dict[str, int], dict[str, Any]]) -> None:
    out, figures, _ = jsonl
    raw = out.read_bytes()
    assert len(raw) == figures["bytes"] >= 2_000_000
    lines = raw.decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == figures["rows"]
    tables = {cols: name for name, cols in gen.TABLE_COLUMNS.items()}
    counts = dict.fromkeys(gen.TABLE_COLUMNS, 0)
    for line in lines:
        row = json.loads(line)
        assert tuple(row) in tables, f"unexpected column set: {sorted(row)}"
        counts[tables[tuple(row)]] += 1
        assert "Type" not in row
        assert TIMESTAMP.match(row["Timestamp"]), row["Timestamp"]
        assert DEVICE_ID.match(row["DeviceId"]), row["DeviceId"]
        assert row["DeviceName"] and row["ActionType"]
        assert isinstance(row["ReportId"], int)
        assert isinstance(row["AdditionalFields"], str)
        if row["AdditionalFields"]:
            json.loads(row["AdditionalFields"])
    total = sum(counts.values())
    assert 0.40 < counts[gen.NETWORK_TABLE] / total < 0.60
    assert 0.25 < counts[gen.PROCESS_TABLE] / total < 0.45
    assert 0.08 < counts[gen.EVENTS_TABLE] / total < 0.22


def test_planted_rows_match_labels_and_ratio(jsonl: tuple[Path, dict[str, int], dict[str, Any]]) -> None:
    out, figures, labels = jsonl
    indices = labels["indices"]
    assert figures["planted"] == labels["planted_count"] == len(indices) > 0
    assert labels["rows"] == figures["rows"]
    assert indices == sorted(set(indices))
    assert all(0 <= i < figures["rows"] for i in indices)
    expected = figures["rows"] / RATIO
    assert 0.5 * expected <= len(indices) <= 1.6 * expected
    decoys = {i for v in labels["decoys"].values() for i in v}
    assert decoys and not decoys & set(indices)

    lines = out.read_text(encoding="utf-8").splitlines()
    for planted in labels["planted"]:
        row = json.loads(lines[planted["index"]])
        text = " ".join(str(v) for v in row.values())
        if planted["template"] == "process:ps_encodedcommand":
            encoded = row["ProcessCommandLine"].rsplit(" ", 1)[-1]
            text = base64.b64decode(encoded).decode("utf-16-le")
        assert planted["host"].strip("[]") in text, (planted, row)


def test_generation_is_deterministic(
    tmp_path: Path, jsonl: tuple[Path, dict[str, int], dict[str, Any]]
) -> None:
    out, _, _ = jsonl
    again = tmp_path / "again.jsonl"
    _run(again)
    assert again.read_bytes() == out.read_bytes()
    smaller = tmp_path / "smaller.jsonl"
    _run(smaller, size="500KB")
    assert out.read_bytes().startswith(smaller.read_bytes())


def test_csv_variant_parses_into_the_same_records(
    tmp_path: Path, jsonl: tuple[Path, dict[str, int], dict[str, Any]]
) -> None:
    json_out, _, json_labels = jsonl
    out = tmp_path / "defender.csv"
    figures = _run(out, fmt="csv")
    labels = json.loads(out.with_name(out.name + ".labels.json").read_text(encoding="utf-8"))
    csv.field_size_limit(1 << 24)
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.reader(fh))
    header, body = records[0], records[1:]
    assert tuple(header) == gen.CSV_COLUMNS
    assert len(body) == figures["rows"] == labels["rows"]
    assert all(len(r) == len(header) for r in body)
    assert any("\n" in field for r in body for field in r), "expected a few embedded newlines"
    raw = out.read_text(encoding="utf-8")
    assert raw.count("\n") > len(records)  # so a record is not a line
    assert '""' in raw

    # Same seed and ratio: record i of the CSV is record i of the JSON lines file.
    json_rows = [json.loads(line) for line in json_out.read_text(encoding="utf-8").splitlines()]
    for row, record in zip(json_rows, body, strict=False):
        as_csv = dict(zip(header, record, strict=True))
        for key, value in row.items():
            assert as_csv[key] == ("" if value is None else str(value)), key
    n = len(json_rows)
    assert [i for i in labels["indices"] if i < n] == [i for i in json_labels["indices"] if i < n]


def test_parse_size() -> None:
    assert gen.parse_size("1GB") == 10**9
    assert gen.parse_size("2 MiB") == 2 << 20
    assert gen.parse_size("500000") == 500_000
