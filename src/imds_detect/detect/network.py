"""Network rule: a connection to a metadata endpoint."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from ..knowledge.hosts import CanonicalHost, MetadataHit, canonical_host, match_host, metadata_host
from ..knowledge.indicators import could_mention_metadata
from ..knowledge.urls import find_metadata_references
from ..model import Event
from .endpoint import build_endpoint
from .findings import Finding
from .rules import NETWORK_CONNECTION

# Connections that the host did not initiate: a listener or an accepted inbound connection is not access.
NOT_OUTBOUND = frozenset({"listeningconnectioncreated", "inboundconnectionaccepted", "inboundinternetscanfailed"})


def address_field_host(text: str) -> CanonicalHost | None:
    """A machine-written address field (RemoteIP, DestinationIp), parsed strictly.

    Sensors write addresses in standard notation; the only variation they produce is IPv4-mapped or
    -compatible IPv6, which is unwrapped. Free text and URLs go through the full canonicaliser instead.
    """
    text = text.strip().strip("[]")
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        host = canonical_host(text)  # some exports put a host name in the address column
        return host if host is not None and host.kind == "name" else None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address)) if 0xFFFF < int(address) < 1 << 32 else None)
        if embedded is not None:
            return CanonicalHost("ipv4", str(embedded), ("ipv4-mapped" if address.ipv4_mapped else "ipv4-compatible",))
        return CanonicalHost("ipv6", address.compressed)
    return CanonicalHost("ipv4", str(address))


@lru_cache(maxsize=8192)
def address_field_hit(text: str, port: int | None) -> MetadataHit | None:
    """The metadata service an address field (parsed strictly, see address_field_host) names on `port`.

    Remembered (a pure function of the knowledge base; the result is frozen): the same agents reach the same
    addresses row after row."""
    host = address_field_host(text)
    return match_host(host, port) if host is not None else None


def _remote_hit(event: Event) -> tuple[MetadataHit, str] | None:
    if event.remote_ip:
        hit = address_field_hit(event.remote_ip, event.remote_port)
        if hit is not None:
            return hit, event.remote_ip
    if event.remote_url and could_mention_metadata(event.remote_url):
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
