"""Sysmon for Windows and Sysmon for Linux: process creation, network connections and DNS queries.

Containers (see :mod:`.winevent` for the details): ``.evtx`` files of the
``Microsoft-Windows-Sysmon/Operational`` channel, XML exports (Event Viewer, ``wevtutil qe /f:xml``,
``Get-WinEvent``), JSON lines (the ``evtx`` package / ``evtx_dump`` shape, Winlogbeat / Elastic Agent
``winlog`` documents, ``journalctl -o json``), and Sysmon for Linux ``<Event>`` XML inside syslog lines.

Events:

- 1 (process create) -> PROCESS: Image, CommandLine, ParentImage, ParentCommandLine (not used), User,
  ProcessId, the SHA256 of Hashes.
- 3 (network connection) -> NETWORK: Image, User, ProcessId, DestinationIp (as written), DestinationPort,
  DestinationHostname (as ``remote_url``), Protocol. ``Initiated=false`` (an accepted inbound connection) gets
  action ``InboundConnectionAccepted``, which the network rule ignores; otherwise ``ConnectionInitiated``.
- 22 (DNS query) -> DNS: QueryName with the querying process (Image, ProcessId, User).

Other Sysmon event ids are skipped as ``unsupported-event-id``; records of other providers as
``unsupported-provider`` (Security-Auditing records as ``other-provider``: the ``winsec`` adapter reads
them, and also reads files that mix both). Timestamps come from ``UtcTime`` (Sysmon writes
``2024-05-14 10:11:12.345``, UTC) or else ``System/TimeCreated/@SystemTime``.

``SourceRef.line`` is the 1-based line where the record starts (for EVTX: its EventRecordID);
``SourceRef.record`` the 0-based index of the record in the file (EVTX record, ``<Event>`` element, or
non-blank line).

Recognition (``--format auto``) needs a Sysmon record in the first 64 KiB: for syslog, a line ending with a
whole ``<Event>`` element after a ``tag:`` prefix. A ``/var/log/syslog`` whose first Sysmon line comes later
must be read with ``--format sysmon`` (its other lines are then ``no-event`` skips). Not supported:
``evtx_dump -o json`` (pretty-printed; use ``-o jsonl``), PowerShell ``ConvertTo-Json`` of
``Get-WinEvent`` objects (unnamed property arrays), and SIEM tables such as Sentinel's ``Event``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import BinaryIO

from ..model import Event, EventKind, ProcessInfo, SourceRef
from .base import Skip, SkipSink, SourceAdapter
from .timeparse import parse_timestamp
from .winevent import SECURITY, SYSMON, WinRecord, iter_events, sniff_kinds, variant

__all__ = ["FORMAT", "SYSMON_ADAPTER", "SysmonAdapter", "event_time", "exe_basename", "sysmon_event"]

FORMAT = "sysmon"
TABLE = "Sysmon"
PROCESS_CREATE, NETWORK_CONNECT, DNS_QUERY = 1, 3, 22
SUPPORTED_IDS = frozenset((PROCESS_CREATE, NETWORK_CONNECT, DNS_QUERY))
INBOUND = "InboundConnectionAccepted"
OUTBOUND = "ConnectionInitiated"


# --------------------------------------------------------------------------- helpers (shared with winsec)


def exe_basename(path: str) -> str:
    """The file name of a Windows or POSIX executable path (``""`` for an empty path)."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _image(value: str) -> str:
    """An image path, or ``""`` for Sysmon's placeholders (``<unknown process>``, ``-``)."""
    value = value.strip()
    return "" if not value or value == "-" or value.startswith("<") else value


def _pid(value: str) -> int | None:
    text = value.strip()
    if text.lower().startswith("0x"):
        try:
            return int(text, 16)
        except ValueError:
            return None
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None  # (int() refuses 4300 digits)


def _port(value: str) -> int | None:
    port = _pid(value)
    return port if port is not None and 0 <= port <= 65535 else None


def _sha256(hashes: str) -> str:
    """The SHA256 of a Sysmon ``Hashes`` value (``SHA1=..,MD5=..,SHA256=..,IMPHASH=..``)."""
    for part in hashes.split(","):
        name, _, value = part.partition("=")
        if name.strip().upper() == "SHA256":
            return value.strip().lower()
    return ""


