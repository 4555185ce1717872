"""Turning a metadata hit (host) plus a path into an alert endpoint with class and severity."""

from __future__ import annotations

from ..knowledge.endpoints import MULTI_CLOUD
from ..knowledge.hosts import MetadataHit
from ..knowledge.paths import PathRule, classify_path
from ..model import Endpoint, ProcessInfo, Severity
from .severity import severity_for


def describe_hit(hit: MetadataHit) -> str:
    """A short reason for how the host was recognised."""
    how = f" via {', '.join(hit.notes)}" if hit.notes else ""
    return f"host is {hit.canonical} ({hit.provider}, matched by {hit.via}{how})"


def build_endpoint(
    hit: MetadataHit, raw: str, port: int | None, path: str, process: ProcessInfo
) -> tuple[Endpoint, Severity, list[str]]:
    """The endpoint, its severity and reasons for a request of `path` to a recognised metadata host."""
    hint = None if hit.provider == MULTI_CLOUD else hit.provider
    rule: PathRule | None = classify_path(path, hint) if path else None
    path_class, severity, why = severity_for(rule, path, process)
    provider = hit.provider if hit.provider != MULTI_CLOUD or rule is None else rule.provider
    endpoint = Endpoint(provider, raw, hit.canonical, port, path, path_class)
    return endpoint, severity, [describe_hit(hit), why]
