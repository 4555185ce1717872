"""The normalized event and alert model shared by every source, detector and report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

TECHNIQUE = "T1552.005"
TACTIC = "credential-access"


class EventKind(str, Enum):  # noqa: UP042  (str() of a member stays 'EventKind.X')
    """What a normalized event describes."""

    NETWORK = "network"  # a process opened (or tried) a connection
    PROCESS = "process"  # a process was created (or a script/command ran)
    HTTP = "http"  # an HTTP request seen on the wire or in a log (no process attached)
    DNS = "dns"  # a DNS query
    CLOUD = "cloud"  # a cloud control-plane call or sign-in (CloudTrail, GCP audit, Azure activity/sign-in)


class Severity(int, Enum):
    """Alert severity, ordered so that comparisons work."""

    INFORMATIONAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name (case-insensitive); raises ValueError on unknown names."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = "|".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected {names})") from None


@dataclass(slots=True)
class SourceRef:
    """Where a record came from: enough to go straight back to the raw log."""

    format: str
    file: str
    line: int  # 1-based line of the record (or of its first line)
    record: int  # 0-based record index within the file

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "file": self.file, "line": self.line, "record": self.record}


@dataclass(slots=True)
class ProcessInfo:
    """The process an event is about (the connecting process, or the newly created one)."""

    name: str = ""
    path: str = ""  # full executable path when known
    pid: int | None = None
    command_line: str = ""
    parent_name: str = ""
    parent_path: str = ""
    user: str = ""
    signer: str = ""
    sha256: str = ""
    title: str = ""  # the name the process gave itself (Linux comm, 15 bytes) when the log has it
    parent_pid: int | None = None
    # True: inside a login session; False: a service outside any login (auditd auid unset); None: unknown.
    login_session: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "pid": self.pid,
            "command_line": self.command_line,
            "parent_name": self.parent_name,
            "parent_path": self.parent_path,
        }


@dataclass(slots=True)
class CloudCall:
    """A cloud control-plane record: who called what, from where. `record` is the parsed record itself, for the
    provider-specific details (request parameters, session context) the cloud detections read."""

    provider: str  # aws | gcp | azure
    service: str  # eventSource, serviceName, resource provider
    operation: str  # eventName, methodName, operationName
    principal: str  # ARN, e-mail, object id
    principal_type: str = ""  # AssumedRole, IAMUser, AWSService, serviceAccount, ManagedIdentity ...
    source_ip: str = ""  # as written (may be "AWS Internal" or a service name)
    user_agent: str = ""
    account: str = ""
    region: str = ""
    error: str = ""  # error code; empty when the call succeeded
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Event:
    """One normalized telemetry record. Sources fill what their format has; the rest stays empty."""

    kind: EventKind
    timestamp: datetime  # timezone-aware, UTC
    source: SourceRef
    host: str = ""
    user: str = ""
    process: ProcessInfo = field(default_factory=ProcessInfo)
    action: str = ""  # e.g. Defender ActionType
    table: str = ""  # e.g. DeviceNetworkEvents
    remote_ip: str = ""
    remote_port: int | None = None
    remote_url: str = ""
    protocol: str = ""
    http_method: str = ""
    http_host: str = ""
    http_uri: str = ""
    user_agent: str = ""
    dns_query: str = ""
    raw: str = ""  # the record as read (possibly shortened), for evidence
    cloud: CloudCall | None = None  # set on CLOUD events
    # Web, proxy and network logs (empty for host telemetry):
    client_ip: str = ""  # who sent the request or query (web/proxy client, Zeek originator)
    direction: str = ""  # INBOUND: the request arrived at the logging server; OUTBOUND: seen leaving; "" unknown
    http_status: int | None = None
    response_bytes: int | None = None
    http_body: str = ""  # the request body, when the log has it
    dns_answers: tuple[str, ...] = ()


INBOUND = "inbound"  # a web server or load balancer logged a request it received
OUTBOUND = "outbound"  # a proxy or sensor logged a request on its way to its destination


@dataclass(slots=True)
class Endpoint:
    """The metadata endpoint an alert is about."""

    provider: str
    raw: str  # as written in the log
    canonical: str  # e.g. "169.254.169.254"
    port: int | None = None
    path: str = ""
    path_class: str = "unknown"  # credential|token|userdata|identity|metadata|unknown

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "raw": self.raw,
            "canonical": self.canonical,
            "port": self.port,
            "path": self.path,
            "path_class": self.path_class,
        }


@dataclass(slots=True)
class RequestInfo:
    """The HTTP request behind an alert from a web, proxy or network log, and what its response suggests."""

    client: str = ""
    direction: str = ""
    method: str = ""
    host: str = ""
    uri: str = ""
    status: int | None = None
    response_bytes: int | None = None
    user_agent: str = ""
    outcome: str = ""  # likely-success | failed | redirected | unclear | "" (no status logged)

    def as_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "direction": self.direction,
            "method": self.method,
            "host": self.host,
            "uri": self.uri,
            "status": self.status,
            "response_bytes": self.response_bytes,
            "user_agent": self.user_agent,
            "outcome": self.outcome,
        }


@dataclass(slots=True)
class AlertGroup:
    """The alerts one aggregated alert stands for (probing: one client, many spellings or paths)."""

    count: int
    first: datetime
    last: datetime
    spellings: list[str]  # distinct host spellings, at most a listing cap
    paths: list[str]  # distinct paths, at most a listing cap
    records: list[SourceRef]  # the records covered, at most a listing cap
    not_listed: dict[str, int] = field(default_factory=dict)  # per list: distinct items beyond the cap

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": iso_utc(self.first),
            "last": iso_utc(self.last),
            "spellings": list(self.spellings),
            "paths": list(self.paths),
            "records": [f"{ref.file}:{ref.line}" for ref in self.records],
            "not_listed": dict(self.not_listed),
        }


@dataclass(slots=True)
class Alert:
    """One finding, with everything an analyst needs to judge it."""

    rule_id: str
    title: str
    severity: Severity
    timestamp: datetime
    host: str
    user: str
    process: ProcessInfo
    endpoint: Endpoint
    reasons: list[str]
    source: SourceRef
    raw: str = ""
    suppressed_by: str | None = None  # allowlist entry id when suppressed
    technique: str = TECHNIQUE
    tactic: str = TACTIC
    cloud: dict[str, Any] | None = None  # cloud-side details (principal, foreign IP, calls) of cloud rules
    request: RequestInfo | None = None  # web, proxy and network logs only
    group: AlertGroup | None = None  # aggregated alerts only

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity.label,
            "technique": self.technique,
            "tactic": self.tactic,
            "timestamp": iso_utc(self.timestamp),
            "host": self.host,
            "user": self.user,
            "process": self.process.as_dict(),
            "endpoint": self.endpoint.as_dict(),
            "reasons": list(self.reasons),
            "source": self.source.as_dict(),
            "guide": f"imds-detect explain {self.rule_id}",  # investigation guide and response playbook
        }
        if self.suppressed_by is not None:
            data["suppressed_by"] = self.suppressed_by
        if self.cloud is not None:
            data["cloud"] = self.cloud
        if self.raw:
            data["raw"] = self.raw
        if self.request is not None:
            data["request"] = self.request.as_dict()
        if self.group is not None:
            data["group"] = self.group.as_dict()
        return data


def iso_utc(moment: datetime) -> str:
    """Render a timezone-aware datetime as ISO 8601 UTC with a trailing Z."""
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")
