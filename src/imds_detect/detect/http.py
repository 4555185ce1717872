"""HTTP rule: a request to a metadata endpoint, or one carrying a metadata URL or path (SSRF).

One record can name the metadata service several ways; each is a candidate finding and the most severe
one is reported, the others listed in its reasons:

- the request's destination: its Host header or absolute-form target (any spelling), or the address it
  went to (an address field, read strictly);
- metadata URLs and hosts inside the request target or body (query parameters, path segments such as
  `/proxy/169.254.169.254/...`, fragments, userinfo tricks), decoded repeatedly and canonicalised;
- a metadata-specific path with the host hidden: the target itself (`GET /latest/meta-data/...` asked of a
  web server, probing for a forwarding proxy) or a parameter value (`?path=/latest/user-data`).

A request a web server received (INBOUND) is an SSRF attempt against that server; otherwise the record is
a request on its way to the metadata service, attributed to its client.
"""

from __future__ import annotations

from .. import limits as _limits
from ..knowledge.agents import AGENT_USER_AGENTS
from ..knowledge.endpoints import neighbour_of
from ..knowledge.hosts import metadata_host, split_host_port
from ..knowledge.indicators import could_mention_metadata
from ..knowledge.paths import PathRule, classify_path
from ..knowledge.urls import HostReference, extract_host_references, find_metadata_references
from ..model import INBOUND, Endpoint, Event, Severity
from .command_line import best_marker_path, marker_paths
from .endpoint import build_endpoint
from .findings import Finding
from .network import address_field_hit
from .rules import HTTP_REQUEST

MAX_REFERENCES = 16  # per text: enough to pick the most severe, bounded for hostile records
_PATH_STOP = frozenset(" \t\r\n\"'<>?#&;,|")


def _claimed_agent(user_agent: str) -> str | None:
    lowered = user_agent.lower()
    return next((agent for prefix, agent in AGENT_USER_AGENTS.items() if lowered.startswith(prefix)), None)


def detect_http(event: Event) -> list[Finding]:
    """The most severe finding for one HTTP request record, with the other candidates in its reasons."""
    destination = _destination(event)
    candidates = [destination] if destination else []
    candidates += _embedded(event, event.http_uri, "target")
    if event.http_body:
        candidates += _embedded(event, event.http_body, "body")
    if not candidates:
        candidates += _hidden_paths(event)
    if not candidates:
        return []
    best = max(candidates, key=lambda finding: finding.severity)  # the first of the most severe
    for other in candidates:
        if other is not best:
            best.reasons.append(f"also: {other.endpoint.raw} ({other.endpoint.path_class})")
    _describe_request(event, best)
    agent = _claimed_agent(event.user_agent)
    if agent and best is destination and event.direction != INBOUND:
        best.severity = Severity.INFORMATIONAL
        best.reasons.append(
            f"user agent claims {agent} ({event.user_agent!r}); HTTP records carry no process identity, "
            "so it is reported as informational, not suppressed")
    return [best]


def _destination(event: Event) -> Finding | None:
    """The request went to (or asked a server for) a metadata endpoint."""
    hit, raw, port = None, event.http_host, None
    if event.http_host:  # a Host header or absolute URL, any spelling; its own port, else the connection's
        split = split_host_port(event.http_host.strip(), allow_empty_port=False)
        port = split[1] if split is not None and split[1] is not None else (
            None if event.direction == INBOUND else event.remote_port)
        hit = metadata_host(event.http_host, port)
    if hit is None and event.remote_ip:  # an address field: strict, as the network rule and the prefilter
        raw, port = event.remote_ip, event.remote_port
        hit = address_field_hit(raw, port)
    if hit is None:
        return None
    endpoint, severity, reasons = build_endpoint(hit, raw, port, event.http_uri, event.process)
    if event.direction == INBOUND and raw == event.remote_ip:
        reasons.insert(0, f"SSRF: the server passed this request on to {raw!r}, a metadata endpoint (its logged "
                          "upstream): the request reached the metadata service")
    elif event.direction == INBOUND:
        reasons.insert(0, f"SSRF attempt: the request asks the server for host {raw!r} (Host header or absolute "
                          "URL); a server that routes or proxies by it fetches the metadata service")
    else:
        via = f" to {event.remote_ip}" if event.remote_ip and raw != event.remote_ip else ""
        reasons.insert(0, f"request for a metadata endpoint{via}" + _by_client(event))
    return Finding(HTTP_REQUEST, severity, endpoint, reasons)


