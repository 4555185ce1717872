"""The prefilter is safe on web, proxy and Zeek logs: a line that alerts is never cleared, whatever the host spelling
(every encoding class of DOMAIN.md section 2), wherever the request carries it, however often it was percent-
encoded; and whole scans give the same alerts with and without it."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st
from test_prefilter import _in_url, metadata_host_spelling

from imds_detect import ScanOptions, Severity, scan
from imds_detect.detect.allowlist import Allowlist
from imds_detect.detect.detector import Detector
from imds_detect.engine.prefilter import Prefilter, for_adapter
from imds_detect.sources.access import AccessLogAdapter
from imds_detect.sources.awslb import AWS_LB_ADAPTER
from imds_detect.sources.base import ReadCounts
from imds_detect.sources.iis import IIS_ADAPTER
from imds_detect.sources.jsonweb import AZURE_WEB_ADAPTER, JSON_WEB_ADAPTER
from imds_detect.sources.squid import SQUID_ADAPTER
from imds_detect.sources.zeek import ZEEK_ADAPTER

ROOT = Path(__file__).resolve().parent.parent
DETECTOR = Detector(Allowlist([]))
CUSTOM = AccessLogAdapter(('$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_user_agent" '
                           'host="$http_host" body="$request_body"',))
LINE_ADAPTERS = (CUSTOM, SQUID_ADAPTER, AWS_LB_ADAPTER, ZEEK_ADAPTER, JSON_WEB_ADAPTER, AZURE_WEB_ADAPTER)
PREFILTERS = {adapter.name: (for_adapter(adapter), for_adapter(adapter, use_hyperscan=False))
              for adapter in LINE_ADAPTERS}
PATHS = ("/latest/meta-data/iam/security-credentials/r", "/computeMetadata/v1/instance/service-accounts/default/token",
         "/metadata/identity/oauth2/token?resource=x", "/latest/user-data", "/", "/v2/credentials/0123456789ab")
PLACES = ("query", "segment", "absolute", "userinfo", "host", "body", "fragment", "base64")


def _nginx_escape(text: str) -> str:
    return "".join(c if 0x20 <= ord(c) < 0x7F and c != '"' else "".join(f"\\x{b:02X}" for b in c.encode())
                   for c in text)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str]:
    """(target, Host header, body) carrying a metadata host somewhere, possibly percent-encoded."""
    host = draw(metadata_host_spelling())
    path = draw(st.sampled_from(PATHS))
    url = f"http://{_in_url(host)}{path}"
    place = draw(st.sampled_from(PLACES))
    rounds = draw(st.integers(0, 2))
    encoded = url
    for _ in range(rounds):
        encoded = quote(encoded, safe="" if draw(st.booleans()) else ":/")
    target, header, body = "/index.html", "shop.example", ""
    if place == "query":
        target = f"/fetch?url={encoded}"
    elif place == "segment":
        target = f"/proxy/{_in_url(host)}{path}"
    elif place == "absolute":
        target = url
    elif place == "userinfo":
        target = f"/fetch?url=http://good.example@{_in_url(host)}{path}"
    elif place == "host":
        target, header = path, _in_url(host)
    elif place == "body":
        target, body = "/api/preview", json.dumps({"url": encoded}, ensure_ascii=draw(st.booleans()))
    elif place == "fragment":
        target = f"/page?x=1#{encoded}"
    else:
        target = "/img?u=" + base64.b64encode(url.encode()).decode()
    return target, header, body


def _line(adapter_name: str, target: str, header: str, body: str) -> bytes:
    if adapter_name == "access":
        return (f'198.51.100.7 - - [27/Nov/2026:08:00:00 +0000] "POST {_nginx_escape(target)} HTTP/1.1" 200 1400 '
                f'"curl/8.5.0" host="{_nginx_escape(header)}" body="{_nginx_escape(body)}"').encode()
    if adapter_name == "squid":
        return (f"1795766400.123    150 10.0.0.5 TCP_MISS/200 1400 GET {target.replace(' ', '%20')} - "
                "HIER_DIRECT/10.9.8.7 application/json").encode()
    if adapter_name == "aws-lb":
        url = target if "://" in target else f"https://{header}:443{target}"
        return (f'https 2026-11-27T08:00:00.000000Z app/alb/1 198.51.100.7:5000 10.0.0.1:80 0.1 0.1 0.1 200 200 10 '
                f'1400 "GET {_nginx_escape(url)} HTTP/1.1" "curl/8.5.0" - - arn:x "Root=1" "-" "-" 0').encode()
    row: dict[str, object]
    if adapter_name == "zeek":
        row = {"ts": 1795766400.5, "uid": "C1", "id.orig_h": "198.51.100.7", "id.orig_p": 5000,
               "id.resp_h": "10.0.0.80", "id.resp_p": 80, "method": "GET", "host": header, "uri": target,
               "status_code": 200, "response_body_len": 1400}
    elif adapter_name == "json-web":
        row = {"time": "2026-11-27T08:00:00Z", "remote_addr": "198.51.100.7", "request": f"POST {target} HTTP/1.1",
               "status": 200, "http_host": header, "request_body": body}
    else:
        row = {"time": "2026-11-27T08:00:00Z", "category": "ApplicationGatewayAccessLog", "properties": {
            "clientIP": "198.51.100.7", "requestUri": target, "host": header, "httpStatus": 200,
            "details": {"data": body}}}
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def _alerts(adapter: object, line: bytes) -> list[str]:
    event = adapter.parse_line(line, "t", 1, 0, lambda skip: None)  # type: ignore[attr-defined]
    return [] if event is None else [alert.rule_id for alert in DETECTOR.run(event).alerts]


@settings(max_examples=1200, deadline=None)
@given(request=requests(), adapter=st.sampled_from(LINE_ADAPTERS))
def test_every_line_that_alerts_is_selected(request: tuple[str, str, str], adapter: object) -> None:
    line = _line(adapter.name, *request)  # type: ignore[attr-defined]
    if not _alerts(adapter, line):
        return
    for prefilter in PREFILTERS[adapter.name]:  # type: ignore[attr-defined]
        assert prefilter.plan(line + b"\n").spans, (prefilter.engine, line)


def _iis(target: str, header: str) -> bytes:
    stem, _, query = target.partition("?")
    return ("#Software: Microsoft Internet Information Services 10.0\n#Fields: date time cs-method cs-uri-stem "
            "cs-uri-query c-ip cs-host sc-status sc-bytes\n2026-11-27 08:00:00 GET "
            f"{stem.replace(' ', '+') or '/'} {query.replace(' ', '+') or '-'} 198.51.100.7 {header or '-'} 200 1400\n"
            ).encode()


def _zeek_tsv(target: str, header: str) -> bytes:
    fields = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmethod\thost\turi\tstatus_code\tresponse_body_len"
    row = f"1795766400.5\tC1\t198.51.100.7\t5000\t10.0.0.80\t80\tGET\t{header or '-'}\t{target}\t200\t1400"
    return f"#separator \\x09\n#path\thttp\n#fields\t{fields}\n{row}\n".encode()


def _counted_alerts(adapter: object, data: bytes, exhaustive: bool) -> list[int]:
    events = adapter.parse_counted(io.BytesIO(data), "t", lambda skip: None,  # type: ignore[attr-defined]
                                   ReadCounts(exhaustive=exhaustive))
    return [event.source.line for event in events if DETECTOR.run(event).alerts]


@settings(max_examples=600, deadline=None)
@given(request=requests(), which=st.sampled_from(["iis", "zeek"]))
def test_headed_formats_alert_the_same_with_the_prefilter(request: tuple[str, str, str], which: str) -> None:
    target, header, _ = request
    if " " in target or "\t" in target or " " in header:
        return  # not a valid W3C or TSV field
    data = _iis(target, header) if which == "iis" else _zeek_tsv(target, header)
    adapter = IIS_ADAPTER if which == "iis" else ZEEK_ADAPTER
    assert _counted_alerts(adapter, data, exhaustive=False) == _counted_alerts(adapter, data, exhaustive=True)


def test_most_generated_lines_really_alert() -> None:
    """Guard against a vacuous property: most generated requests must alert."""
    alerting = total = 0

    @settings(max_examples=300, deadline=None, database=None)
    @given(request=requests(), adapter=st.sampled_from(LINE_ADAPTERS))
    def count(request: tuple[str, str, str], adapter: object) -> None:
        nonlocal alerting, total
        total += 1
        alerting += bool(_alerts(adapter, _line(adapter.name, *request)))  # type: ignore[attr-defined]

    count()
    assert alerting > total * 0.6, (alerting, total)


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("%0123456789abcdefABCDEF./:@=?&x2 \n+-_\\uﾟ１．"), max_size=60))
def test_percent_recheck_never_clears_what_the_detections_decode(text: str) -> None:
    """Any escaped text that reads as a metadata reference once decoded keeps its line."""
    adapter = CUSTOM
    line = _line("access", "/fetch?u=" + text.replace('"', ""), "a.example", "")
    if _alerts(adapter, line):
        for prefilter in PREFILTERS["access"]:
            assert prefilter.plan(line + b"\n").spans, line


def test_percent_only_lines_are_decoded_before_they_are_cleared() -> None:
    prefilter = Prefilter(numeric_after=rb"[^\n\r0-9A-Za-z._\-]", decode_percent=True)
    kept = [b'1.2.3.4 "GET /f?u=http%3A%2F%2F169.254.169.254%2F HTTP/1.1"',
            b'1.2.3.4 "GET /f?u=%252F2852039166 HTTP/1.1"',  # twice encoded, a numeric host behind the slash
            b'1.2.3.4 "GET /f?u=%2F2852039166',  # at the very end of the line
            b'1.2.3.4 "GET /f?u=%B969.254.169.254 HTTP/1.1"',  # Latin-1 superscript one folds to 1
            b'1.2.3.4 "GET /f?u=%EF%BC%91%EF%BC%96%EF%BC%99.254.169.254 HTTP/1.1"',
            b'1.2.3.4 "GET /f?u=%0A2852039166 HTTP/1.1"',  # an encoded newline is a word break
            b'1.2.3.4 "GET /f?u=%2525252541 HTTP/1.1"']  # still escaped after the rounds the detections decode
    cleared = [b'1.2.3.4 "GET /search?q=100%25+cotton%20shirts HTTP/1.1"',
               b'1.2.3.4 "GET /img/%E2%9C%93.png HTTP/1.1" 200 2326 "-" "Chrome/131.0.6778.81"']
    for line in kept:
        assert prefilter.plan(line + b"\n").spans, line
    for line in cleared:
        assert not prefilter.plan(line + b"\n").spans, line


def _generated(tmp_path: Path, size: str, ratio: int) -> Path:
    out = tmp_path / "access.log"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_weblogs.py"), "--size", size, "--out", str(out),
                    "--ratio", str(ratio), "--generate-only"], check=True, capture_output=True)
    return out


def test_scan_with_and_without_prefilter_is_identical(tmp_path: Path) -> None:
    data = _generated(tmp_path, "3MB", 300)
    options: dict[str, object] = {"min_severity": Severity.INFORMATIONAL}
    fast = scan([str(data)], ScanOptions(**options))  # type: ignore[arg-type]
    slow = scan([str(data)], ScanOptions(prefilter=False, **options))  # type: ignore[arg-type]
    assert [a.as_dict() for a in fast.alerts] == [a.as_dict() for a in slow.alerts]
    planted = json.loads(Path(str(data) + ".labels.json").read_text())["planted"]
    assert sorted(alert.source.line for alert in fast.alerts) == planted  # every planted attempt, nothing else
    assert fast.summary.records == slow.summary.records
    assert fast.summary.prefiltered > fast.summary.records * 0.99


def test_background_is_almost_entirely_cleared(tmp_path: Path) -> None:
    data = _generated(tmp_path, "2MB", 10**9).read_bytes()
    prefilter_pair: tuple[Prefilter, Prefilter] = (for_adapter(CUSTOM), for_adapter(CUSTOM, use_hyperscan=False))
    lines = data.count(b"\n")
    for prefilter in prefilter_pair:
        selected = len(prefilter.plan(data).spans)
        assert selected < lines * 0.001, (prefilter.engine, selected, lines)


def test_python_engine_plans_like_hyperscan(tmp_path: Path) -> None:
    data = _generated(tmp_path, "1MB", 50).read_bytes()
    fast, python = PREFILTERS["access"]
    if fast.engine == "hyperscan":
        assert fast.plan(data) == python.plan(data)


_: Callable[..., object] = _in_url  # re-exported helper used above
