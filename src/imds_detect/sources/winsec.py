"""The Windows Security log: process creation (4688) and Windows Filtering Platform connections (5156).

Containers are those of :mod:`.winevent`: ``.evtx`` files of the Security channel, XML exports and JSON
lines (``evtx`` / ``evtx_dump`` shape, Winlogbeat / Elastic Agent ``winlog`` documents).

Events:

- 4688 (a new process has been created) -> PROCESS: NewProcessName, CommandLine (present only when
  "Include command line in process creation events" is enabled), ParentProcessName, NewProcessId (hex).
  The account is TargetDomainName\\TargetUserName when set (the new process runs as another account),
  else SubjectDomainName\\SubjectUserName.
- 5156 (the Windows Filtering Platform permitted a connection) -> NETWORK: Application, ProcessID,
  DestAddress, DestPort, Protocol (6 tcp, 17 udp). Direction ``%%14593`` (outbound) gets action
  ``ConnectionPermitted``; ``%%14592`` (inbound) gets ``InboundConnectionAccepted``, which the network rule
  ignores.

Application is a device path (``\\device\\harddiskvolume2\\windows\\system32\\curl.exe``). Which drive a
volume is cannot be read from the event, so it is learned from the same file: when a 4688 of the same
computer names the same process id (as the new process, or as the creator through ParentProcessName) with a
drive path whose remainder equals the device path's, that volume is that drive for the computer from then
on. A learned volume turns device paths into drive paths (``C:\\windows\\system32\\curl.exe``), so the
allowlist and masquerade checks apply. Until a volume is known, ``process.path`` stays empty and only
``process.name`` is set: a device path would never match an allowlist path and would make every cloud agent
look like a masquerade. Such connections still alert; they cannot be suppressed by path.

Sysmon records in the same file (e.g. a ForwardedEvents export) are read like the ``sysmon`` adapter does.
Other event ids are ``unsupported-event-id`` skips, other providers ``unsupported-provider``.
``SourceRef.line`` is the 1-based line of the record (for EVTX: its EventRecordID).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import BinaryIO

from ..model import Event, EventKind, ProcessInfo, SourceRef
from .base import Skip, SkipSink, SourceAdapter
from .sysmon import event_time, exe_basename, sysmon_event
from .winevent import SECURITY, SYSMON, WinRecord, iter_events, sniff_kinds, variant

__all__ = ["FORMAT", "WINSEC_ADAPTER", "SecurityConverter", "WinsecAdapter", "split_device_path"]

FORMAT = "winsec"
TABLE = "Security"
PROCESS_CREATED, CONNECTION_PERMITTED = 4688, 5156
SUPPORTED_IDS = frozenset((PROCESS_CREATED, CONNECTION_PERMITTED))
INBOUND = "InboundConnectionAccepted"
OUTBOUND = "ConnectionPermitted"
_INBOUND_DIRECTIONS = frozenset(("%%14592", "inbound"))
_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp"}
_NO_ACCOUNT = frozenset(("", "-", "S-1-0-0"))
PID_MEMORY = 65536  # process ids remembered per file for volume learning (oldest forgotten first)


def split_device_path(path: str) -> tuple[str, str] | None:
    """(volume, rest) of ``\\device\\harddiskvolume2\\windows\\x.exe`` -> (``harddiskvolume2``,
    ``\\windows\\x.exe``); None for drive paths and names."""
    text = path.strip()
    lowered = text.lower()
    for prefix in ("\\device\\", "\\\\?\\globalroot\\device\\"):
        if lowered.startswith(prefix):
            volume, sep, rest = text[len(prefix):].partition("\\")
            if volume and sep:
                return volume.lower(), "\\" + rest
    return None


def _drive_split(path: str) -> tuple[str, str] | None:
    """(``C:``, ``\\windows\\x.exe``) of a drive path, else None."""
    if len(path) > 3 and path[1] == ":" and path[0].isascii() and path[0].isalpha() and path[2] in "\\/":
        return path[:2].upper(), path[2:].replace("/", "\\")
    return None


def _number(value: str) -> int | None:
    text = value.strip()
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        return int(text) if text.isascii() and text.isdigit() else None
    except ValueError:
        return None


def _account(data: Mapping[str, str], prefix: str) -> str:
    name = data.get(prefix + "UserName", "").strip()
    if name in _NO_ACCOUNT or data.get(prefix + "UserSid", "").strip() == "S-1-0-0":
        return ""
    domain = data.get(prefix + "DomainName", "").strip()
    return f"{domain}\\{name}" if domain and domain != "-" else name


class SecurityConverter:
    """Security-Auditing records -> events, learning device volume -> drive letter as it reads (one per file)."""

    def __init__(self) -> None:
        self.volumes: dict[tuple[str, str], str] = {}  # (computer, volume) -> "C:"
        self.pids: OrderedDict[tuple[str, int], str] = OrderedDict()  # (computer, pid) -> drive path

    def __call__(self, record: WinRecord, file: str, line: int, index: int, on_skip: SkipSink) -> Event | None:
        kind = record.kind
        if kind == SYSMON:
            return sysmon_event(record, file, line, index, on_skip)
        if kind != SECURITY:
            on_skip(Skip("unsupported-provider", file, line,
                         f"{record.provider or record.channel or '?'} event {record.event_id}"))
            return None
        if record.event_id not in SUPPORTED_IDS:
            on_skip(Skip("unsupported-event-id", file, line, f"Security event {record.event_id}"))
            return None
        try:
            moment = event_time(record)
        except ValueError:
            on_skip(Skip("bad-timestamp", file, line, repr(record.system_time)[:100]))
            return None
        source = SourceRef(FORMAT, file, line, index)
        if record.event_id == PROCESS_CREATED:
            return self._process(record, moment, source)
        return self._connection(record, moment, source)

    # -- 4688
    def _remember(self, computer: str, pid: int | None, path: str) -> None:
        if pid is None or _drive_split(path) is None:
            return
        key = (computer.lower(), pid)
        self.pids[key] = path
        self.pids.move_to_end(key)
        if len(self.pids) > PID_MEMORY:
            self.pids.popitem(last=False)

    def _process(self, record: WinRecord, moment: datetime, source: SourceRef) -> Event:
        data = record.data
        path = data.get("NewProcessName", "").strip()
        parent = data.get("ParentProcessName", "").strip()
        pid = _number(data.get("NewProcessId", ""))
        user = _account(data, "Target") or _account(data, "Subject")
        self._remember(record.computer, pid, path)
        self._remember(record.computer, _number(data.get("ProcessId", "")), parent)
        process = ProcessInfo(
            name=exe_basename(path),
            path=path,
            pid=pid,
            command_line=data.get("CommandLine", ""),
            parent_name=exe_basename(parent),
            parent_path=parent,
            user=user,
        )
        return Event(kind=EventKind.PROCESS, timestamp=moment, source=source,
                     host=record.computer, user=user, process=process, action="ProcessCreated", table=TABLE)

    # -- 5156
    def drive_path(self, computer: str, application: str, pid: int | None) -> str:
        """The drive path of a 5156 Application, or ``""`` while its volume is unknown."""
        if _drive_split(application) is not None:
            return application
        split = split_device_path(application)
        if split is None:
            return ""
        volume, rest = split
        host = computer.lower()
        drive = self.volumes.get((host, volume))
        if drive is None and pid is not None:
            known = self.pids.get((host, pid))
            known_split = _drive_split(known) if known else None
            if known_split is not None and known_split[1].lower() == rest.lower():
                drive = known_split[0]
                self.volumes[(host, volume)] = drive
        return drive + rest if drive else ""

    def _connection(self, record: WinRecord, moment: datetime, source: SourceRef) -> Event:
        data = record.data
        application = data.get("Application", "").strip()
        pid = _number(data.get("ProcessID", data.get("ProcessId", "")))
        path = self.drive_path(record.computer, application, pid)
        direction = data.get("Direction", "").strip().lower()
        protocol = data.get("Protocol", "").strip()
        port = _number(data.get("DestPort", ""))
        return Event(
            kind=EventKind.NETWORK,
            timestamp=moment,
            source=source,
            host=record.computer,
            process=ProcessInfo(name=exe_basename(path or application), path=path, pid=pid),
            action=INBOUND if direction in _INBOUND_DIRECTIONS else OUTBOUND,
            table=TABLE,
            remote_ip=data.get("DestAddress", "").strip(),
            remote_port=port if port is not None and port <= 65535 else None,
            protocol=_PROTOCOLS.get(protocol, protocol.lower()),
        )


class WinsecAdapter:
    """Windows Security log (4688, 5156) from EVTX, XML and JSON exports; Sysmon records in the same file too."""

    name = FORMAT

    def sniff(self, head: bytes) -> bool:
        """Whether `head` starts a log holding Security-Auditing records."""
        return SECURITY in sniff_kinds(head)

    def variant(self, head: bytes) -> str | None:
        """The container: ``evtx``, ``xml``, ``syslog`` or ``jsonl`` (structure only)."""
        return variant(head)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of the file in order; unusable records go to `on_skip`. Never raises for bad input."""
        return iter_events(stream, file, on_skip, SecurityConverter())


WINSEC_ADAPTER = WinsecAdapter()
_CHECK: SourceAdapter = WINSEC_ADAPTER
