"""Network rule: a connection to a metadata endpoint."""

from __future__ import annotations

from ..knowledge.hosts import MetadataHit, metadata_host
from ..knowledge.urls import find_metadata_references
from ..model import Event
from .endpoint import build_endpoint
from .findings import Finding
from .rules import NETWORK_CONNECTION

# Connections that the host did not initiate: a listener or an accepted inbound connection is not access.
NOT_OUTBOUND = frozenset({"listeningconnectioncreated", "inboundconnectionaccepted", "inboundinternetscanfailed"})


def _remote_hit(event: Event) -> tuple[MetadataHit, str] | None:
    if event.remote_ip:
        hit = metadata_host(event.remote_ip, event.remote_port)
        if hit is not None:
            return hit, event.remote_ip
    if event.remote_url:
        hit = metadata_host(event.remote_url, event.remote_port)
        if hit is not None:
            return hit, event.remote_url
        for ref, url_hit in find_metadata_references(event.remote_url):
            return url_hit, ref.raw
    return None


def detect_network(event: Event) -> list[Finding]:
    """Findings for one network event."""
    if event.action.lower() in NOT_OUTBOUND:
        return []
    found = _remote_hit(event)
    if found is None:
        return []
    hit, raw = found
    endpoint, severity, reasons = build_endpoint(hit, raw, event.remote_port, "", event.process)
    if event.action:
        reasons.append(f"action {event.action}")
    if event.action.lower() == "connectionfailed":
        reasons.append("connection failed: an attempt is still access intent")
    return [Finding(NETWORK_CONNECTION, severity, endpoint, reasons)]
