"""What a test run produced on the host, before it is written in any log format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..model import Event, EventKind
from ..sources.auditd_process import join_argv


@dataclass(frozen=True)
class Proc:
    """A process as the telemetry saw it."""

    pid: int
    exe: str
    argv: tuple[str, ...] = ()
    command_line: str = ""  # join_argv(argv) when argv is known
    ppid: int | None = None
    parent_exe: str = ""
    parent_command_line: str = ""
    uid: int = 0
    user: str = "root"
    cwd: str = "/"

    @property
    def name(self) -> str:
        return self.exe.rsplit("/", 1)[-1]

    @property
    def args(self) -> tuple[str, ...]:
        """argv, or the command line split on spaces when only that is known."""
        if self.argv:
            return self.argv
        return tuple(self.command_line.split(" ")) if self.command_line else (self.exe,)


def make_proc(pid: int, exe: str, argv: tuple[str, ...], ppid: int | None = None, parent: Proc | None = None,
              uid: int = 0, user: str = "root") -> Proc:
    """A Proc whose command line is built from argv as the auditd parser builds it."""
    return Proc(pid, exe, argv, join_argv(argv), ppid, parent.exe if parent else "",
                parent.command_line if parent else "", uid, user)


@dataclass(frozen=True)
class Observation:
    """One thing that happened: a process ran (exec), connected (connect), or a name was looked up (dns)."""

    kind: str  # "exec" | "connect" | "dns"
    time: datetime
    proc: Proc
    remote_ip: str = ""
    remote_port: int | None = None
    transport: str = ""  # "tcp", "udp" or "" when the telemetry does not say
    result: str = "0"  # syscall result: "0", "-115" (EINPROGRESS)...
    qname: str = ""
    qtype: str = "A"
    answer: str = ""
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """One line for the report."""
        if self.kind == "exec":
            return f"execve {self.proc.exe}: {self.proc.command_line}"
        if self.kind == "connect":
            host = f"[{self.remote_ip}]" if ":" in self.remote_ip else self.remote_ip
            transport = f"/{self.transport}" if self.transport else ""
            return f"connect {host}:{self.remote_port}{transport} by {self.proc.exe} (pid {self.proc.pid})"
        return f"dns {self.qtype} {self.qname} -> {self.answer or 'no answer'}"


def from_event(event: Event) -> Observation | None:
    """An Observation from an event a source adapter parsed (process and network events only)."""
    process = event.process
    proc = Proc(pid=process.pid or 0, exe=process.path or process.name, command_line=process.command_line,
                ppid=process.parent_pid, parent_exe=process.parent_path or process.parent_name,
                user=event.user or process.user or "")
    if event.kind is EventKind.PROCESS:
        return Observation("exec", event.timestamp, proc)
    if event.kind is EventKind.NETWORK:
        return Observation("connect", event.timestamp, proc, event.remote_ip, event.remote_port,
                           event.protocol.lower())
    return None
