"""Shared helpers of the web, proxy and Zeek log tests: the labelled fixtures and scoped custom formats."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imds_detect import ScanOptions, ScanResult, Severity, scan
from imds_detect.sources import registry
from imds_detect.sources.webconfig import configure_web_formats

FIXTURES = Path(__file__).parent / "fixtures" / "weblogs"
LABELS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "labels.json").read_text(encoding="utf-8"))
REAL_APACHE = Path(__file__).resolve().parents[2] / "shared" / "data" / "weblogs" / \
    "elastic_examples_apache_logs_combined.log"


@contextmanager
def web_formats(log_formats: Sequence[str] = (), json_fields: Sequence[str] = ()) -> Iterator[None]:
    """Custom formats registered for the duration of a block (the registry is process-wide)."""
    saved = dict(registry.BY_NAME)
    try:
        configure_web_formats(log_formats, json_fields)
        yield
    finally:
        for adapter in saved.values():
            registry.register(adapter)


def scan_fixture(name: str, prefilter: bool = True, force: bool = False, **extra: Any) -> ScanResult:
    """Scan one labelled fixture with its options (every severity kept)."""
    label = LABELS[name]
    options = label["options"]
    with web_formats(options.get("log_formats", ()), options.get("json_fields", ())):
        return scan([str(FIXTURES / name)], ScanOptions(format=label["format"] if force else "auto",
                                                        min_severity=Severity.INFORMATIONAL, prefilter=prefilter,
                                                        **extra))


def alerts_by_line(result: ScanResult) -> dict[str, dict[str, str]]:
    """What alerted, by line, in the shape of the labels."""
    found: dict[str, dict[str, str]] = {}
    for alert in result.alerts:
        key = str(alert.source.line)
        assert key not in found, f"two alerts on line {key}"
        found[key] = {"rule": alert.rule_id, "severity": alert.severity.label, "path_class": alert.endpoint.path_class,
                      "outcome": alert.request.outcome if alert.request else ""}
    return found
