"""Run imds-detect on the written telemetry files and judge the outcome against the test's expectation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..detect.allowlist import Allowlist
from ..engine.scan import ScanOptions, scan
from ..model import Alert, Event
from ..sources.base import Skip
from ..sources.registry import BY_NAME
from .catalog import Expectation

# written format label -> the parser that reads it
PARSERS = {"auditd": "auditd", "mde": "mde", "mde-csv": "mde", "sysmon": "sysmon", "parquet": "parquet"}


@dataclass
class FormatResult:
    """What imds-detect made of one file."""

    format: str
    file: Path
    alerts: list[Alert]
    suppressed: list[Alert]
    skipped: int = 0

    def hits(self, expect: Expectation) -> list[Alert]:
        return [a for a in self.alerts
                if a.endpoint.provider == expect.provider and a.endpoint.path_class == expect.path_class]


def detect(path: Path, label: str, allowlist: Allowlist) -> FormatResult:
    """Scan one file with the parser of `label` (the real parsers, through the public scan())."""
    result = scan([str(path)], ScanOptions(format=PARSERS[label], allowlist=allowlist, show_suppressed=True))
    skipped = sum(result.summary.skipped.values())
    return FormatResult(label, path, result.alerts, result.suppressed, skipped)


def read_events(path: Path, label: str) -> Iterator[Event]:
    """The events a parser reads from `path` (skips are dropped)."""

    def ignore(skip: Skip) -> None:
        return None

    with path.open("rb") as stream:
        yield from BY_NAME[PARSERS[label]].parse(stream, str(path), ignore)


def alert_summary(alert: Alert, label: str) -> dict[str, Any]:
    """The fields of an alert the report shows."""
    return {"format": label, "rule_id": alert.rule_id, "severity": alert.severity.label,
            "provider": alert.endpoint.provider, "path_class": alert.endpoint.path_class,
            "path": alert.endpoint.path, "process": alert.process.path or alert.process.name,
            **({"suppressed_by": alert.suppressed_by} if alert.suppressed_by else {})}


def judge(expect: Expectation | None, results: list[FormatResult], problems: list[str]) -> tuple[str, list[str]]:
    """("pass" | "fail", reasons). Every format must agree: the expected alert in each, or (for an
    allowlisted agent) no alert in any and the agent's telemetry suppressed in each."""
    reasons = list(problems)
    for result in results:
        if expect is None:
            if result.alerts:
                found = ", ".join(sorted({f"{a.rule_id} {a.endpoint.provider}/{a.endpoint.path_class}"
                                          for a in result.alerts}))
                reasons.append(f"{result.format}: alerted although allowlisted ({found})")
            elif not result.suppressed:
                reasons.append(f"{result.format}: nothing suppressed (the agent's telemetry was not judged)")
        elif not result.hits(expect):
            found = ", ".join(sorted({f"{a.endpoint.provider}/{a.endpoint.path_class}" for a in result.alerts}))
            reasons.append(f"{result.format}: no {expect} alert (got: {found or 'none'})")
    if not results:
        reasons.append("no telemetry file was scanned")
    return ("fail" if reasons else "pass"), reasons
