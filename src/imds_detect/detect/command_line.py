"""Process rules: a command line that fetches from a metadata endpoint, or names a metadata-only path."""

from __future__ import annotations

import re
from bisect import bisect_left

from .. import limits as _limits
from ..knowledge.agents import NON_FETCHING_TOOLS
from ..knowledge.endpoints import METADATA_HEADERS
from ..knowledge.indicators import could_mention_metadata
from ..knowledge.paths import CREDENTIAL_VARIABLES, classify_path, percent_decode, specific_markers
from ..knowledge.urls import find_metadata_references
from ..model import Endpoint, Event, ProcessInfo, Severity
from .endpoint import build_endpoint
from .findings import Finding
from .identity import tool_name
from .rules import COMMAND_LINE, HIDDEN_HOST

_MARKERS = specific_markers()
_PATH_END = re.compile(r"[\s\"'`<>|;,)\]}]")
_WORD_BREAKS = frozenset(" \t\r\n\"'`<>|;,()[]{}")
_VARIABLE = re.compile(
    r"(?:\$\{?|%|\$env:|environ\[['\"]|getenv\(['\"])(" + "|".join(CREDENTIAL_VARIABLES) + r")\b",
    re.IGNORECASE,
)


_WORD_BREAK = re.compile("[" + re.escape("".join(sorted(_WORD_BREAKS))) + "]")


class _PathStarts:
    """Whether a marker at a position begins a request path rather than sitting inside an ordinary one.

    It does when it starts its word, follows a URL authority (`http://$IMDS/...`, `redirector/...`), or
    is a parameter value (`?path=/latest/...`); `http://shop/api/metadata/instance/42` is the shop's own.

    Linear over all the markers of a text: the word breaks are found once (one regex pass) and each word's
    first '://' and first '/' once. (Walking back from every marker to its word's start was quadratic on one
    long word full of markers: paths end at any white space, words only at ASCII blanks.)
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.breaks: list[int] | None = None
        self.words: dict[int, tuple[int, int, int]] = {}  # word start -> first '://', first '/', first '/' after it

    def __call__(self, position: int) -> bool:
        text = self.text
        if self.breaks is None:
            self.breaks = [match.start() for match in _WORD_BREAK.finditer(text)]
        index = bisect_left(self.breaks, position)
        start = self.breaks[index - 1] + 1 if index else 0
        known = self.words.get(start)
        if known is None:
            end = self.breaks[index] if index < len(self.breaks) else len(text)
            scheme = text.find("://", start, end)
            known = self.words[start] = (scheme, text.find("/", start, end),
                                         text.find("/", scheme + 3, end) if scheme != -1 else -1)
        scheme, slash, slash_after_scheme = known
        base = start
        if scheme != -1 and scheme + 3 <= position:  # the prefix holds a '://': what follows it counts
            base, slash = scheme + 3, slash_after_scheme
        return base == position or text[position - 1] in "=?&" or slash == -1 or slash >= position


def marker_paths(text: str) -> list[str]:
    """Metadata-specific paths that begin a request path anywhere in the (decoded, lower-cased) text."""
    lowered = percent_decode(text).lower().replace("\\", "/")
    starts_a_path = _PathStarts(lowered)
    paths: list[str] = []
    for marker in _MARKERS:
        start = lowered.find(marker)
        while start != -1 and len(paths) < 16:
            end_match = _PATH_END.search(lowered, start)
            end = end_match.start() if end_match else len(lowered)
            if starts_a_path(start):
                paths.append(lowered[start:end])
            start = lowered.find(marker, end)
    return paths


def _headers(text: str) -> list[str]:
    lowered = text.lower()
    return [f"metadata header {header!r} ({provider})" for header, provider in METADATA_HEADERS.items()
            if header in lowered]


def is_non_fetching(process: ProcessInfo) -> bool:
    """Whether the process is a tool that only mentions URLs (grep, cat, editors, package managers)."""
    return tool_name(process.name or process.path) in NON_FETCHING_TOOLS


def detect_command_line(event: Event) -> list[Finding]:
    """The most severe finding for one command line, with every reference listed in the reasons."""
    text = _limits.cut_text(event.process.command_line, "command line")
    if not text or is_non_fetching(event.process) or not could_mention_metadata(text):
        return []
    host_findings: list[Finding] = []
    for ref, hit in find_metadata_references(text):
        path = ref.path or best_marker_path(text)
        endpoint, severity, reasons = build_endpoint(hit, ref.raw, ref.port, path, event.process)
        reasons.insert(0, f"{ref.form} reference {ref.raw!r}")
        host_findings.append(Finding(COMMAND_LINE, severity, endpoint, reasons))
    hidden = _hidden_host_findings(text, event.process)
    if not host_findings and not hidden:
        return []
    best = max(host_findings or hidden, key=lambda finding: finding.severity)
    if host_findings and hidden:
        strongest = max(hidden, key=lambda finding: finding.severity)
        if strongest.severity > best.severity:
            best.severity = strongest.severity
            best.endpoint.path_class = strongest.endpoint.path_class
            best.reasons.extend(strongest.reasons)
    for other in host_findings or hidden:
        if other is not best:
            best.reasons.append(f"also: {other.endpoint.raw} ({other.endpoint.path_class})")
    best.reasons.extend(_headers(text))
    return [best]


def best_marker_path(text: str) -> str:
    ranked = [(rule.severity, path) for path in marker_paths(text) if (rule := classify_path(path))]
    return max(ranked)[1] if ranked else ""


def _hidden_host_findings(text: str, process: ProcessInfo) -> list[Finding]:
    findings: list[Finding] = []
    for path in marker_paths(text):
        rule = classify_path(path)
        if rule is None:
            continue
        endpoint = Endpoint(rule.provider, path, "", None, path, rule.path_class)
        reasons = [f"metadata-specific path {path!r} with the host hidden",
                   f"path class {rule.path_class}: {rule.description} ({rule.id})"]
        findings.append(Finding(HIDDEN_HOST, rule.severity, endpoint, reasons))
    for match in _VARIABLE.finditer(text):
        provider, path_class = CREDENTIAL_VARIABLES[match.group(1).lower()]
        endpoint = Endpoint(provider, match.group(0), "", None, "", path_class)
        severity = Severity.HIGH if path_class in ("credential", "token") else Severity.MEDIUM
        reasons = [f"credential endpoint variable {match.group(1)} expanded in a command"]
        findings.append(Finding(HIDDEN_HOST, severity, endpoint, reasons))
    return findings
