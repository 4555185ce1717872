"""Timesketch JSON lines: `message`, `datetime`, `timestamp_desc` (its required fields) plus the alert's fields.

`datetime` is the alert's `timestamp` exactly as every other output writes it (ISO 8601 UTC, `Z`); Timesketch's
own `timestamp` field is the same moment in microseconds since the epoch. Nested alert fields are flattened
with `_` (`process_path`, `endpoint_path_class`), lists joined with ` | `.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson

from ..guide.content import guide_reference
from ..model import Alert, iso_utc

TIMESTAMP_DESC = {
    "imds-network-connection": "Connection to metadata service",
    "imds-command-line": "Process started",
    "imds-hidden-host": "Process started",
    "imds-http-request": "HTTP request",
    "imds-dns-query": "DNS query",
    "imds-agent-masquerade": "Process started",
}
DEFAULT_DESC = "Event time"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RESERVED = {"message", "datetime", "timestamp", "timestamp_desc"}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}_"))
        elif isinstance(value, list):
            flat[prefix + key] = " | ".join(str(item) for item in value)
        else:
            flat[prefix + key] = value
    return flat


def message(alert: Alert) -> str:
    """One line an investigator reads in the Timesketch event list."""
    endpoint = alert.endpoint
    target = (endpoint.canonical or endpoint.raw) + endpoint.path
    who = alert.process.path or alert.process.name or (alert.request.client if alert.request else "") or "?"
    return f"[{alert.severity.label}] {alert.rule_id}: {who} -> {target} ({endpoint.path_class}) on {alert.host or '?'}"


def timesketch_event(alert: Alert) -> dict[str, Any]:
    """One alert as a Timesketch event."""
    fields = {key: value for key, value in _flatten(alert.as_dict()).items() if key not in _RESERVED}
    event: dict[str, Any] = {
        "message": message(alert),
        "datetime": iso_utc(alert.timestamp),
        "timestamp": (alert.timestamp - EPOCH) // timedelta(microseconds=1),
        "timestamp_desc": TIMESTAMP_DESC.get(alert.rule_id, DEFAULT_DESC),
        "data_type": "imds_detect:alert",
        "tag": ["T1552.005", alert.severity.label],
    }
    event.update(fields)
    event["guide"] = guide_reference(alert.rule_id)
    return event


def timesketch_line(alert: Alert) -> str:
    return orjson.dumps(timesketch_event(alert)).decode() + "\n"


def write_timesketch(alerts: Iterable[Alert], out: TextIO) -> None:
    for alert in alerts:
        out.write(timesketch_line(alert))


def incident_event(incident: Any) -> dict[str, Any]:
    """An incident (host read + cloud use) as one Timesketch event at its first host read."""
    data = incident.as_dict() if hasattr(incident, "as_dict") else dict(incident)
    moment = data.get("first_host_read") or data.get("first_cloud_use") or ""
    event = {key: value for key, value in _flatten(data).items() if key not in _RESERVED}
    event.update({"message": f"[{data.get('severity', '')}] INCIDENT {data.get('title', '')}", "datetime": moment,
                  "timestamp_desc": "First metadata read of the incident", "data_type": "imds_detect:incident",
                  "tag": ["T1552.005", "incident"]})
    if moment:
        parsed = datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
        event["timestamp"] = (parsed - EPOCH) // timedelta(microseconds=1)
    return event


def write_timesketch_incidents(incidents: Iterable[Any], out: TextIO) -> None:
    for incident in incidents:
        out.write(orjson.dumps(incident_event(incident)).decode() + "\n")
