"""Google Cloud Audit Logs (LogEntry with an AuditLog ``protoPayload``) as CLOUD events.

Layouts: JSON lines (Cloud Storage sinks, ``gcloud logging read --format=json`` piped through ``jq -c``), a
JSON array (``gcloud logging read --format=json``), concatenated objects. Fields read: ``timestamp`` (else
``receiveTimestamp``), ``protoPayload.serviceName``/``methodName``/``resourceName``,
``authenticationInfo.principalEmail``/``serviceAccountKeyName``, ``requestMetadata.callerIp``/
``callerSuppliedUserAgent``, ``status.code``, ``resource.labels.project_id``. Skips: ``malformed-json``,
``not-audit-log`` (a LogEntry without an AuditLog payload), ``bad-timestamp``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..model import CloudCall, Event, EventKind, SourceRef
from .base import Skip, SkipSink
from .jsonstream import iter_records
from .timeparse import parse_timestamp

__all__ = ["FORMAT", "GCP_AUDIT_ADAPTER", "GcpAuditAdapter"]

FORMAT = "gcp-audit"
TABLE = "CloudAuditLogs"
_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*[\[{]")
_PAYLOAD = re.compile(rb'"protoPayload"\s*:')
_AUDIT = re.compile(rb"google\.cloud\.audit\.AuditLog|cloudaudit\.googleapis\.com")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class GcpAuditAdapter:
    """Cloud Audit Logs entries."""

    name = FORMAT

    def sniff(self, head: bytes) -> bool:
        return bool(_START.match(head) and _PAYLOAD.search(head) and _AUDIT.search(head))

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        def bad(line: int, why: str) -> None:
            on_skip(Skip("malformed-json", file, line, why))

        for index, (line, value) in enumerate(iter_records(stream, bad)):
            event = _event(value, file, line, index, on_skip)
            if event is not None:
                yield event


def _event(value: Any, file: str, line: int, index: int, on_skip: SkipSink) -> Event | None:
    payload = _dict(value.get("protoPayload")) if isinstance(value, dict) else {}
    if not payload.get("methodName") or not payload.get("serviceName"):
        on_skip(Skip("not-audit-log", file, line, "no protoPayload with serviceName and methodName"))
        return None
    try:
        moment = parse_timestamp(value.get("timestamp") or value.get("receiveTimestamp"))
    except ValueError as error:
        on_skip(Skip("bad-timestamp", file, line, str(error)))
        return None
    authentication = _dict(payload.get("authenticationInfo"))
    metadata = _dict(payload.get("requestMetadata"))
    principal = _text(authentication.get("principalEmail")) or _text(authentication.get("principalSubject"))
    code = _dict(payload.get("status")).get("code")
    labels = _dict(_dict(value.get("resource")).get("labels"))
    call = CloudCall(
        provider="gcp",
        service=_text(payload.get("serviceName")),
        operation=_text(payload.get("methodName")),
        principal=principal,
        principal_type="serviceAccount" if principal.endswith(".gserviceaccount.com") else "user",
        source_ip=_text(metadata.get("callerIp")),
        user_agent=_text(metadata.get("callerSuppliedUserAgent")),
        account=_text(labels.get("project_id")),
        region=_text(labels.get("zone")) or _text(labels.get("location")),
        error=str(code) if code not in (None, 0, "0", "") else "",
        record=value,
    )
    return Event(kind=EventKind.CLOUD, timestamp=moment, source=SourceRef(FORMAT, file, line, index),
                 user=principal, action=call.operation, table=TABLE, remote_ip=call.source_ip,
                 user_agent=call.user_agent, cloud=call)


GCP_AUDIT_ADAPTER = GcpAuditAdapter()
