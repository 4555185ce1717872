"""AWS CloudTrail: every API call as a CLOUD event for the cloud-side detections.

Layouts (plain or gzip, by content): ``{"Records": [...]}`` (the S3 export, also several of them one after
another), a JSON array (console and Stratus downloads), JSON lines (CloudWatch Logs / Firehose / Logstash
exports; a line may itself be a ``{"Records": [...]}``), EventBridge envelopes (``detail`` holds the record)
and directory trees in the S3 layout ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`` (the scan
walks directories). Records are read one at a time (:mod:`.jsonstream`), so a multi-GB file is never held
whole. The time is ``eventTime``, else ``@timestamp`` (Logstash exports).

Skips: ``malformed-json`` (with file:line; reading resumes at the next record), ``cloudtrail-digest`` (the
integrity digests stored next to the logs), ``not-cloudtrail`` (a record without eventName/eventSource),
``bad-timestamp``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..model import CloudCall, Event, EventKind, SourceRef
from .base import Skip, SkipSink
from .jsonstream import iter_records
from .timeparse import parse_timestamp

__all__ = ["CLOUDTRAIL_ADAPTER", "FORMAT", "CloudTrailAdapter", "call_from_record"]

FORMAT = "cloudtrail"
TABLE = "CloudTrail"
_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*[\[{]")
_KEYS = (re.compile(rb'"eventSource"\s*:'), re.compile(rb'"eventName"\s*:'))
_ONE_OF = re.compile(rb'"(?:awsRegion|userIdentity|eventVersion|recipientAccountId)"\s*:')
_DIGEST = (re.compile(rb'"digestStartTime"\s*:'), re.compile(rb'"awsAccountId"\s*:'))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def call_from_record(record: dict[str, Any]) -> CloudCall:
    """The normalized call of one CloudTrail record (which must hold eventSource and eventName)."""
    identity = record.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    principal = (_text(identity.get("arn")) or _text(identity.get("invokedBy"))
                 or _text(identity.get("principalId")) or _text(identity.get("type")))
    return CloudCall(
        provider="aws",
        service=_text(record.get("eventSource")),
        operation=_text(record.get("eventName")),
        principal=principal,
        principal_type=_text(identity.get("type")),
        source_ip=_text(record.get("sourceIPAddress")),
        user_agent=_text(record.get("userAgent")),
        account=_text(record.get("recipientAccountId")) or _text(identity.get("accountId")),
        region=_text(record.get("awsRegion")),
        error=_text(record.get("errorCode")),
        record=record,
    )


class CloudTrailAdapter:
    """CloudTrail logs in every layout AWS and common pipelines write."""

    name = FORMAT

    def sniff(self, head: bytes) -> bool:
        if not _START.match(head):
            return False
        if all(key.search(head) for key in _DIGEST):
            return True
        return all(key.search(head) for key in _KEYS) and bool(_ONE_OF.search(head))

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        index = -1

        def bad(line: int, why: str) -> None:
            on_skip(Skip("malformed-json", file, line, why))

        for line, value in iter_records(stream, bad):
            index += 1
            event = self._event(value, file, line, index, on_skip)
            if event is not None:
                yield event

    @staticmethod
    def _event(value: Any, file: str, line: int, index: int, on_skip: SkipSink) -> Event | None:
        if not isinstance(value, dict):
            on_skip(Skip("not-cloudtrail", file, line, f"a JSON {type(value).__name__}, not a record"))
            return None
        detail = value.get("detail")
        if isinstance(detail, dict) and "eventName" in detail:  # EventBridge envelope
            value = detail
        if "digestStartTime" in value:
            on_skip(Skip("cloudtrail-digest", file, line, "an integrity digest, not API calls"))
            return None
        if not isinstance(value.get("eventName"), str) or not isinstance(value.get("eventSource"), str):
            on_skip(Skip("not-cloudtrail", file, line, "no eventName/eventSource"))
            return None
        stamp = value.get("eventTime") or value.get("@timestamp")
        try:
            moment = parse_timestamp(stamp)
        except ValueError as error:
            on_skip(Skip("bad-timestamp", file, line, str(error)))
            return None
        call = call_from_record(value)
        return Event(kind=EventKind.CLOUD, timestamp=moment, source=SourceRef(FORMAT, file, line, index),
                     user=call.principal, action=call.operation, table=TABLE, remote_ip=call.source_ip,
                     user_agent=call.user_agent, cloud=call)


CLOUDTRAIL_ADAPTER = CloudTrailAdapter()
