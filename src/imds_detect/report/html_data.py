"""The data behind the HTML report: aggregates over every alert, evidence for the most important ones."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..detect.allowlist import Allowlist, default_entries
from ..engine.summary import Summary
from ..guide.content import guide_for, guide_reference
from ..model import Alert, Severity, iso_utc
from .allowlist_why import why_not_allowlisted

ALERT_LIMIT = 5000  # alerts listed with their evidence; the rest are counted in the aggregates
RAW_LIMIT = 2000  # characters of the raw record shown per alert
ROW_LIMIT = 500  # rows of the host and process tables
BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BARS = 60
SEVERITIES = [s.label for s in reversed(Severity)]  # critical first


def bucket_seconds(first: datetime, last: datetime) -> int:
    """The smallest bucket that keeps the chart at MAX_BARS bars or fewer."""
    span = (last - first).total_seconds()
    for size in BUCKETS:
        if span / size < MAX_BARS:
            return size
    return BUCKETS[-1]


def timeline(alerts: list[Alert]) -> dict[str, Any]:
    """Alerts per severity per time bucket (every alert counts)."""
    if not alerts:
        return {"bucket_seconds": 0, "buckets": []}
    first = min(alert.timestamp for alert in alerts)
    last = max(alert.timestamp for alert in alerts)
    size = bucket_seconds(first, last)
    origin = int(first.timestamp()) // size * size
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for alert in alerts:
        counts[(int(alert.timestamp.timestamp()) - origin) // size][alert.severity.label] += 1
    buckets = []
    for index in range(max(counts) + 1):
        start = datetime.fromtimestamp(origin + index * size, tz=UTC)
        buckets.append({"start": iso_utc(start), "counts": {s: counts[index][s] for s in SEVERITIES
                                                             if counts[index][s]}})
    return {"bucket_seconds": size, "buckets": buckets}


def _worst(severities: Iterable[Severity]) -> str:
    return max(severities, default=Severity.INFORMATIONAL).label


def host_rows(alerts: list[Alert]) -> list[dict[str, Any]]:
    """One row per host, most alerts first."""
    by_host: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_host[alert.host or "(unknown)"].append(alert)
    rows: list[dict[str, Any]] = []
    for host, items in by_host.items():
        severities = Counter(alert.severity.label for alert in items)
        rows.append({
            "host": host, "alerts": len(items), "worst": _worst(a.severity for a in items),
            "by_severity": {s: severities[s] for s in SEVERITIES if severities[s]},
            "processes": len({a.process.path or a.process.name for a in items}),
            "first": iso_utc(min(a.timestamp for a in items)), "last": iso_utc(max(a.timestamp for a in items)),
        })
    rows.sort(key=lambda row: (-Severity.parse(row["worst"]), -int(row["alerts"]), str(row["host"])))
    return rows


def process_rows(alerts: list[Alert]) -> list[dict[str, Any]]:
    """One row per executable (path, else name), most hosts first."""
    by_process: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_process[alert.process.path or alert.process.name or "(no process)"].append(alert)
    rows: list[dict[str, Any]] = []
    for process, items in by_process.items():
        classes = Counter(a.endpoint.path_class for a in items)
        rows.append({
            "process": process, "alerts": len(items), "hosts": len({a.host for a in items}),
            "worst": _worst(a.severity for a in items), "rules": sorted({a.rule_id for a in items}),
            "path_classes": dict(classes.most_common()),
        })
    rows.sort(key=lambda row: (-Severity.parse(row["worst"]), -int(row["hosts"]), -int(row["alerts"]),
                               str(row["process"])))
    return rows


def alert_entry(alert: Alert, allowlist: Allowlist) -> dict[str, Any]:
    """One alert with its evidence."""
    endpoint = alert.endpoint
    return {
        "timestamp": iso_utc(alert.timestamp), "severity": alert.severity.label, "rule_id": alert.rule_id,
        "title": alert.title, "host": alert.host, "user": alert.user, "process": alert.process.as_dict(),
        "endpoint": endpoint.as_dict(), "reasons": list(alert.reasons),
        "why_not_allowlisted": why_not_allowlisted(alert, allowlist),
        "source": f"{alert.source.file}:{alert.source.line}", "format": alert.source.format,
        "raw": alert.raw[:RAW_LIMIT] + ("…" if len(alert.raw) > RAW_LIMIT else ""),
        "suppressed_by": alert.suppressed_by, "guide": guide_reference(alert.rule_id),
        "request": alert.request.as_dict() if alert.request else None,
        "group": alert.group.as_dict() if alert.group else None,
    }


def plain(value: Any) -> Any:
    """Incidents and other objects as JSON-ready data (as_dict, dataclasses, datetimes)."""
    if hasattr(value, "as_dict"):
        return plain(value.as_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, Severity):
        return value.label
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def report_data(alerts: list[Alert], summary: Summary, *, incidents: Iterable[Any] = (),
                allowlist: Allowlist | None = None, title: str = "imds-detect report",
                generated: datetime | None = None, limit: int = ALERT_LIMIT) -> dict[str, Any]:
    """Everything the report page shows, as JSON-ready data."""
    allowlist = allowlist if allowlist is not None else Allowlist(default_entries())
    kept = [a for a in alerts if a.suppressed_by is None]
    ranked = sorted(alerts, key=lambda a: (-a.severity, -a.timestamp.timestamp(), a.source.file, a.source.line))
    listed = ranked[:limit]
    rules = sorted({a.rule_id for a in alerts})
    hosts, processes = host_rows(kept), process_rows(kept)
    return {
        "title": title,
        "generated": iso_utc((generated or datetime.now(UTC)).replace(microsecond=0)),
        "totals": {"alerts": len(kept), "suppressed_listed": len(alerts) - len(kept), "listed": len(listed),
                   "not_listed": len(alerts) - len(listed),
                   "by_severity": {s: sum(1 for a in kept if a.severity.label == s) for s in SEVERITIES}},
        "timeline": timeline(kept),
        "hosts": hosts[:ROW_LIMIT], "hosts_total": len(hosts),
        "processes": processes[:ROW_LIMIT], "processes_total": len(processes),
        "alerts": [alert_entry(alert, allowlist) for alert in listed],
        "incidents": plain(list(incidents)),
        "summary": summary.as_dict(), "summary_text": summary.render(),
        "guides": {rule_id: guide_for(rule_id).as_dict() for rule_id in rules if _has_guide(rule_id)},
    }


def _has_guide(rule_id: str) -> bool:
    try:
        guide_for(rule_id)
    except KeyError:
        return False
    return True
