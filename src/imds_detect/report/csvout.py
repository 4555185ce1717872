"""CSV: one flattened row per alert (nested fields joined with dots)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

from ..model import Alert

COLUMNS = (
    "timestamp", "severity", "rule_id", "title", "host", "user",
    "process.name", "process.path", "process.pid", "process.command_line", "process.parent_name",
    "process.parent_path", "endpoint.provider", "endpoint.raw", "endpoint.canonical", "endpoint.port",
    "endpoint.path", "endpoint.path_class", "reasons", "source.format", "source.file", "source.line",
    "source.record", "technique", "tactic", "suppressed_by",
)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            flat[prefix + key] = " | ".join(str(item) for item in value)
        else:
            flat[prefix + key] = "" if value is None else value
    return flat


def csv_writer(out: TextIO) -> csv.DictWriter[str]:
    """A writer that has already written the header row."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    return writer


def csv_row(alert: Alert) -> dict[str, Any]:
    return _flatten(alert.as_dict())


def write_csv(alerts: Iterable[Alert], out: TextIO) -> None:
    writer = csv_writer(out)
    for alert in alerts:
        writer.writerow(csv_row(alert))
