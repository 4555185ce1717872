"""An incident: one credential theft seen from both sides, host read then cloud use, as one timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..model import Alert, Severity, iso_utc


@dataclass(slots=True)
class TimelineEntry:
    """One step of an incident: a host-side alert or a cloud call."""

    time: datetime
    side: str  # host | cloud
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"time": iso_utc(self.time), "side": self.side, "summary": self.summary, **self.detail}


@dataclass
class Incident:
    """Host-side metadata reads and the off-instance use of the same workload's credentials."""

    id: str
    title: str
    severity: Severity
    workload: str  # instance id or VM name
    hosts: list[str]
    principals: list[str]
    foreign_ips: list[str]
    join: str  # how the host was tied to the workload
    first_host_read: datetime
    first_cloud_use: datetime
    timeline: list[TimelineEntry]
    alerts: list[Alert]

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "incident",
            "incident_id": self.id,
            "title": self.title,
            "severity": self.severity.label,
            "workload": self.workload,
            "hosts": self.hosts,
            "principals": self.principals,
            "foreign_ips": self.foreign_ips,
            "join": self.join,
            "first_host_read": iso_utc(self.first_host_read),
            "first_cloud_use": iso_utc(self.first_cloud_use),
            "timeline": [entry.as_dict() for entry in self.timeline],
            "alerts": [{"rule_id": alert.rule_id, "timestamp": iso_utc(alert.timestamp),
                        "source": f"{alert.source.file}:{alert.source.line}"} for alert in self.alerts],
        }
