"""`imds-detect watch`: poll the socket tables and judge new connections to metadata endpoints.

What polling can miss: a connection that opens and closes between two polls (a fast `curl` to a local
IMDS takes a few milliseconds) never shows up, and a socket seen only in TIME_WAIT has no owner left
(reported with the process unknown). auditd's connect() records (see contrib/auditd) close that gap:
they are written by the kernel for every call, however short.
"""

from __future__ import annotations

import socket as socket_module
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..detect.detector import Detector
from ..detect.network import address_field_host
from ..knowledge.hosts import match_host
from ..model import Alert, Event, EventKind, ProcessInfo, SourceRef
from .procinfo import pids_by_inode, process_info
from .procnet import Socket, client_sockets, read_sockets

SEEN_LIMIT = 65536  # remembered connections; the oldest are forgotten first


def is_metadata_socket(sock: Socket) -> bool:
    """Whether the remote end is a metadata endpoint (strict address, port rules and neighbours applied)."""
    host = address_field_host(sock.remote_ip)
    return host is not None and match_host(host, sock.remote_port) is not None


class Watcher:
    """Polls /proc/net and emits alerts (and suppressed ones) for connections not seen before."""

    def __init__(self, detector: Detector, on_alert: Callable[[Alert], None],
                 on_suppressed: Callable[[Alert], None] | None = None, proc: Path = Path("/proc")) -> None:
        self.detector = detector
        self.on_alert = on_alert
        self.on_suppressed = on_suppressed
        self.proc = proc
        self.host = socket_module.gethostname()
        self.seen: dict[tuple[str, str, int, str, int], None] = {}
        self.polls = 0
        self.events = 0

    def poll(self) -> None:
        """One look at the socket tables."""
        self.polls += 1
        sockets = client_sockets(read_sockets(self.proc))
        fresh = [s for s in sockets if is_metadata_socket(s) and self._is_new(s)]
        if not fresh:
            return
        owners = pids_by_inode({s.inode for s in fresh if s.inode}, self.proc)
        for sock in fresh:
            pid = owners.get(sock.inode)
            process = process_info(pid, self.proc) if pid else ProcessInfo()
            self._judge(sock, process)

    def _is_new(self, sock: Socket) -> bool:
        key = (sock.table, sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port)  # the connection
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[next(iter(self.seen))]
        return True

    def _judge(self, sock: Socket, process: ProcessInfo) -> None:
        self.events += 1
        action = f"ConnectionObserved {sock.state}"
        if not process.pid:
            action += " (owner already gone)"
        event = Event(
            kind=EventKind.NETWORK, timestamp=datetime.now(UTC),
            source=SourceRef("proc", f"{self.proc}/net/{sock.table}", sock.line, self.events - 1),
            host=self.host, user=process.user, process=process, action=action,
            remote_ip=sock.remote_ip, remote_port=sock.remote_port,
            protocol="tcp" if sock.table.startswith("tcp") else "udp",
            raw=f"{sock.table} {sock.local_ip}:{sock.local_port} -> {sock.remote_ip}:{sock.remote_port} "
                f"{sock.state} inode={sock.inode} pid={process.pid or '?'} exe={process.path or '?'}",
        )
        detection = self.detector.run(event)
        for alert in detection.alerts:
            self.on_alert(alert)
        if self.on_suppressed is not None:
            for alert in detection.suppressed:
                self.on_suppressed(alert)

    def run(self, stop: threading.Event, interval: float, duration: float | None = None) -> None:
        """Poll every `interval` seconds until `stop` is set or `duration` has passed."""
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            started = time.monotonic()
            self.poll()
            if deadline is not None and time.monotonic() >= deadline:
                return
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