def _embedded(event: Event, text: str, where: str) -> list[Finding]:
    """Metadata URLs and hosts inside the request target or body."""
    text = _limits.cut_text(text, f"request {where}")
    if not text or not could_mention_metadata(text):
        return []
    findings = []
    for ref, hit in find_metadata_references(text)[:MAX_REFERENCES]:
        path = _reference_path(text, ref)
        endpoint, severity, reasons = build_endpoint(hit, ref.raw, ref.port, path, event.process)
        lead = "SSRF attempt: " if event.direction == INBOUND else ""
        target = f" sent to {event.remote_ip}" if event.remote_ip and event.direction != INBOUND else ""
        reasons.insert(0, f"{lead}metadata {'URL' if ref.form == 'url' else 'host'} {ref.raw!r} inside the request "
                          f"{where} ({ref.form}){target}{_by_client(event)}")
        findings.append(Finding(HTTP_REQUEST, severity, endpoint, reasons))
    return findings


def _reference_path(text: str, ref: HostReference) -> str:
    """The metadata path a reference asks for: its URL path, the path segments after a bare host
    (`/proxy/169.254.169.254/latest/...`), or a metadata path inside either (a `gopher://` payload)."""
    path = ref.path
    start = ref.end + 1 if text[ref.end:ref.end + 1] == "." else ref.end  # a trailing dot ends the host
    if not path and text[start:start + 1] in ("/", "\\"):
        end = start
        while end < len(text) and text[end] not in _PATH_STOP:
            end += 1
        path = text[start:end]
    if path and classify_path(path) is None:
        inner = best_marker_path(path)
        return inner or path
    return path


def _hidden_paths(event: Event) -> list[Finding]:
    """Metadata-specific paths with no metadata host in sight."""
    host = event.http_host or event.remote_ip
    own = classify_path(event.http_uri) if event.http_uri else None
    if own is not None and own.marker:  # the target itself is a metadata path
        if event.direction == INBOUND:
            lead = ("metadata-specific path asked of the web server itself: a probe for a proxy or route that "
                    "forwards to the metadata service")
        else:
            lead = f"metadata-specific path requested from {host or 'an unknown host'}{_by_client(event)}"
        return [_path_finding(event, own, event.http_uri, host, lead)]
    findings = []
    for text, where in ((event.http_uri, "target"), (event.http_body, "body")):
        text = text[:_limits.active().max_text_chars]  # (a longer field was counted by _embedded)
        if not text or not could_mention_metadata(text) or _names_a_neighbour(text):
            continue
        for path in dict.fromkeys(marker_paths(text)[:MAX_REFERENCES]):
            rule = classify_path(path)
            if rule is not None and rule.marker:
                lead = (f"{'SSRF attempt: ' if event.direction == INBOUND else ''}metadata-specific path {path!r} "
                        f"inside the request {where}, host hidden{_by_client(event)}")
                findings.append(_path_finding(event, rule, path, host, lead))
    return findings


def _names_a_neighbour(text: str) -> bool:
    """Whether the text sends its request to a metadata neighbour (AWS resolver or time, Azure WireServer, GCP
    DNS/NTP): a metadata path requested there is not a hidden metadata host."""
    return any(ref.host.kind != "name" and neighbour_of(ref.host.value, ref.port) is not None
               for ref in extract_host_references(text))


def _path_finding(event: Event, rule: PathRule, path: str, host: str, lead: str) -> Finding:
    endpoint = Endpoint(rule.provider, host or path, "", event.remote_port, path, rule.path_class)
    return Finding(HTTP_REQUEST, rule.severity, endpoint,
                   [lead, f"path class {rule.path_class}: {rule.description} ({rule.id})"])


def _by_client(event: Event) -> str:
    return f" by {event.client_ip}" if event.client_ip and event.direction != INBOUND else ""


def _describe_request(event: Event, finding: Finding) -> None:
    """Method, the IMDSv1/IMDSv2 shape of an AWS request, and the client of an SSRF attempt."""
    if event.http_method:
        finding.reasons.append(f"method {event.http_method}")
    if event.direction == INBOUND and event.client_ip:
        finding.reasons.append(f"client {event.client_ip}")
    path_class, provider = finding.endpoint.path_class, finding.endpoint.provider
    if provider.startswith("aws") or provider == "multi-cloud":
        if event.http_method.upper() == "PUT" and "/latest/api/token" in finding.endpoint.path:
            finding.reasons.append("IMDSv2 session token request (PUT): the first step of an IMDSv2 credential read")
        elif event.http_method.upper() == "GET" and path_class == "credential" and event.direction != INBOUND:
            finding.reasons.append("GET of a credential path: IMDSv1 unless a token PUT came first "
                                   "(the IMDSv2 token header is not logged)")
