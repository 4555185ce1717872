"""Observations as Sysmon for Linux records in syslog lines (event 1 process create, 3 network connect),
as rsyslog writes them to a file (control characters escaped as ``#ooo``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from ..telemetry import Observation

PROVIDER = '<Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/>'


def _guid(pid: int) -> str:
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_OID, f"imds-detect-validate-{pid}")).upper() + "}"


def _data(fields: list[tuple[str, object]]) -> str:
    return "".join(f'<Data Name="{name}">{escape(str(value))}</Data>' for name, value in fields)


def sysmon_lines(observations: Iterable[Observation], host: str) -> list[str]:
    """One syslog line per exec/connect observation (Sysmon for Linux has no DNS event)."""
    lines: list[str] = []
    for record, obs in enumerate(observations, 1):
        if obs.kind not in ("exec", "connect"):
            continue
        proc = obs.proc
        moment = obs.time.astimezone(UTC)
        utc = moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        common: list[tuple[str, object]] = [("RuleName", "-"), ("UtcTime", utc), ("ProcessGuid", _guid(proc.pid)),
                                            ("ProcessId", proc.pid), ("Image", proc.exe)]
        if obs.kind == "exec":
            event_id = 1
            fields = common + [("FileVersion", "-"), ("Description", "-"), ("Product", "-"), ("Company", "-"),
                               ("OriginalFileName", "-"), ("CommandLine", proc.command_line),
                               ("CurrentDirectory", proc.cwd), ("User", proc.user), ("LogonId", 0),
                               ("TerminalSessionId", 4294967295), ("IntegrityLevel", "no level"), ("Hashes", "-"),
                               ("ParentProcessGuid", _guid(proc.ppid or 0)), ("ParentProcessId", proc.ppid or 0),
                               ("ParentImage", proc.parent_exe or "-"),
                               ("ParentCommandLine", proc.parent_command_line or "-"), ("ParentUser", proc.user)]
        else:
            event_id = 3
            v6 = ":" in obs.remote_ip
            fields = common + [("User", proc.user), ("Protocol", obs.transport or "tcp"), ("Initiated", "true"),
                               ("SourceIsIpv6", str(v6).lower()), ("SourceIp", "::1" if v6 else "127.0.0.1"),
                               ("SourceHostname", "-"), ("SourcePort", 40000 + record), ("SourcePortName", "-"),
                               ("DestinationIsIpv6", str(v6).lower()), ("DestinationIp", obs.remote_ip),
                               ("DestinationHostname", "-"), ("DestinationPort", obs.remote_port),
                               ("DestinationPortName", "-")]
        system = (f"<System>{PROVIDER}<EventID>{event_id}</EventID><Version>5</Version><Level>4</Level>"
                  f"<Task>{event_id}</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
                  f'<TimeCreated SystemTime="{moment.strftime("%Y-%m-%dT%H:%M:%S.%f")}000Z"/>'
                  f"<EventRecordID>{record}</EventRecordID><Correlation/>"
                  f'<Execution ProcessID="1" ThreadID="1"/><Channel>Linux-Sysmon/Operational</Channel>'
                  f'<Computer>{escape(host)}</Computer><Security UserId="0"/></System>')
        prefix = _syslog_time(moment)
        line = f"{prefix} {host} sysmon: <Event>{system}<EventData>{_data(fields)}</EventData></Event>"
        lines.append(rsyslog_escape(line))
    return lines


def rsyslog_escape(line: str) -> str:
    """Control characters as rsyslog writes them to a file by default (``#012`` for a newline)."""
    return "".join(f"#{ord(c):03o}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in line)


def _syslog_time(moment: datetime) -> str:
    """The RFC 3164 stamp rsyslog writes: ``May  4 10:11:12``."""
    return f"{moment:%b} {moment.day:>2} {moment:%H:%M:%S}"
