"""The outcome of a validate run: per test the expected signal, what was observed, the alerts, the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TextIO

from .catalog import AtomicTest
from .detection import FormatResult, alert_summary


@dataclass
class Outcome:
    """One test's result."""

    test: AtomicTest
    observed: list[str]  # one line per thing seen (process, connection, DNS, HTTP request, response)
    brief: str  # the observed column of the table
    results: list[FormatResult]
    verdict: str
    reasons: list[str]

    def alert_cell(self) -> str:
        expect = self.test.expect
        total = len(self.results)
        if expect is None:
            alerted = sum(1 for r in self.results if r.alerts)
            entries = sorted({a.suppressed_by or "" for r in self.results for a in r.suppressed} - {""})
            if alerted:
                return f"ALERTED in {alerted}/{total} formats"
            return f"none (suppressed: {', '.join(entries) or '-'})"
        matched = [r for r in self.results if r.hits(expect)]
        if matched:
            severity = max(a.severity for r in matched for a in r.hits(expect))
            return f"{severity.label} {expect} ({len(matched)}/{total} formats)"
        found = sorted({f"{a.endpoint.provider}/{a.endpoint.path_class}" for r in self.results for a in r.alerts})
        return "none" if not found else "only " + ", ".join(found)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.test.id,
            "name": self.test.name,
            "origin": self.test.origin,
            "expected_signal": self.test.expected_signal,
            "expected_alert": str(self.test.expect) if self.test.expect else "none (allowlisted)",
            "observed": self.observed,
            "alerts": [alert_summary(a, r.format) for r in self.results for a in r.alerts],
            "suppressed": [alert_summary(a, r.format) for r in self.results for a in r.suppressed],
            "files": {r.format: str(r.file) for r in self.results},
            "verdict": self.verdict,
            "reasons": self.reasons,
        }


@dataclass
class Report:
    """Everything `validate` prints and writes."""

    mode: str  # "real" or "synthetic"
    capture: str  # kernel-audit | strace | synthetic
    capture_detail: str
    output_dir: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[tuple[AtomicTest, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.outcomes) and all(o.verdict == "pass" for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "capture_detail": self.capture_detail,
            "mode": self.mode,
            "output_dir": self.output_dir,
            "tests": [o.as_dict() for o in self.outcomes],
            "skipped": [{"id": t.id, "name": t.name, "reason": why} for t, why in self.skipped],
            "notes": self.notes,
        }


COLUMNS = (("TEST", 24), ("EXPECTED SIGNAL", 38), ("OBSERVED", 46), ("ALERT", 34), ("VERDICT", 7))


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def write_table(report: Report, out: TextIO) -> None:
    """The human-readable table (long cells are cut; the JSON has everything)."""
    label = "SYNTHETIC telemetry (nothing was run)" if report.mode == "synthetic" else "real run"
    out.write(f"imds-detect validate: {label}; capture: {report.capture_detail}\n")
    out.write("  ".join(_cell(name, width) for name, width in COLUMNS).rstrip() + "\n")
    for outcome in report.outcomes:
        cells = (outcome.test.id, outcome.test.expected_signal, outcome.brief, outcome.alert_cell(), outcome.verdict)
        row = "  ".join(_cell(text, width) for text, (_, width) in zip(cells, COLUMNS, strict=True))
        out.write(row.rstrip() + "\n")
    for test, why in report.skipped:
        out.write(f"{_cell(test.id, COLUMNS[0][1])}  skipped: {why}\n")
    for outcome in report.outcomes:
        for reason in outcome.reasons:
            out.write(f"{outcome.test.id}: {reason}\n")
    for note in report.notes:
        out.write(f"note: {note}\n")
    passed = sum(1 for o in report.outcomes if o.verdict == "pass")
    out.write(f"{passed}/{len(report.outcomes)} passed; telemetry and logs in {report.output_dir}\n")
