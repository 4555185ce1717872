"""Incidents after the alerts: JSON lines (``"type": "incident"``) or a text timeline for the table output."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import orjson

from ..cloud.incident import Incident
from ..model import iso_utc


def incident_lines(incident: Incident) -> list[str]:
    """An incident as readable text: a header and its timeline."""
    lines = [f"INCIDENT {incident.id} [{incident.severity.label}] {incident.title}",
             f"  workload {incident.workload}; principal(s) {', '.join(incident.principals)}",
             f"  joined: {incident.join}"]
    for entry in incident.timeline:
        stamp = iso_utc(entry.time)[:19].replace("T", " ")
        if entry.side == "host":
            process = entry.detail.get("process", {})
            command = process.get("command_line") or ""
            lines.append(f"  {stamp}  host   {entry.summary}" + (f"  cmd: {command}" if command else ""))
        else:
            agent = entry.detail.get("user_agent", "")
            error = entry.detail.get("error", "")
            lines.append(f"  {stamp}  cloud  {entry.summary}  ua: {agent}" + (f"  error: {error}" if error else ""))
    return lines


def write_incidents(incidents: Iterable[Incident], out: TextIO, output: str) -> None:
    """Write incidents in the alert output's format (CSV holds alert rows only: incidents are left out)."""
    items = list(incidents)
    if not items or output == "csv":
        return
    if output == "jsonl":
        for incident in items:
            out.write(orjson.dumps(incident.as_dict()).decode() + "\n")
        return
    out.write("\n")
    for incident in items:
        out.write("\n".join(incident_lines(incident)) + "\n\n")
