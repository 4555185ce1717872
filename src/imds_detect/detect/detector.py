"""Run every rule on an event and apply the allowlist: event in, alerts (kept and suppressed) out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import Alert, Event, EventKind, Severity
from .allowlist import Allowlist
from .command_line import detect_command_line
from .dns import detect_dns
from .findings import Finding
from .http import detect_http
from .masquerade import detect_masquerade, impersonated_agent
from .network import detect_network
from .outcome import request_info
from .rules import AGENT_MASQUERADE

RAW_LIMIT = 4096

_BY_KIND: dict[EventKind, tuple[Callable[[Event], list[Finding]], ...]] = {
    EventKind.NETWORK: (detect_network,),
    EventKind.PROCESS: (detect_command_line, detect_masquerade),
    EventKind.HTTP: (detect_http,),
    EventKind.DNS: (detect_dns,),
}


@dataclass
class Detection:
    """What one event produced."""

    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)


@dataclass
class Detector:
    """Stateless rules plus an allowlist."""

    allowlist: Allowlist

    def run(self, event: Event) -> Detection:
        result = Detection()
        for detect in _BY_KIND.get(event.kind, ()):
            for finding in detect(event):
                self._judge(event, finding, result)
        return result

    def _judge(self, event: Event, finding: Finding, result: Detection) -> None:
        reasons = list(finding.reasons)
        severity = finding.severity
        if finding.rule is not AGENT_MASQUERADE:
            agent = impersonated_agent(event.process)
            if agent is not None:
                severity = max(severity, Severity.HIGH)
                reasons.append(f"process is named like {agent.id} but does not run from its path")
        entry = None
        if finding.rule.suppressible or finding.rule is AGENT_MASQUERADE:
            entry = self.allowlist.match(event, finding.rule.id)
            if entry is not None and not finding.rule.suppressible and not entry.rules:
                entry = None  # default-scoped entries never excuse a masquerade
        request, outcome = request_info(event, finding.endpoint.path_class)
        if outcome:
            reasons.append(outcome)
        if entry is None:
            reasons.extend(self.allowlist.considered(event))
        else:
            reasons.append(f"suppressed by allowlist entry {entry.id} ({entry.origin})")
        alert = Alert(
            rule_id=finding.rule.id,
            title=finding.rule.title,
            severity=severity,
            timestamp=event.timestamp,
            host=event.host,
            user=event.user or event.process.user,
            process=event.process,
            endpoint=finding.endpoint,
            reasons=reasons,
            source=event.source,
            raw=event.raw[:RAW_LIMIT],
            suppressed_by=entry.id if entry else None,
            request=request,
        )
        (result.suppressed if entry else result.alerts).append(alert)