def _value(data: Mapping[str, str], name: str) -> str:
    value = data.get(name, "")
    return "" if value == "-" else value


def event_time(record: WinRecord, preferred: str = "") -> datetime:
    """The event time: `preferred` (e.g. Sysmon's UtcTime) when it parses, else System/TimeCreated."""
    if preferred:
        try:
            return parse_timestamp(preferred)
        except ValueError:
            pass
    return parse_timestamp(record.system_time)


# --------------------------------------------------------------------------- record -> event


def sysmon_event(record: WinRecord, file: str, line: int, index: int, on_skip: SkipSink) -> Event | None:
    """The event of one Sysmon record, or None after reporting a skip."""
    event_id = record.event_id
    if event_id not in SUPPORTED_IDS:
        on_skip(Skip("unsupported-event-id", file, line, f"Sysmon event {event_id}"))
        return None
    data = record.data
    try:
        moment = event_time(record, data.get("UtcTime", ""))
    except ValueError:
        on_skip(Skip("bad-timestamp", file, line, repr(data.get("UtcTime") or record.system_time)[:100]))
        return None
    image = _image(data.get("Image", ""))
    user = _value(data, "User")
    source = SourceRef(FORMAT, file, line, index)
    if event_id == PROCESS_CREATE:
        parent = _image(data.get("ParentImage", ""))
        process = ProcessInfo(
            name=exe_basename(image),
            path=image,
            pid=_pid(data.get("ProcessId", "")),
            command_line=data.get("CommandLine", ""),
            parent_name=exe_basename(parent),
            parent_path=parent,
            user=user,
            sha256=_sha256(data.get("Hashes", "")),
        )
        return Event(kind=EventKind.PROCESS, timestamp=moment, source=source, host=record.computer, user=user,
                     process=process, action="ProcessCreate", table=TABLE)
    process = ProcessInfo(name=exe_basename(image), path=image, pid=_pid(data.get("ProcessId", "")), user=user)
    if event_id == DNS_QUERY:
        return Event(kind=EventKind.DNS, timestamp=moment, source=source, host=record.computer, user=user,
                     process=process, action="DnsQuery", table=TABLE, dns_query=data.get("QueryName", "").strip())
    initiated = data.get("Initiated", "").strip().lower()
    return Event(
        kind=EventKind.NETWORK,
        timestamp=moment,
        source=source,
        host=record.computer,
        user=user,
        process=process,
        action=INBOUND if initiated == "false" else OUTBOUND,
        table=TABLE,
        remote_ip=_value(data, "DestinationIp").strip(),
        remote_port=_port(data.get("DestinationPort", "")),
        remote_url=_value(data, "DestinationHostname").strip(),
        protocol=_value(data, "Protocol").strip().lower(),
    )


def _convert(record: WinRecord, file: str, line: int, index: int, on_skip: SkipSink) -> Event | None:
    kind = record.kind
    if kind == SYSMON:
        return sysmon_event(record, file, line, index, on_skip)
    if kind == SECURITY:
        on_skip(Skip("other-provider", file, line,
                     f"Security-Auditing event {record.event_id}: read this file with --format winsec"))
        return None
    on_skip(Skip("unsupported-provider", file, line, f"{record.provider or record.channel or '?'} "
                                                      f"event {record.event_id}"))
    return None


# --------------------------------------------------------------------------- the adapter


class SysmonAdapter:
    """Sysmon (Windows EVTX/XML/JSON exports, Sysmon for Linux syslog)."""

    name = FORMAT

    def sniff(self, head: bytes) -> bool:
        """Whether `head` starts a Sysmon log: Sysmon records and no Security-Auditing ones."""
        kinds = sniff_kinds(head)
        return SYSMON in kinds and SECURITY not in kinds

    def variant(self, head: bytes) -> str | None:
        """The container: ``evtx``, ``xml``, ``syslog`` or ``jsonl`` (structure only)."""
        return variant(head)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file in order; unusable records go to `on_skip`. Never raises for bad input."""
        return iter_events(stream, file, on_skip, _convert)


SYSMON_ADAPTER = SysmonAdapter()
_CHECK: SourceAdapter = SYSMON_ADAPTER
