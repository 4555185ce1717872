"""DNS rule: queries for metadata names, for wildcard or rebinding names embedding a metadata address, and
(when the log has the answers) ordinary names that resolve to a metadata address."""

from __future__ import annotations

from ..knowledge.hosts import MetadataHit, metadata_host
from ..model import Endpoint, Event, Severity
from .endpoint import describe_hit
from .findings import Finding
from .network import address_field_hit
from .rules import DNS_QUERY

_REVERSE_ZONES = (".in-addr.arpa", ".ip6.arpa")


def detect_dns(event: Event) -> list[Finding]:
    """Findings for one DNS query record."""
    if not event.dns_query:
        return []
    hit = metadata_host(event.dns_query)
    if hit is not None and hit.via in ("wildcard-dns", "rebinding-dns"):
        endpoint = Endpoint(hit.provider, event.dns_query, hit.canonical, None, "", "unknown")
        reasons = [describe_hit(hit), "a name that resolves to a metadata address: SSRF filter evasion"]
        return [Finding(DNS_QUERY, Severity.HIGH, endpoint, reasons + _client(event))]
    if hit is not None:
        endpoint = Endpoint(hit.provider, event.dns_query, hit.canonical, None, "", "unknown")
        reasons = [describe_hit(hit), "resolving the provider's metadata name is routine on that cloud"]
        return [Finding(DNS_QUERY, Severity.INFORMATIONAL, endpoint, reasons + _client(event))]
    answered = _metadata_answer(event)
    if answered is None:
        return []
    answer, answer_hit = answered
    endpoint = Endpoint(answer_hit.provider, event.dns_query, answer_hit.canonical, None, "", "unknown")
    reasons = [f"{event.dns_query!r} resolved to {answer!r}, a metadata address",
               "an ordinary name that answers with a metadata address: DNS rebinding or a redirector aimed "
               "past SSRF filters"]
    return [Finding(DNS_QUERY, Severity.HIGH, endpoint, reasons + _client(event))]


def _metadata_answer(event: Event) -> tuple[str, MetadataHit] | None:
    """The first answer that is a metadata address (reverse lookups of the address are not)."""
    if event.dns_query.lower().rstrip(".").endswith(_REVERSE_ZONES):
        return None
    for answer in event.dns_answers:
        hit = address_field_hit(answer, None)
        if hit is not None:
            return answer, hit
    return None


def _client(event: Event) -> list[str]:
    return [f"queried by {event.client_ip}"] if event.client_ip else []
