"""DNS rule: queries for metadata names, and for wildcard or rebinding names embedding a metadata address."""

from __future__ import annotations

from ..knowledge.hosts import metadata_host
from ..model import Endpoint, Event, Severity
from .endpoint import describe_hit
from .findings import Finding
from .rules import DNS_QUERY


def detect_dns(event: Event) -> list[Finding]:
    """Findings for one DNS query record."""
    if not event.dns_query:
        return []
    hit = metadata_host(event.dns_query)
    if hit is None:
        return []
    endpoint = Endpoint(hit.provider, event.dns_query, hit.canonical, None, "", "unknown")
    if hit.via in ("wildcard-dns", "rebinding-dns"):
        reasons = [describe_hit(hit), "a name that resolves to a metadata address: SSRF filter evasion"]
        return [Finding(DNS_QUERY, Severity.HIGH, endpoint, reasons)]
    reasons = [describe_hit(hit), "resolving the provider's metadata name is routine on that cloud"]
    return [Finding(DNS_QUERY, Severity.INFORMATIONAL, endpoint, reasons)]
