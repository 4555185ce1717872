"""Observations as Defender XDR advanced-hunting rows (DeviceProcessEvents / DeviceNetworkEvents columns).

The shape is that of ``samples/defender-sample.jsonl``: an export without ``Type`` (the table follows from
``ActionType``), 7-digit fractional seconds, ``FolderPath`` holding the full executable path. DNS
lookups become ``DnsConnectionInspected`` rows (network inspection: no process attached).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..telemetry import Observation

DEVICE_ID = hashlib.sha1(b"imds-detect validate").hexdigest()


def timestamp(moment: datetime) -> str:
    """Defender's timestamp: ISO 8601 UTC with 7 fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _protocol(obs: Observation) -> str:
    if obs.transport:
        return obs.transport.capitalize()
    return "Udp" if obs.remote_port == 53 else "Tcp"  # a resolver's connect() to port 53 is UDP in practice


def mde_rows(observations: Iterable[Observation], host: str) -> list[dict[str, Any]]:
    """One row per observation."""
    rows: list[dict[str, Any]] = []
    for report, obs in enumerate(observations, 1):
        proc = obs.proc
        base: dict[str, Any] = {"Timestamp": timestamp(obs.time), "DeviceId": DEVICE_ID, "DeviceName": host}
        parent_name = proc.parent_exe.rsplit("/", 1)[-1]
        if obs.kind == "exec":
            rows.append({**base, "ActionType": "ProcessCreated", "FileName": proc.name, "FolderPath": proc.exe,
                         "ProcessCommandLine": proc.command_line, "ProcessId": proc.pid,
                         "AccountName": proc.user, "AccountDomain": host,
                         "InitiatingProcessFileName": parent_name, "InitiatingProcessFolderPath": proc.parent_exe,
                         "InitiatingProcessCommandLine": proc.parent_command_line,
                         "InitiatingProcessId": proc.ppid, "ReportId": report})
        elif obs.kind == "connect":
            action = "ConnectionSuccess" if obs.result in ("0", "-115") else "ConnectionFailed"
            rows.append({**base, "ActionType": action, "RemoteIP": obs.remote_ip, "RemotePort": obs.remote_port,
                         "RemoteUrl": "", "Protocol": _protocol(obs), "InitiatingProcessFileName": proc.name,
                         "InitiatingProcessFolderPath": proc.exe, "InitiatingProcessCommandLine": proc.command_line,
                         "InitiatingProcessId": proc.pid, "InitiatingProcessAccountName": proc.user,
                         "InitiatingProcessAccountDomain": host, "InitiatingProcessParentFileName": parent_name,
                         "ReportId": report})
        elif obs.kind == "dns":
            extra = {"direction": "Out", "query": obs.qname, "query_type": obs.qtype,
                     "answers": [obs.answer] if obs.answer else []}
            rows.append({**base, "ActionType": "DnsConnectionInspected", "RemoteIP": obs.remote_ip,
                         "RemotePort": 53, "Protocol": "Udp", "AdditionalFields": json.dumps(extra),
                         "ReportId": report})
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """A Defender portal CSV export: the union of the columns, quoted, empty where a row has no value."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, quoting=csv.QUOTE_ALL, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(rows: list[dict[str, Any]], path: Path) -> bool:
    """The rows as a Parquet table (all columns strings, as a data-lake landing does); False without pyarrow."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        return False
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = pa.table({name: [None if row.get(name) is None else str(row[name]) for row in rows] for name in columns})
    pq.write_table(table, str(path))
    return True
