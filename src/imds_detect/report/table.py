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


def _line(values: Iterable[str]) -> str:
    cells = (_cell(str(value), width).ljust(width) for value, width in zip(values, WIDTHS, strict=True))
    return "  ".join(cells).rstrip() + "\n"


def header_line() -> str:
    return _line(HEADER)


def row_line(alert: Alert) -> str:
    """One alert as a table row."""
    endpoint = alert.endpoint
    shown = endpoint.canonical or endpoint.raw
    if endpoint.path:
        shown += endpoint.path if endpoint.path.startswith("/") else " " + endpoint.path
    return _line((
        iso_utc(alert.timestamp)[:19].replace("T", " "),
        alert.severity.label,
        alert.rule_id.removeprefix("imds-"),
        alert.host,
        alert.process.name or alert.process.path or _cloud_caller(alert),
        shown,
        endpoint.path_class,
        f"{alert.source.file}:{alert.source.line}",
    ))


def _cloud_caller(alert: Alert) -> str:
    """For cloud alerts, which have no process: the address the call came from."""
    cloud = alert.cloud or {}
    address = cloud.get("foreign_ip") or cloud.get("source_ip") or ""
    return f"from {address}" if address else ""


def write_table(alerts: Iterable[Alert], out: TextIO) -> None:
    out.write(header_line())
    count = 0
    for alert in alerts:
        out.write(row_line(alert))
        count += 1
    if not count:
        out.write("(no alerts)\n")
