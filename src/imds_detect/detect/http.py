"""HTTP rule: an inspected HTTP request to a metadata endpoint, or carrying a metadata URL."""

from __future__ import annotations

from ..knowledge.agents import AGENT_USER_AGENTS
from ..knowledge.hosts import metadata_host
from ..knowledge.indicators import could_mention_metadata
from ..knowledge.paths import classify_path
from ..knowledge.urls import find_metadata_references
from ..model import Endpoint, Event, Severity
from .endpoint import build_endpoint
from .findings import Finding
from .network import address_field_hit
from .rules import HTTP_REQUEST


def _claimed_agent(user_agent: str) -> str | None:
    lowered = user_agent.lower()
    return next((agent for prefix, agent in AGENT_USER_AGENTS.items() if lowered.startswith(prefix)), None)


def detect_http(event: Event) -> list[Finding]:
    """Findings for one HTTP request record."""
    host = event.http_host or event.remote_ip
    port = event.remote_port
    finding: Finding | None = None
    hit = metadata_host(event.http_host, port) if event.http_host else None  # a Host header: any spelling
    if hit is None and event.remote_ip:  # an address field: strict, as the network rule and the prefilter
        hit = address_field_hit(event.remote_ip, port)
    if hit is not None:
        endpoint, severity, reasons = build_endpoint(hit, host, port, event.http_uri, event.process)
        finding = Finding(HTTP_REQUEST, severity, endpoint, reasons)
    elif could_mention_metadata(event.http_uri):
        for ref, embedded in find_metadata_references(event.http_uri):
            endpoint, severity, reasons = build_endpoint(embedded, ref.raw, ref.port, ref.path, event.process)
            reasons.insert(0, f"metadata URL embedded in the request URI ({ref.form})")
            finding = Finding(HTTP_REQUEST, severity, endpoint, reasons)
            break
    if finding is None:
        rule = classify_path(event.http_uri) if event.http_uri else None
        if rule is None or not rule.marker:
            return []
        endpoint = Endpoint(rule.provider, host, "", port, event.http_uri, rule.path_class)
        finding = Finding(HTTP_REQUEST, rule.severity, endpoint,
                          [f"metadata-specific path requested from {host or 'an unknown host'}",
                           f"path class {rule.path_class}: {rule.description} ({rule.id})"])
    if event.http_method:
        finding.reasons.append(f"method {event.http_method}")
    agent = _claimed_agent(event.user_agent)
    if agent:
        finding.severity = Severity.INFORMATIONAL
        finding.reasons.append(
            f"user agent claims {agent} ({event.user_agent!r}); HTTP records carry no process identity, "
            "so it is reported as informational, not suppressed")
    return [finding]
