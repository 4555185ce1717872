"""Azure Activity logs and managed-identity sign-in logs as CLOUD events.

Shapes (JSON lines, arrays, or ``{"records": [...]}`` blobs of diagnostic settings):

- Activity log, diagnostic export: ``time``, ``operationName``, ``callerIpAddress``, ``resourceId``,
  ``identity.claims`` (``xms_mirid`` names the managed identity's resource: a VM for a system-assigned
  identity), ``resultType``.
- Activity log, Sentinel ``AzureActivity`` rows: ``TimeGenerated``, ``OperationNameValue``, ``CallerIpAddress``,
  ``Caller``, ``Claims`` (a JSON string or an object), ``ActivityStatusValue``.
- Activity log, ``az monitor activity-log list``: ``eventTimestamp``, ``operationName.value``, ``caller``,
  ``claims``, ``httpRequest.clientIpAddress``.
- Managed-identity sign-ins, Sentinel ``AADManagedIdentitySignInLogs`` rows (``ServicePrincipalId``,
  ``ServicePrincipalName``, ``IPAddress``, ``ResultType``) or the diagnostic export (category
  ``ManagedIdentitySignInLogs``, the same names in camel case under ``properties``).

The principal of a managed identity is its object id (claim ``oid`` / ``ServicePrincipalId``); its resource
(``xms_mirid``) and name go to ``record["_imds"]`` for the cloud detections. Skips: ``malformed-json``,
``not-azure-log``, ``bad-timestamp``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from ..knowledge.cloud import AZURE_MIRID_CLAIM, AZURE_OID_CLAIM, AZURE_VM_RESOURCE
from ..model import CloudCall, Event, EventKind, SourceRef
from .base import Skip, SkipSink
from .jsonstream import iter_records
from .timeparse import parse_timestamp

__all__ = ["AZURE_ADAPTER", "FORMAT", "AzureLogsAdapter"]

FORMAT = "azure"
SIGNIN_TABLE = "AADManagedIdentitySignInLogs"
ACTIVITY_TABLE = "AzureActivity"
_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*[\[{]")
_TABLE_NAME = re.compile(rb'"(?:AADManagedIdentitySignInLogs|ManagedIdentitySignInLogs|AzureActivity)"')
_CALLER = re.compile(rb'"callerIpAddress"\s*:')
_OPERATION = re.compile(rb'"operationName"\s*:')
_CALLER_VALUE = re.compile(rb'"CallerIpAddress"\s*:')
_OPERATION_VALUE = re.compile(rb'"OperationNameValue"\s*:')
# Keys that mark the format when they occur in this order. (One `A.*B` expression searched from every A would
# read the rest of the head again from each: quadratic. The first A, then B after it, is the same test.)
_MARKERS: tuple[tuple[re.Pattern[bytes], ...], ...] = (
    (_TABLE_NAME,),
    (_CALLER, _OPERATION),
    (_OPERATION, _CALLER),
    (_CALLER_VALUE, _OPERATION_VALUE),
    (_OPERATION_VALUE, _CALLER_VALUE),
    (re.compile(rb'"eventTimestamp"\s*:'), re.compile(rb'"claims"\s*:')),
)


def _in_order(data: bytes, keys: tuple[re.Pattern[bytes], ...]) -> bool:
    position = 0
    for key in keys:
        match = key.search(data, position)
        if match is None:
            return False
        position = match.end()
    return True


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return _text(value.get("value"))
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _first(record: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = record.get(key)
        if value not in (None, ""):
            return value
    return None


class AzureLogsAdapter:
    """Azure Activity and managed-identity sign-in logs."""

    name = FORMAT

    def sniff(self, head: bytes) -> bool:
        return bool(_START.match(head)) and any(_in_order(head, marker) for marker in _MARKERS)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        def bad(line: int, why: str) -> None:
            on_skip(Skip("malformed-json", file, line, why))

        for index, (line, value) in enumerate(iter_records(stream, bad)):
            event = _event(value, file, line, index, on_skip)
            if event is not None:
                yield event


def _signin(record: dict[str, Any]) -> dict[str, Any] | None:
    """The flat fields of a managed-identity sign-in, or None for another record."""
    if record.get("Type") == SIGNIN_TABLE or record.get("category") in ("ManagedIdentitySignInLogs", SIGNIN_TABLE):
        properties = _dict(record.get("properties"))
        return {**{key[:1].upper() + key[1:]: value for key, value in properties.items()}, **record}
    return None


def _event(value: Any, file: str, line: int, index: int, on_skip: SkipSink) -> Event | None:
    if not isinstance(value, dict):
        on_skip(Skip("not-azure-log", file, line, f"a JSON {type(value).__name__}, not a record"))
        return None
    flat = _signin(value)
    call = _signin_call(flat) if flat is not None else _activity_call(value)
    if call is None:
        on_skip(Skip("not-azure-log", file, line, "neither an Activity log record nor a managed-identity sign-in"))
        return None
    stamp = _first(value, "TimeGenerated", "time", "eventTimestamp", "CreatedDateTime", "createdDateTime")
    try:
        moment = parse_timestamp(stamp)
    except ValueError as error:
        on_skip(Skip("bad-timestamp", file, line, str(error)))
        return None
    table = SIGNIN_TABLE if flat is not None else ACTIVITY_TABLE
    return Event(kind=EventKind.CLOUD, timestamp=moment, source=SourceRef(FORMAT, file, line, index),
                 user=call.principal, action=call.operation, table=table, remote_ip=call.source_ip, cloud=call)


def _signin_call(flat: dict[str, Any]) -> CloudCall | None:
    principal = _text(_first(flat, "ServicePrincipalId", "servicePrincipalId"))
    if not principal:
        return None
    name = _text(_first(flat, "ServicePrincipalName", "servicePrincipalName"))
    result = _text(_first(flat, "ResultType", "resultType"))
    imds = {"kind": "signin", "name": name, "resource": _text(flat.get("ResourceDisplayName"))}
    return CloudCall(provider="azure", service="Microsoft.AAD", operation="ManagedIdentitySignIn",
                     principal=principal, principal_type="ManagedIdentity",
                     source_ip=_text(_first(flat, "IPAddress", "ipAddress", "callerIpAddress")),
                     error=result if result not in ("", "0", "Success") else "",
                     record={**flat, "_imds": imds})


def _activity_call(record: dict[str, Any]) -> CloudCall | None:
    operation = _text(_first(record, "operationName", "OperationNameValue", "OperationName"))
    if not operation:
        return None
    claims = _dict(_first(_dict(record.get("identity")), "claims") or _first(record, "claims", "Claims", "Claims_d"))
    mirid = _text(claims.get(AZURE_MIRID_CLAIM))
    oid = _text(claims.get(AZURE_OID_CLAIM)) or _text(claims.get("oid"))
    caller = _text(_first(record, "caller", "Caller"))
    vm = AZURE_VM_RESOURCE.search(mirid) if mirid else None
    principal = oid or caller
    kind = "ManagedIdentity" if mirid else ("User" if "@" in caller else "ServicePrincipal")
    status = _text(_first(record, "resultType", "ActivityStatusValue", "status")).lower()
    source_ip = _text(_first(record, "callerIpAddress", "CallerIpAddress")) or _text(
        _dict(record.get("httpRequest")).get("clientIpAddress"))
    subscription = _text(_first(record, "SubscriptionId", "subscriptionId"))
    return CloudCall(provider="azure", service=operation.split("/", 1)[0], operation=operation,
                     principal=principal, principal_type=kind, source_ip=source_ip, account=subscription,
                     error="failed" if status in ("failure", "failed") else "",
                     record={**record, "_imds": {"kind": "activity", "mirid": mirid, "caller": caller,
                                                 "name": vm.group(1) if vm else mirid.rsplit("/", 1)[-1]}})


AZURE_ADAPTER = AzureLogsAdapter()
