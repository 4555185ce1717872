"""Web, proxy and Zeek log sources: every labelled fixture alerts exactly where its labels say, with and without
the prefilter, recognised by content; formats, escapes and bad input in detail."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from weblog_support import FIXTURES, LABELS, alerts_by_line, scan_fixture, web_formats

from imds_detect import ScanOptions, scan
from imds_detect.sources import registry
from imds_detect.sources.access import ACCESS_ADAPTER, AccessLogAdapter
from imds_detect.sources.base import ReadCounts, Skip
from imds_detect.sources.httplog import clf_time, split_request, split_target, unescape
from imds_detect.sources.jsonweb import DEFAULT_FIELDS, lookup
from imds_detect.sources.logformat import LogFormatError, compile_format
from imds_detect.sources.zeek import ZEEK_ADAPTER

LINE_FILES = sorted(name for name, label in LABELS.items() if "alerts_by_record" not in label
                    and name != "access/probing.log")


def test_generator_reproduces_the_fixtures(tmp_path: object) -> None:
    before = {path: path.read_bytes() for path in FIXTURES.rglob("*") if path.is_file() and path.suffix != ".py"}
    subprocess.run([sys.executable, str(FIXTURES / "generate.py")], check=True)
    after = {path: path.read_bytes() for path in FIXTURES.rglob("*") if path.is_file() and path.suffix != ".py"}
    assert after == before


@pytest.mark.parametrize("name", LINE_FILES)
@pytest.mark.parametrize("prefilter", [True, False])
def test_fixture_alerts_exactly_where_labelled(name: str, prefilter: bool) -> None:
    result = scan_fixture(name, prefilter=prefilter)
    assert result.summary.files[0].format == LABELS[name]["format"]  # recognised by content
    assert alerts_by_line(result) == LABELS[name]["alerts"]


@pytest.mark.parametrize("name", LINE_FILES)
def test_bad_lines_are_reported_with_file_and_line(name: str) -> None:
    warnings: list[str] = []
    exhaustive = scan_fixture(name, prefilter=False, warn=warnings.append)
    reported = {w.split(":")[1]: w.split("skipped (")[1].split(")")[0] for w in warnings if "skipped (" in w}
    assert reported == LABELS[name]["skips"]
    assert sum(exhaustive.summary.skipped.values()) == len(LABELS[name]["skips"])
    warnings.clear()
    fast = scan_fixture(name, warn=warnings.append)  # lines the prefilter clears are not read, so not reported
    reported = {w.split(":")[1]: w.split("skipped (")[1].split(")")[0] for w in warnings if "skipped (" in w}
    assert reported.items() <= LABELS[name]["skips"].items()
    assert fast.summary.records == exhaustive.summary.records


def test_every_malformed_line_naming_a_metadata_host_is_reported_through_the_prefilter() -> None:
    for name in LINE_FILES:
        warnings: list[str] = []
        scan_fixture(name, warn=warnings.append)
        lines = (FIXTURES / name).read_text(encoding="utf-8").split("\n")
        for number, reason in LABELS[name]["skips"].items():
            if "169.254.169.254" in lines[int(number) - 1]:
                assert any(f":{number}: skipped ({reason})" in w for w in warnings), (name, number)


def test_a_whole_azure_document_alerts_per_record() -> None:
    name = "azure_web/frontdoor_records.json"
    result = scan_fixture(name)
    found = {str(alert.source.record): {"rule": alert.rule_id, "severity": alert.severity.label,
                                        "path_class": alert.endpoint.path_class,
                                        "outcome": alert.request.outcome if alert.request else ""}
             for alert in result.alerts}
    assert found == LABELS[name]["alerts_by_record"]


def test_forced_format_reads_the_same() -> None:
    for name in LINE_FILES:
        assert alerts_by_line(scan_fixture(name, force=True)) == LABELS[name]["alerts"], name


def test_web_formats_are_recognised_by_content_and_nothing_else_claims_them() -> None:
    for name, label in LABELS.items():
        head = (FIXTURES / name).read_bytes()[:65536]
        with web_formats(label["options"].get("log_formats", ()), label["options"].get("json_fields", ())):
            adapter = registry.detect_format(head)
        assert adapter is not None and adapter.name == label["format"], name


def test_outbound_records_are_attributed_to_the_client() -> None:
    result = scan_fixture("squid/native.log")
    first = min(result.alerts, key=lambda alert: alert.source.line)
    assert (first.host, first.request.client, first.request.direction) == ("10.20.0.5", "10.20.0.5", "outbound")
    assert any("IMDSv2 session token request" in reason for reason in first.reasons)
    second = next(alert for alert in result.alerts if alert.source.line == 2)
    assert any("IMDSv1 unless a token PUT came first" in reason for reason in second.reasons)
    rebound = next(alert for alert in result.alerts if alert.source.line == 4)  # a name the proxy resolved
    assert rebound.endpoint.canonical == "169.254.169.254" and rebound.endpoint.raw == "169.254.169.254"


def test_ssrf_alerts_carry_the_request_and_its_outcome() -> None:
    result = scan_fixture("access/nginx_custom.log")
    by_line = {alert.source.line: alert for alert in result.alerts}
    host_trick = by_line[1]
    assert host_trick.request is not None
    assert (host_trick.request.client, host_trick.request.host, host_trick.request.status) == (
        "198.51.102.1", "169.254.169.254", 200)
    assert host_trick.request.as_dict()["outcome"] == "likely-success"
    assert "SSRF attempt" in host_trick.reasons[0]
    upstream = by_line[5]
    assert "passed this request on to '169.254.169.254'" in upstream.reasons[0]
    body = by_line[6]
    assert "inside the request body" in body.reasons[0] and body.endpoint.raw.startswith("http://2852039166")
    assert "request" in host_trick.as_dict() and "request" not in _defender_alert().as_dict()


def _defender_alert() -> object:
    from imds_detect.detect.allowlist import Allowlist
    from imds_detect.detect.detector import Detector
    from imds_detect.sources.mde import MDE_ADAPTER

    row = {"Timestamp": "2026-11-27T08:00:00Z", "DeviceName": "vm-1", "ActionType": "HttpConnectionInspected",
           "RemoteIP": "169.254.169.254", "RemotePort": 80,
           "AdditionalFields": json.dumps({"uri": "/latest/user-data", "host": "169.254.169.254", "method": "GET"})}
    event = MDE_ADAPTER.parse_line(json.dumps(row).encode(), "t", 1, 0, lambda skip: None)
    assert event is not None
    return Detector(Allowlist([])).run(event).alerts[0]


# -- formats in detail ---------------------------------------------------------------------------------------


def test_nginx_and_apache_format_strings_compile_to_the_same_fields() -> None:
    nginx = compile_format('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                           '"$http_referer" "$http_user_agent"')
    apache = compile_format('%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\"')
    line = ('203.0.113.9 - bob [27/Nov/2026:08:00:00 +0100] "GET /a?b=c HTTP/1.1" 200 15 "-" '
            '"Mozilla/5.0 \\"quoted\\""')
    for fmt in (nginx, apache):
        record = fmt.parse(line)
        assert record is not None, fmt.style
        assert (record.client, record.method, record.target, record.status, record.response_bytes) == (
            "203.0.113.9", "GET", "/a?b=c", 200, 15)
        assert record.time == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert apache.parse(line).user_agent == 'Mozilla/5.0 "quoted"'  # type: ignore[union-attr]


def test_format_variables_map_to_fields() -> None:
    fmt = compile_format("$time_iso8601 $request_method $scheme://$http_host$request_uri $status $request_body")
    record = fmt.parse("2026-11-27T08:00:00+00:00 POST https://169.254.169.254/latest/api/token 200 x=1")
    assert record is not None
    assert (record.method, record.host, record.target, record.body) == ("POST", "169.254.169.254",
                                                                         "/latest/api/token", "x=1")
    apache = compile_format('%{%Y-%m-%d %H:%M:%S}t %a %m %U%q %>s %{Host}i')
    record = apache.parse("2026-11-27 08:00:00 10.0.0.1 GET /fetch?u=http://0xa9fea9fe/ 502 0xa9fea9fe")
    assert record is not None and (record.target, record.host, record.status) == (
        "/fetch?u=http://0xa9fea9fe/", "0xa9fea9fe", 502)
    epoch = compile_format("%{msec}t %r").parse("1795766400123 GET / HTTP/1.1")
    assert epoch is not None and epoch.time == datetime(2026, 11, 27, 8, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize("text", ["$remote_addr $status", "%h %>s %b", "$time_local $status", "plain text"])
def test_unusable_formats_are_refused(text: str) -> None:
    with pytest.raises(LogFormatError):
        compile_format(text)


def test_escapes_are_undone_as_log_writers_apply_them() -> None:
    assert unescape("a\\x22b\\x5Cc") == 'a"b\\c'
    assert unescape("\\xEF\\xBC\\x91\\xEF\\xBC\\x96") == "１６"  # UTF-8 bytes escaped by nginx
    assert unescape("\\xB9") == "\u00b9"  # not UTF-8: read as Latin-1, as the URL reader does
    assert unescape('say \\"hi\\"\\n') == 'say "hi"\n'
    assert unescape("no escapes") == "no escapes"


def test_request_lines_and_targets() -> None:
    assert split_request("GET /x HTTP/1.1") == ("GET", "/x")
    assert split_request("GET /a b HTTP/1.0") == ("GET", "/a b")
    assert split_request("-") == ("", "")
    assert split_request("\\x16\\x03") == ("", "\\x16\\x03")
    assert split_target("http://user@169.254.169.254:80/latest?x#y") == ("169.254.169.254:80", "/latest?x#y")
    assert split_target("HTTPS://h") == ("h", "/")
    assert split_target("169.254.169.254:443", "CONNECT") == ("169.254.169.254:443", "")
    assert split_target("/plain") == ("", "/plain")


def test_clf_time_with_zone_and_fraction() -> None:
    assert clf_time("[10/Oct/2000:13:55:36 -0700]") == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert clf_time("10/Oct/2000:13:55:36.250 +0000").microsecond == 250000
    with pytest.raises(ValueError):
        clf_time("10/Foo/2000:13:55:36 +0000")


def test_json_lookup_is_case_insensitive_and_follows_dotted_paths() -> None:
    record = {"URL": {"Original": "/a"}, "http.request.method": "GET", "x": None}
    assert lookup(record, "url.original") == "/a"
    assert lookup(record, "http.request.method") == "GET"
    assert lookup(record, "missing.key") is None
    with pytest.raises(ValueError):
        DEFAULT_FIELDS.with_names({"nonsense": "x"})


def test_custom_format_is_tried_before_the_built_in_ones_and_restored() -> None:
    fmt = '$remote_addr [$time_local] "$request" $status host=$http_host'
    with web_formats([fmt]):
        adapter = registry.BY_NAME["access"]
        assert isinstance(adapter, AccessLogAdapter) and adapter.custom == (fmt,)
    assert registry.BY_NAME["access"] is ACCESS_ADAPTER


def test_zeek_tsv_headers_and_escapes() -> None:
    text = ("#separator \\x09\n#unset_field\t-\n#empty_field\t(empty)\n#path\thttp\n"
            "#fields\tts\tid.orig_h\tid.resp_h\tid.resp_p\tmethod\thost\turi\tuser_agent\tstatus_code\n"
            "1795766400.5\t10.0.0.5\t10.0.0.9\t80\tGET\tshop.example\t/f?u=http://169.254.169.254/\\x09\t-\t200\n"
            "1795766401.5\t10.0.0.5\t10.0.0.9\t80\tGET\t(empty)\t/\t-\t-\n")
    skips: list[Skip] = []
    counts = ReadCounts(exhaustive=True)
    events = list(ZEEK_ADAPTER.parse_counted(io.BytesIO(text.encode()), "h.log", skips.append, counts))
    assert [event.source.line for event in events] == [6, 7]
    fast = ReadCounts()  # with the prefilter only the line that names a metadata host is parsed
    assert [event.source.line for event in ZEEK_ADAPTER.parse_counted(
        io.BytesIO(text.encode()), "h.log", skips.append, fast)] == [6]
    assert fast.records == 2
    assert events[0].http_uri == "/f?u=http://169.254.169.254/\t" and events[0].user_agent == ""
    assert events[1].http_host == "" and events[1].http_status is None
    assert counts.records == 2 and not skips


def test_relative_window_uses_the_newest_access_log_time(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "a.log"
    lines = [f'198.51.100.{i} - - [27/Nov/2026:0{i}:00:00 +0000] "GET /fetch?url=http://169.254.169.254/latest/'
             f'user-data HTTP/1.1" 200 900 "-" "-"' for i in range(1, 6)]
    path.write_text("\n".join(lines) + "\n")
    assert ACCESS_ADAPTER.newest_in_block(path.read_bytes()) == datetime(2026, 11, 27, 5, tzinfo=UTC)
    from imds_detect.engine.window import parse_bound

    result = scan([str(path)], ScanOptions(since=parse_bound("2h")))
    assert sorted(alert.source.line for alert in result.alerts) == [3, 4, 5]
    assert result.summary.prefiltered == 0  # nothing to clear: every line is a candidate
