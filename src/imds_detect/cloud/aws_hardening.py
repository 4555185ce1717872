"""IMDS hardening removed, judged on one CloudTrail record at a time.

- ``ModifyInstanceMetadataOptions`` with ``HttpTokens=optional`` (high: IMDSv1 answers again), a hop limit
  above 1 (medium: containers and forwarded requests reach the service), or only re-enabling the endpoint
  (low); ``ModifyInstanceMetadataDefaults`` likewise for the whole account and region.
- ``CreateLaunchTemplate``/``CreateLaunchTemplateVersion``/``CreateLaunchConfiguration`` and
  ``RunInstances`` that ask for ``HttpTokens=optional`` or a raised hop limit (medium).
- ``RunInstances`` whose instances came up accepting IMDSv1 without asking for it (informational
  ``imds-launch-imdsv1``: the AMI or account default decided), or when the response is not logged and the
  request did not require IMDSv2.

A call that failed (``errorCode``) is reported one step lower as an attempt; a failed launch is not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..detect.rules import HARDENING_REMOVED, LAUNCH_IMDSV1, Rule
from ..knowledge.cloud import (
    DEFAULT_HOP_LIMIT,
    HOP_LIMIT,
    HTTP_ENDPOINT,
    HTTP_TOKENS,
    INSTANCE_ID,
    LAUNCH_CALLS,
    METADATA_OPTIONS,
    MODIFY_ACCOUNT_DEFAULTS,
    MODIFY_INSTANCE_OPTIONS,
    TEMPLATE_CALLS,
)
from ..model import Alert, Endpoint, Event, ProcessInfo, Severity
from .evidence import raw_of


def _lower(mapping: Any) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()} if isinstance(mapping, Mapping) else {}


def _request(record: Mapping[str, Any], operation: str) -> dict[str, Any]:
    """requestParameters with keys in lower case, unwrapped from ``<Operation>Request`` when nested."""
    params = _lower(record.get("requestParameters"))
    inner = params.get(f"{operation.lower()}request")
    return _lower(inner) if isinstance(inner, Mapping) else params


def _find_options(params: dict[str, Any]) -> dict[str, Any]:
    """The metadata options of a launch or template request, wherever they sit."""
    if METADATA_OPTIONS in params:
        return _lower(params[METADATA_OPTIONS])
    data = _lower(params.get("launchtemplatedata"))
    return _lower(data.get(METADATA_OPTIONS)) if data else {}


def _hop(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _weakening(options: dict[str, Any], what: str) -> list[tuple[Severity, str]]:
    """(severity, reason) for each weakening these options ask for."""
    found: list[tuple[Severity, str]] = []
    tokens = str(options.get(HTTP_TOKENS, "")).lower()
    if tokens == "optional":
        found.append((Severity.HIGH, f"{what}: HttpTokens=optional, IMDSv1 (no session token) is accepted again"))
    elif tokens == "no-preference":
        found.append((Severity.MEDIUM, f"{what}: HttpTokens=no-preference, the AMI decides whether IMDSv1 works"))
    hop = _hop(options.get(HOP_LIMIT))
    if hop is not None and hop > DEFAULT_HOP_LIMIT:
        found.append((Severity.MEDIUM, f"{what}: HttpPutResponseHopLimit={hop}, token requests survive {hop - 1} "
                                       "extra hop(s) (containers, forwarding proxies)"))
    return found


def hardening_alerts(event: Event) -> list[Alert]:
    """Alerts for one CloudTrail record that weakens IMDS (none for any other record)."""
    call = event.cloud
    if call is None or call.provider != "aws":
        return []
    operation, record = call.operation, call.record
    params = _request(record, operation)
    failed = bool(call.error)
    if operation in (MODIFY_INSTANCE_OPTIONS, MODIFY_ACCOUNT_DEFAULTS):
        target = str(params.get("instanceid", "")) or "account defaults"
        found = _weakening(params, f"{operation} on {target}")
        enabled = str(params.get(HTTP_ENDPOINT, "")).lower() == "enabled"
        if not found and enabled and operation == MODIFY_INSTANCE_OPTIONS:
            found = [(Severity.LOW, f"{operation} on {target}: HttpEndpoint=enabled, the metadata service is on")]
        return [_alert(event, HARDENING_REMOVED, found, failed, _instances(params, record))] if found else []
    if operation in TEMPLATE_CALLS:
        name = params.get("launchtemplatename") or params.get("launchtemplateid") or params.get(
            "launchconfigurationname") or ""
        found = [(min(severity, Severity.MEDIUM), reason)
                 for severity, reason in _weakening(_find_options(params), f"{operation} {name}".rstrip())]
        return [_alert(event, HARDENING_REMOVED, found, failed, [])] if found else []
    if operation in LAUNCH_CALLS and not failed:
        return _launch_alerts(event, params)
    return []


def _launch_alerts(event: Event, params: dict[str, Any]) -> list[Alert]:
    call = event.cloud
    assert call is not None
    options = _find_options(params)
    asked = [(min(severity, Severity.MEDIUM), reason) for severity, reason in _weakening(options, "RunInstances")]
    items = _lower(_lower(call.record.get("responseElements")).get("instancesset")).get("items")
    launched = [_lower(item) for item in items] if isinstance(items, list) else []
    ids = [str(item.get("instanceid")) for item in launched if item.get("instanceid")]
    if asked:
        return [_alert(event, HARDENING_REMOVED, asked, False, ids)]
    if launched:
        open_ids = [str(item.get("instanceid", "?")) for item in launched
                    if str(_lower(item.get(METADATA_OPTIONS)).get(HTTP_TOKENS, "")).lower() == "optional"]
        if open_ids:
            return [_alert(event, LAUNCH_IMDSV1, [(Severity.INFORMATIONAL, "instances launched accepting IMDSv1 "
                                                   "(HttpTokens=optional in the response): " + ", ".join(open_ids))],
                           False, open_ids)]
        return []
    if str(options.get(HTTP_TOKENS, "")).lower() != "required":
        return [_alert(event, LAUNCH_IMDSV1, [(Severity.INFORMATIONAL, "RunInstances did not require IMDSv2 "
                                               "(no HttpTokens=required; the AMI or account default decides)")],
                       False, ids)]
    return []


def _instances(params: dict[str, Any], record: Mapping[str, Any]) -> list[str]:
    found = str(params.get("instanceid", ""))
    return [found] if INSTANCE_ID.fullmatch(found) else []


def _alert(event: Event, rule: Rule, found: list[tuple[Severity, str]], failed: bool, instances: list[str]) -> Alert:
    call = event.cloud
    assert call is not None
    severity = max(severity for severity, _ in found)
    reasons = [reason for _, reason in found]
    if failed:
        severity = Severity(max(severity - 1, Severity.INFORMATIONAL))
        reasons.append(f"the call failed ({call.error}): an attempt")
    reasons.append(f"by {call.principal or '?'} from {call.source_ip or '?'} ({call.user_agent or 'no user agent'})")
    options = _request(call.record, call.operation)
    settings = {key: value for key, value in {**options, **_find_options(options)}.items()
                if key in (HTTP_TOKENS, HOP_LIMIT, HTTP_ENDPOINT)}
    return Alert(
        rule_id=rule.id,
        title=rule.title,
        severity=severity,
        timestamp=event.timestamp,
        host=instances[0] if len(instances) == 1 else "",
        user=call.principal,
        process=ProcessInfo(),
        endpoint=Endpoint("aws", call.operation, "169.254.169.254", 80, "", "config"),
        reasons=reasons,
        source=event.source,
        raw=raw_of(call.record),
        cloud={"provider": "aws", "operation": call.operation, "principal": call.principal,
               "source_ip": call.source_ip, "user_agent": call.user_agent, "account": call.account,
               "region": call.region, "instances": instances, "settings": settings,
               **({"error": call.error} if call.error else {})},
    )
