"""The HTTP and DNS rules on web, proxy and network records: SSRF attempts, outbound requests, DNS answers, the
neighbours that never alert, response outcomes; Defender's inspected rows go through the same rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from imds_detect.detect.allowlist import Allowlist, default_entries
from imds_detect.detect.detector import Detector
from imds_detect.detect.outcome import judge_response
from imds_detect.model import INBOUND, OUTBOUND, Alert, Event, EventKind, Severity, SourceRef
from imds_detect.sources.mde import MDE_ADAPTER

WHEN = datetime(2026, 11, 27, 8, tzinfo=UTC)
DETECTOR = Detector(Allowlist(default_entries()))


def inbound(target: str, host: str = "shop.example", body: str = "", status: int | None = 200,
            size: int | None = 1400, agent: str = "curl/8.5.0", upstream: str = "") -> Event:
    return Event(EventKind.HTTP, WHEN, SourceRef("access", "a.log", 1, 0), http_method="GET", http_host=host,
                 http_uri=target, user_agent=agent, client_ip="203.0.113.9", direction=INBOUND, http_status=status,
                 response_bytes=size, http_body=body, remote_ip=upstream)


def outbound(host: str, target: str, method: str = "GET", agent: str = "curl/8.5.0", remote: str = "",
             port: int | None = None) -> Event:
    return Event(EventKind.HTTP, WHEN, SourceRef("squid", "s.log", 1, 0), host="10.0.0.5", http_method=method,
                 http_host=host, http_uri=target, user_agent=agent, client_ip="10.0.0.5", direction=OUTBOUND,
                 http_status=200, response_bytes=56, remote_ip=remote, remote_port=port)


def alerts(event: Event) -> list[Alert]:
    return DETECTOR.run(event).alerts


def one(event: Event) -> Alert:
    found = alerts(event)
    assert len(found) == 1, [a.reasons for a in found]
    return found[0]


@pytest.mark.parametrize(("event", "path_class", "severity"), [
    (inbound("/fetch?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/r"), "credential", "high"),
    (inbound("/proxy/0xa9fea9fe/latest/user-data"), "userdata", "high"),
    (inbound("/x#http://[::ffff:a9fe:a9fe]/computeMetadata/v1/instance/service-accounts/default/token"), "token",
     "high"),
    (inbound("/fetch?url=gopher://169.254.169.254:80/_GET%20/latest/meta-data/iam/security-credentials/r"),
     "credential", "high"),
    (inbound("/latest/meta-data/iam/security-credentials/", host="169.254.169.254"), "identity", "medium"),
    (inbound("/api/preview", body='{"u":"http://metadata.google.internal/computeMetadata/v1/?recursive=true"}'),
     "userdata", "high"),
    (inbound("/render?path=/latest/user-data"), "userdata", "high"),
    (inbound("/latest/api/token"), "metadata", "medium"),
    (inbound("/api/fetch", upstream="169.254.169.254"), "metadata", "low"),
    (outbound("169.254.169.254", "/latest/api/token", method="PUT"), "metadata", "medium"),
    (outbound("", "/v2/credentials/0123456789abcdef", remote="169.254.170.2", port=80), "credential", "high"),
])
def test_requests_naming_the_metadata_service_alert_by_path_class(event: Event, path_class: str,
                                                                 severity: str) -> None:
    alert = one(event)
    assert (alert.rule_id, alert.endpoint.path_class, alert.severity.label) == ("imds-http-request", path_class,
                                                                                severity)
    assert alert.request is not None and alert.request.client == event.client_ip


@pytest.mark.parametrize("event", [
    inbound("/fetch?url=http://169.254.169.254:53/"),
    inbound("/fetch?url=http://169.254.169.254:123/"),
    inbound("/fetch?url=http://169.254.169.253/latest/meta-data/"),
    inbound("/fetch?url=http://169.254.169.123/"),
    inbound("/fetch?url=http://168.63.129.16/machine?comp=goalstate"),
    inbound("/fetch?url=http://[fd00:ec2::253]/"),
    inbound("/", host="169.254.169.254:53"),
    outbound("168.63.129.16", "/machine/?comp=goalstate"),
    outbound("", "/", remote="169.254.169.254", port=123),
    inbound("/api/metadata/instance/42"),
    inbound("/docs/openstack/latest/install.html"),
    inbound("/search?q=metadata+google+internal"),
])
def test_neighbours_and_lookalikes_never_alert(event: Event) -> None:
    assert alerts(event) == []


def test_ssrf_reasons_say_what_and_where() -> None:
    alert = one(inbound("/fetch?url=http%3A%2F%2F2852039166%2Flatest%2Fuser-data"))
    assert alert.reasons[0].startswith("SSRF attempt: metadata URL") and "inside the request target" in alert.reasons[0]
    assert "via integer" in alert.reasons[1]
    assert "client 203.0.113.9" in alert.reasons
    assert alert.endpoint.raw.startswith("http%3A%2F%2F2852039166")
    host_trick = one(inbound("/latest/user-data", host="0251.0376.0251.0376"))
    assert "asks the server for host '0251.0376.0251.0376'" in host_trick.reasons[0]
    both = one(inbound("/f?a=http://169.254.169.254/&b=http://169.254.169.254/latest/user-data"))
    assert both.endpoint.path_class == "userdata" and any(r.startswith("also: ") for r in both.reasons)


def test_an_agent_user_agent_excuses_nothing_inbound_and_is_informational_outbound() -> None:
    spoofed = one(inbound("/fetch?url=http://169.254.169.254/latest/user-data", agent="WALinuxAgent/2.9.1.1"))
    assert spoofed.severity == Severity.HIGH
    agent = one(outbound("169.254.169.254", "/metadata/instance", agent="WALinuxAgent/2.9.1.1"))
    assert agent.severity == Severity.INFORMATIONAL


def test_outbound_imds_shapes_are_named() -> None:
    token = one(outbound("169.254.169.254", "/latest/api/token", method="PUT"))
    assert any("IMDSv2 session token request" in reason for reason in token.reasons)
    read = one(outbound("169.254.169.254", "/latest/meta-data/iam/security-credentials/web"))
    assert any("IMDSv1 unless a token PUT came first" in reason for reason in read.reasons)
    assert "by 10.0.0.5" in read.reasons[0]


@pytest.mark.parametrize(("status", "size", "path_class", "outcome"), [
    (200, 1400, "credential", "likely-success"),
    (200, 0, "credential", "unclear"),
    (200, 90000, "token", "unclear"),
    (200, 12, "identity", "likely-success"),
    (301, 0, "credential", "redirected"),
    (403, 153, "credential", "failed"),
    (502, 0, "userdata", "failed"),
    (200, None, "credential", "unclear"),
    (None, None, "credential", ""),
])
def test_response_outcome(status: int | None, size: int | None, path_class: str, outcome: str) -> None:
    assert judge_response(status, size, path_class)[0] == outcome


def test_blocking_actions_are_failures_whatever_the_status() -> None:
    assert judge_response(200, 1400, "credential", "Blocked")[0] == "failed"
    assert judge_response(403, 3900, "token", "TCP_DENIED/HIER_NONE")[0] == "failed"
    assert judge_response(200, 1400, "credential", "Matched")[0] == "likely-success"


def _dns(query: str, answers: tuple[str, ...] = ()) -> Event:
    return Event(EventKind.DNS, WHEN, SourceRef("zeek", "d.log", 1, 0), host="10.0.0.5", dns_query=query,
                 dns_answers=answers, client_ip="10.0.0.5", remote_ip="169.254.169.254", remote_port=53)


@pytest.mark.parametrize(("query", "answers", "severity"), [
    ("metadata.google.internal", ("169.254.169.254",), "informational"),
    ("a9fea9fe.nip.io", (), "high"),
    ("7f000001.a9fea9fe.rbndr.us", ("127.0.0.1",), "high"),
    ("rebind.attacker.example", ("203.0.113.1", "169.254.169.254"), "high"),
    ("cname.attacker.example", ("metadata.google.internal",), "high"),
    ("www.example.com", ("93.184.215.14",), None),
    ("254.169.254.169.in-addr.arpa", ("metadata.google.internal",), None),
    ("ntp.example.com", ("169.254.169.123",), None),
])
def test_dns_queries_and_answers(query: str, answers: tuple[str, ...], severity: str | None) -> None:
    found = alerts(_dns(query, answers))
    assert [a.severity.label for a in found] == ([severity] if severity else [])
    if found:
        assert found[0].rule_id == "imds-dns-query" and "queried by 10.0.0.5" in found[0].reasons


def _defender(action: str, fields: dict[str, str]) -> Event:
    row = {"Timestamp": "2026-11-27T08:00:00Z", "DeviceName": "web-1", "ActionType": action, "RemoteIP": "10.1.2.3",
           "RemotePort": 80, "AdditionalFields": json.dumps(fields)}
    event = MDE_ADAPTER.parse_line(json.dumps(row).encode(), "t", 1, 0, lambda skip: None)
    assert event is not None
    return event


def test_defender_inspected_rows_use_the_same_detections() -> None:
    ssrf = one(_defender("HttpConnectionInspected", {"uri": "/fetch?url=http://0251.0376.0251.0376/latest/user-data",
                                                      "host": "shop.example", "method": "GET"}))
    assert (ssrf.endpoint.canonical, ssrf.endpoint.path_class, ssrf.severity.label) == (
        "169.254.169.254", "userdata", "high")
    assert ssrf.request is None  # Defender rows carry no client or response: the JSON output is unchanged
    direct = one(_defender("HttpConnectionInspected", {"uri": "/latest/api/token", "host": "[::ffff:a9fe:a9fe]",
                                                        "method": "PUT"}))
    assert any("IMDSv2 session token request" in reason for reason in direct.reasons)
    dns = one(_defender("DnsConnectionInspected", {"query": "169-254-169-254.sslip.io"}))
    assert (dns.rule_id, dns.severity.label) == ("imds-dns-query", "high")
    assert alerts(_defender("DnsConnectionInspected", {"query": "www.example.com"})) == []
