"""What a scan read, skipped and found: the numbers behind the summary on stderr."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..model import Severity


@dataclass
class FileReport:
    """One input file's outcome."""

    name: str
    format: str = ""
    records: int = 0
    status: str = "ok"  # ok | unrecognised | empty | unusable | error | partial
    detail: str = ""


@dataclass
class Summary:
    """Counters for one scan; nothing read is left out of them."""

    files: list[FileReport] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0  # every record read, parsed or not
    parsed: int = 0  # records fully parsed
    usable: int = 0  # records parsed into events or cleared by the prefilter (not skipped)
    prefiltered: int = 0  # records the prefilter showed cannot alert (not parsed)
    skipped: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)  # by severity label, after all filters
    suppressed: Counter[str] = field(default_factory=Counter)  # by allowlist entry id
    below_min_severity: int = 0
    outside_window: int = 0
    prefilter_engine: str = "off"
    interrupted: str = ""  # the signal that stopped the scan early (SIGINT, SIGTERM, SIGPIPE), if one did
    # Formats that clear harmless records inside the adapter (auditd events, Parquet rows): "<format> <what>".
    shortcuts: set[str] = field(default_factory=set)
    # Probing aggregation (detect/probing.py): groups made, alerts folded into them, items not listed.
    probing: Counter[str] = field(default_factory=Counter)
    # Bounds reached (imds_detect/limits.py), by limit name: each one raised under [limits] in the config.
    limits: Counter[str] = field(default_factory=Counter)

    @property
    def readable_files(self) -> int:
        return sum(1 for report in self.files if report.status in ("ok", "partial"))

    def nothing_read(self) -> bool:
        """True when no input yielded a single usable record: the scan cannot claim '0 alerts'."""
        return self.usable == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": [vars(report) for report in self.files],
            "missing": [{"path": path, "reason": reason} for path, reason in self.missing],
            "records": self.records,
            "parsed": self.parsed,
            "usable": self.usable,
            "prefiltered": self.prefiltered,
            "skipped": dict(self.skipped),
            "alerts": {s.label: self.alerts.get(s.label, 0) for s in Severity},
            "suppressed": dict(self.suppressed),
            "below_min_severity": self.below_min_severity,
            "outside_window": self.outside_window,
            "prefilter": self.prefilter_engine,
            "shortcuts": sorted(self.shortcuts),
            "probing": dict(self.probing),
            "limits": dict(self.limits),
            "interrupted": self.interrupted or None,
        }

    def render(self) -> str:
        """The human summary printed on stderr."""
        parts = [f"{self.prefiltered} cleared by the {self.prefilter_engine} prefilter"] \
            if self.prefilter_engine != "off" else []
        if self.shortcuts:
            parts.append("harmless records cleared unparsed by the " + ", ".join(sorted(self.shortcuts)))
        cleared = "; ".join(parts) or "prefilter off"
        lines = [f"imds-detect: {len(self.files)} file(s), {self.records} record(s) read "
                 f"({self.parsed} parsed, {cleared})"]
        if self.interrupted:
            lines.append(f"  INTERRUPTED by {self.interrupted}: the input was not read to the end; the alerts "
                         "below are those found before the stop")
        for report in self.files:
            if report.status != "ok":
                lines.append(f"  {report.name}: {report.status.upper()} {report.detail}".rstrip())
        for path, reason in self.missing:
            lines.append(f"  {path}: NOT READ ({reason})")
        if self.skipped:
            detail = ", ".join(f"{reason}={count}" for reason, count in sorted(self.skipped.items()))
            lines.append(f"  skipped records: {sum(self.skipped.values())} ({detail})")
        by_severity = ", ".join(f"{s.label}={self.alerts.get(s.label, 0)}" for s in reversed(Severity))
        lines.append(f"  alerts: {sum(self.alerts.values())} ({by_severity})")
        if self.suppressed:
            detail = ", ".join(f"{entry}={count}" for entry, count in sorted(self.suppressed.items()))
            lines.append(f"  suppressed by allowlist: {sum(self.suppressed.values())} ({detail})")
        if self.probing:
            lines.append(f"  probing: {self.probing['folded']} alert(s) folded into {self.probing['groups']} "
                         f"probing alert(s) ({self.probing['not-listed']} item(s) beyond the listing caps)")
        if self.limits:
            detail = ", ".join(f"{name}={count}" for name, count in sorted(self.limits.items()))
            lines.append(f"  limits hit: {detail} (raise them under [limits] in --config)")
        if self.below_min_severity:
            lines.append(f"  below --min-severity: {self.below_min_severity}")
        if self.outside_window:
            lines.append(f"  outside --since/--until: {self.outside_window}")
        return "\n".join(lines)
