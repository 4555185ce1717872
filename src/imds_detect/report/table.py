"""A compact text table for terminals."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from ..model import Alert, iso_utc

HEADER = ("TIME (UTC)", "SEV", "RULE", "HOST", "PROCESS", "ENDPOINT", "CLASS", "SOURCE")
WIDTHS = (20, 8, 24, 16, 18, 34, 10, 0)


def _cell(text: str, width: int) -> str:
    if not width:
        return text
    return text if len(text) <= width else text[: width - 1] + "…"


def write_table(alerts: Iterable[Alert], out: TextIO) -> None:
    rows = [HEADER]
    for alert in alerts:
        endpoint = alert.endpoint
        shown = endpoint.canonical or endpoint.raw
        if endpoint.path:
            shown += endpoint.path if endpoint.path.startswith("/") else " " + endpoint.path
        rows.append((
            iso_utc(alert.timestamp)[:19].replace("T", " "),
            alert.severity.label,
            alert.rule_id.removeprefix("imds-"),
            alert.host,
            alert.process.name or alert.process.path,
            shown,
            endpoint.path_class,
            f"{alert.source.file}:{alert.source.line}",
        ))
    for row in rows:
        cells = (_cell(str(value), width).ljust(width) for value, width in zip(row, WIDTHS, strict=True))
        out.write("  ".join(cells).rstrip())
        out.write("\n")
    if len(rows) == 1:
        out.write("(no alerts)\n")
