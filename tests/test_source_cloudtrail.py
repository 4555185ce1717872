"""The CloudTrail adapter and the streaming JSON record reader: layouts, gzip, S3 trees, skips, memory."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imds_detect.engine.scan import scan
from imds_detect.model import EventKind
from imds_detect.sources.base import Skip
from imds_detect.sources.cloudtrail import CLOUDTRAIL_ADAPTER
from imds_detect.sources.jsonstream import iter_records
from imds_detect.sources.registry import detect_format

FIXTURES = Path(__file__).parent / "fixtures"
TRAIL = FIXTURES / "cloudtrail" / "offinstance.json"
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"


def records() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(TRAIL.read_text())["Records"]
    return data


def parse(data: bytes) -> tuple[list[Any], list[Skip]]:
    skips: list[Skip] = []
    return list(CLOUDTRAIL_ADAPTER.parse(io.BytesIO(data), "f", skips.append)), skips


def names(events: list[Any]) -> list[str]:
    return [event.cloud.operation for event in events]


EXPECTED = [record["eventName"] for record in json.loads(TRAIL.read_text())["Records"]]


@pytest.mark.parametrize("layout", ["records", "records-compact", "array", "ndjson", "concatenated", "wrapped-lines",
                                    "eventbridge"])
def test_every_layout_gives_the_same_calls(layout: str) -> None:
    items = records()
    if layout == "records":
        data = json.dumps({"Records": items}, indent=2)
    elif layout == "records-compact":
        data = json.dumps({"Records": items}, separators=(",", ":"))
    elif layout == "array":
        data = json.dumps(items, indent=3)
    elif layout == "ndjson":
        data = "".join(json.dumps(item) + "\n" for item in items)
    elif layout == "concatenated":
        data = json.dumps({"Records": items[:5]}) + json.dumps({"Records": items[5:]}, indent=1)
    elif layout == "wrapped-lines":
        data = "".join(json.dumps({"Records": [item]}) + "\n" for item in items)
    else:
        data = "".join(json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": item}) + "\n"
                       for item in items)
    assert CLOUDTRAIL_ADAPTER.sniff(data.encode()[:65536])
    events, skips = parse(data.encode())
    assert skips == []
    assert names(events) == EXPECTED
    assert all(event.kind is EventKind.CLOUD for event in events)


def test_fields_lines_and_logstash_timestamp() -> None:
    text = json.dumps(records()[:3], indent=2)
    events, _ = parse(text.encode())
    first = events[0]
    assert first.cloud.principal == "ec2.amazonaws.com" and first.cloud.principal_type == "AWSService"
    assert first.source.line == 2 and first.source.record == 0  # pretty-printed: the line the record starts on
    assert events[1].source.line == text.splitlines().index('  {', 2) + 1
    stash = dict(records()[6])
    stash["@timestamp"] = stash.pop("eventTime")
    (event,), _ = parse(json.dumps(stash).encode())
    assert event.timestamp.isoformat() == "2024-05-01T10:15:00+00:00"
    assert event.cloud.source_ip == "203.0.113.50" and event.cloud.account == "111122223333"


def test_malformed_records_are_named_and_reading_resumes() -> None:
    lines = [json.dumps(item) for item in records()[:4]]
    lines[1] = lines[1][:40]  # cut mid-record
    data = ("\n".join(lines) + "\n" + '{"eventName": "X"}\n' + '{"digestStartTime": "x", "awsAccountId": "1"}\n')
    events, skips = parse(data.encode())
    assert names(events) == [EXPECTED[0], EXPECTED[2], EXPECTED[3]]
    assert [(skip.reason, skip.line) for skip in skips] == [("malformed-json", 2), ("not-cloudtrail", 5),
                                                           ("cloudtrail-digest", 6)]
    assert skips[0].message().startswith("f:2: skipped (malformed-json)")


def test_pretty_array_with_a_broken_record_resumes_at_the_next_record() -> None:
    text = json.dumps(records()[:3], indent=2)
    broken = text.replace('"eventSource": "ec2.amazonaws.com"', '"eventSource": ec2', 1)
    events, skips = parse(broken.encode())
    assert names(events) == [EXPECTED[0], EXPECTED[2]]
    assert [skip.reason for skip in skips] == ["malformed-json"]


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    data = gzip.compress(json.dumps({"Records": records() * 50}).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    result = scan([str(path)])
    report = result.summary.files[0]
    assert report.format == "cloudtrail" and report.status == "partial"
    assert result.summary.records > 0


def test_sniff_keeps_other_formats_apart() -> None:
    head = TRAIL.read_bytes()[:65536]
    assert detect_format(head) is CLOUDTRAIL_ADAPTER
    assert not CLOUDTRAIL_ADAPTER.sniff(SAMPLE.read_bytes()[:65536])
    assert not CLOUDTRAIL_ADAPTER.sniff(b'{"Timestamp": "x", "eventName": "y"}')  # no CloudTrail identity keys
    assert CLOUDTRAIL_ADAPTER.sniff(b'{"awsAccountId":"1","digestStartTime":"x"}')


def test_s3_export_tree_with_gzip_and_digests(tmp_path: Path) -> None:
    root = tmp_path / "AWSLogs" / "111122223333"
    items = records()
    day = root / "CloudTrail" / "us-west-2" / "2024" / "05" / "01"
    day.mkdir(parents=True)
    for number, chunk in enumerate((items[:6], items[6:])):
        name = f"111122223333_CloudTrail_us-west-2_20240501T10{number}0Z_abc.json.gz"
        (day / name).write_bytes(gzip.compress(json.dumps({"Records": chunk}).encode()))
    digest = root / "CloudTrail-Digest" / "us-west-2" / "2024" / "05" / "01"
    digest.mkdir(parents=True)
    (digest / "d.json.gz").write_bytes(gzip.compress(b'{"awsAccountId":"111122223333","digestStartTime":"x"}'))
    result = scan([str(tmp_path)])
    assert result.summary.skipped["cloudtrail-digest"] == 1
    assert result.summary.records == len(items) + 1
    stolen = [alert for alert in result.alerts if alert.rule_id == "imds-credential-off-instance"]
    assert {alert.host for alert in stolen} >= {"i-0aaa1111bbbb22223"}  # learning spans the two files


def _big_stream(count: int) -> Iterator[bytes]:
    item = json.dumps(records()[6]).encode()
    yield b'{"Records":['
    for number in range(count):
        yield (b"," if number else b"") + item
    yield b"]}"


class _Chunks(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            self.pending = next(self.chunks, b"")
            if not self.pending:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def test_streaming_memory_does_not_grow_with_the_file() -> None:
    count = 40_000  # about 30 MB of records
    stream = io.BufferedReader(_Chunks(_big_stream(count)))
    tracemalloc.start()
    seen = sum(1 for _ in iter_records(stream, lambda line, why: None))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == count
    assert peak < 12 * 1024 * 1024


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cloudtrail"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data absent")
def test_real_files_read_without_skips() -> None:
    result = scan([str(SHARED)])
    assert {report.format for report in result.summary.files} == {"cloudtrail"}
    assert all(report.status == "ok" for report in result.summary.files)
    assert not result.summary.skipped
    assert result.summary.records == 413

