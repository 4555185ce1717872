"""Probing: one client trying many spellings or metadata paths in a short time becomes one alert, not hundreds.

Applied when the scan finishes, to HTTP alerts that name their client (web, proxy and network logs). Per
client, in time order, a window opens at an alert and takes every later alert of that client within
`WINDOW`; a window of at least `MIN_ALERTS` alerts is replaced by one `imds-http-probing` alert that lists
the host spellings, paths and records it covers, and the next window opens after it. An alert that starts
no such window stays as it is.

Deterministic: groups and windows depend only on the alerts (ties broken by file and record), not on the
order in which files or worker processes produced them. Bounded (see imds_detect/limits.py): an aggregated
alert lists at most `max_probing_listed` spellings, paths and records, what it leaves out counted in it and
in the scan summary; at most `max_probing_clients` clients are folded (those with the most alerts, ties by
name), the alerts of the others stay as they are and the limit hit is counted and reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from .. import limits as _limits
from ..limits import Limits
from ..model import Alert, AlertGroup, RequestInfo, Severity, iso_utc
from .outcome import FAILED, LIKELY_SUCCESS, UNCLEAR
from .rules import HTTP_PROBING, HTTP_REQUEST

WINDOW = timedelta(minutes=10)
_LAST_WINDOW_START = datetime.max.replace(tzinfo=UTC) - WINDOW
MIN_ALERTS = 5
MAX_LISTED = Limits().max_probing_listed  # the default (the scan's limits decide)
MAX_ITEM_CHARS = 200
EVASION_SPELLINGS = 3  # this many host spellings from one client is filter evasion: at least medium


def _key(alert: Alert) -> tuple[float, str, int]:
    return alert.timestamp.timestamp(), alert.source.file, alert.source.record


def _client(alert: Alert) -> str:
    request = alert.request
    if alert.rule_id != HTTP_REQUEST.id or request is None or alert.suppressed_by is not None:
        return ""
    return request.client


def fold_probing(alerts: list[Alert], counts: Counter[str],
                 eligible: Callable[[datetime], bool] = lambda moment: True,
                 limits: Limits | None = None) -> list[Alert]:
    """`alerts` with every probing window replaced by one aggregated alert (at its first member's place).

    Only alerts for which `eligible(timestamp)` holds take part (the scan's time window); `counts` gets
    `groups`, `folded` and `not-listed` added (the summary's). `limits` bound the clients folded and the
    items listed (default: the active limits).
    """
    limits = limits or _limits.active()
    by_client: dict[str, list[Alert]] = {}
    position: dict[int, int] = {}
    for index, alert in enumerate(alerts):
        client = _client(alert)
        if client and eligible(alert.timestamp):
            by_client.setdefault(client, []).append(alert)
            position[id(alert)] = index
    if len(by_client) > limits.max_probing_clients:
        ranked = sorted(by_client, key=lambda client: (-len(by_client[client]), client))
        left = ranked[limits.max_probing_clients:]
        _limits.hit("max_probing_clients", len(left), detail=f"alerts of {len(left)} client(s) beyond the first "
                    f"{limits.max_probing_clients} (by alert count) are kept unfolded, e.g. {left[0]}")
        for client in left:
            del by_client[client]
    replaced: dict[int, Alert | None] = {}  # id(member) -> aggregated alert at the first member, None elsewhere
    for client in sorted(by_client):
        members = sorted(by_client[client], key=_key)
        start = 0
        while start < len(members):
            opens = members[start].timestamp
            # (an alert in the last minutes of the year 9999: its window runs to the end of time)
            limit = opens + WINDOW if opens <= _LAST_WINDOW_START else datetime.max.replace(tzinfo=opens.tzinfo)
            end = start
            while end < len(members) and members[end].timestamp <= limit:
                end += 1
            if end - start >= MIN_ALERTS:
                window = members[start:end]
                aggregated = aggregate(client, window, counts, limits.max_probing_listed)
                first = min(window, key=lambda alert: position[id(alert)])
                for member in window:
                    replaced[id(member)] = None
                replaced[id(first)] = aggregated
                start = end
            else:
                start += 1
    if not replaced:
        return alerts
    result: list[Alert] = []
    for alert in alerts:
        if id(alert) not in replaced:
            result.append(alert)
        elif (folded := replaced[id(alert)]) is not None:
            result.append(folded)
    return result


def _listed(values: Iterable[str], listed: int) -> tuple[list[str], int]:
    distinct = list(dict.fromkeys(value[:MAX_ITEM_CHARS] for value in values if value))
    return distinct[:listed], max(0, len(distinct) - listed)


def aggregate(client: str, window: list[Alert], counts: Counter[str], listed: int = MAX_LISTED) -> Alert:
    """One alert standing for `window` (alerts of one client, in time order), listing at most `listed` items
    of each kind."""
    best = max(window, key=lambda alert: alert.severity)
    spellings, more_spellings = _listed((alert.endpoint.raw for alert in window), listed)
    paths, more_paths = _listed((alert.endpoint.path for alert in window), listed)
    records = [alert.source for alert in window[:listed]]
    not_listed = {"spellings": more_spellings, "paths": more_paths, "records": max(0, len(window) - listed)}
    counts["groups"] += 1
    counts["folded"] += len(window)
    counts["not-listed"] += sum(not_listed.values())
    if any(not_listed.values()):
        _limits.hit("max_probing_listed")  # nothing lost: the alert and the summary count what is not listed
    severity = best.severity
    distinct_spellings = len(spellings) + more_spellings
    if distinct_spellings >= EVASION_SPELLINGS and severity < Severity.MEDIUM:
        severity = Severity.MEDIUM
    outcomes = Counter(alert.request.outcome or "not logged" for alert in window if alert.request is not None)
    first, last = window[0].timestamp, window[-1].timestamp
    reasons = [
        f"{len(window)} metadata requests from client {client} between {iso_utc(first)} and {iso_utc(last)}: "
        f"{distinct_spellings} host spellings, {len(paths) + more_paths} paths",
        "host spellings: " + ", ".join(spellings) + (f" and {more_spellings} more" if more_spellings else ""),
        "paths: " + (", ".join(paths) or "(none)") + (f" and {more_paths} more" if more_paths else ""),
        "outcomes: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())),
        f"most severe ({best.severity.label}): {best.reasons[0] if best.reasons else best.title}",
        "covers records: " + ", ".join(f"{ref.file}:{ref.line}" for ref in records)
        + (f" and {not_listed['records']} more" if not_listed["records"] else ""),
    ]
    if severity > best.severity:
        reasons.append(f"{distinct_spellings} spellings of the host from one client: filter evasion")
    request = best.request or RequestInfo(client=client)
    summary_request = RequestInfo(client=client, direction=request.direction, method=request.method,
                                  host=request.host, uri=request.uri, status=request.status,
                                  response_bytes=request.response_bytes, user_agent=request.user_agent,
                                  outcome=_overall(outcomes))
    return Alert(
        rule_id=HTTP_PROBING.id,
        title=HTTP_PROBING.title,
        severity=severity,
        timestamp=first,
        host=window[0].host,
        user=window[0].user,
        process=window[0].process,
        endpoint=best.endpoint,
        reasons=reasons,
        source=window[0].source,
        raw=window[0].raw,
        request=summary_request,
        group=AlertGroup(len(window), first, last, spellings, paths, records, not_listed),
    )


def _overall(outcomes: Counter[str]) -> str:
    if outcomes.get(LIKELY_SUCCESS):
        return LIKELY_SUCCESS
    if outcomes and set(outcomes) == {FAILED}:
        return FAILED
    return UNCLEAR if outcomes else ""
