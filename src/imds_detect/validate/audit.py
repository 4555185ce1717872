"""Capture through the kernel audit subsystem: temporary rules, records read from the audit netlink socket.

While capturing, this process is the audit daemon (``AUDIT_SET`` pid): the kernel sends it every record,
and the lines written are exactly what auditd would have written to audit.log (``type=NAME msg=...``).
The rule is narrow: execve and connect of processes whose login uid (auid) is in a range reserved for
this run; each test's processes get their own auid (written to /proc/self/loginuid before exec), so
records are attributed to tests without guessing. On stop the rule is deleted and the audit status
(enabled, backlog limit, daemon pid) is put back as it was.

Not usable (and the runner falls back to strace) when: no auditctl, no permission on the netlink socket
(containers without CAP_AUDIT_CONTROL), the audit configuration is locked (enabled=2), or an audit
daemon already receives the records.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

NETLINK_AUDIT = 9
AUDIT_GET, AUDIT_SET = 1000, 1001
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
STATUS_ENABLED, STATUS_PID, STATUS_BACKLOG_LIMIT = 0x1, 0x4, 0x10
_STATUS = struct.Struct("=IIIIIIIIIII")  # struct audit_status: mask, enabled, failure, pid, rate_limit, backlog...
RECORD_TYPES = {1006: "LOGIN", 1300: "SYSCALL", 1302: "PATH", 1305: "CONFIG_CHANGE", 1306: "SOCKADDR",
                1307: "CWD", 1309: "EXECVE", 1320: "EOE", 1321: "BPRM_FCAPS", 1327: "PROCTITLE"}
_STAMP = re.compile(r"audit\((\d+\.\d+):(\d+)\)")
_AUID = re.compile(r" auid=(\d+) ")
KEY = "imds_validate"
UNSET_AUID = 4294967295


class AuditUnavailable(RuntimeError):
    """The kernel audit subsystem cannot be used here (the reason says why)."""


@dataclass(frozen=True)
class AuditStatus:
    enabled: int
    pid: int
    backlog_limit: int


def record_line(record_type: int, payload: bytes) -> str:
    """An audit.log line as auditd writes it from one netlink record."""
    name = RECORD_TYPES.get(record_type, f"UNKNOWN[{record_type}]")
    text = payload.rstrip(b"\0").decode("utf-8", "replace").rstrip()
    return f"type={name} msg={text}"


def group_by_auid(lines: list[str], key: str, first: int, count: int) -> dict[int, list[str]]:
    """Lines of the events whose SYSCALL carries `key`, by test index (auid - first)."""
    owner: dict[str, int] = {}
    marker = f'key="{key}"'
    for line in lines:
        if line.startswith("type=SYSCALL ") and marker in line:
            stamp, auid = _STAMP.search(line), _AUID.search(line)
            if stamp and auid and first <= int(auid.group(1)) < first + count:
                owner[stamp.group(2)] = int(auid.group(1)) - first
    out: dict[int, list[str]] = {}
    for line in lines:
        stamp = _STAMP.search(line)
        if stamp and stamp.group(2) in owner:
            out.setdefault(owner[stamp.group(2)], []).append(line)
    return out


class KernelAudit:
    """Temporary audit rules plus a netlink reader; use as a context manager."""

    mechanism = "kernel-audit"

    def __init__(self, tests: int, key: str = KEY) -> None:
        self.key = key
        self.count = tests
        self.first_auid = 3_000_000_000 + secrets.randbelow(1_000_000_000)
        self.lines: list[str] = []
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._saved: AuditStatus | None = None
        self._rule: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def detail(self) -> str:
        return (f"kernel audit via netlink (rule: -S execve -S connect -F auid>={self.first_auid} "
                f"-F auid<={self.first_auid + self.count - 1} -k {self.key})")

    # -- netlink ---------------------------------------------------------------------------------------
    def _send(self, message_type: int, payload: bytes, seq: int) -> None:
        assert self._socket is not None
        header = struct.pack("=IHHII", 16 + len(payload), message_type, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
        self._socket.send(header + payload)

    def _reply(self, seq: int, want: int | None = None) -> bytes:
        """The payload of the reply to `seq` (`want` = message type expected besides the ACK)."""
        assert self._socket is not None
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            data = self._socket.recv(65536)
            length, kind, _, number, _ = struct.unpack_from("=IHHII", data)
            if number != seq:
                continue
            if kind == NLMSG_ERROR:
                error = -struct.unpack_from("=i", data, 16)[0]
                if error:
                    raise AuditUnavailable(f"audit netlink request refused: {os.strerror(error)}")
                if want is None:
                    return b""
                continue
            if want is None or kind == want:
                return data[16:length]
        raise AuditUnavailable("no answer from the kernel audit subsystem")

    def status(self) -> AuditStatus:
        self._send(AUDIT_GET, b"", 1)
        fields = _STATUS.unpack_from(self._reply(1, AUDIT_GET).ljust(_STATUS.size, b"\0"))
        return AuditStatus(enabled=fields[1], pid=fields[3], backlog_limit=fields[5])

    def _set(self, mask: int, enabled: int = 0, pid: int = 0, backlog_limit: int = 0, seq: int = 2) -> None:
        self._send(AUDIT_SET, _STATUS.pack(mask, enabled, 0, pid, 0, backlog_limit, 0, 0, 0, 0, 0), seq)
        self._reply(seq)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> KernelAudit:
        if shutil.which("auditctl") is None:
            raise AuditUnavailable("auditctl not installed (Debian/Ubuntu: apt-get install auditd)")
        try:
            self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
            self._socket.bind((0, 0))
            self._socket.settimeout(2)
            current = self.status()
            if current.enabled == 2:
                raise AuditUnavailable("the audit configuration is locked (enabled 2)")
            if current.pid and os.path.exists(f"/proc/{current.pid}"):
                raise AuditUnavailable(f"an audit daemon (pid {current.pid}) already receives the records")
            with_ack = STATUS_PID | STATUS_ENABLED | STATUS_BACKLOG_LIMIT
            self._set(with_ack, enabled=1, pid=os.getpid(), backlog_limit=max(current.backlog_limit, 8192))
            self._saved = current
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self._thread = threading.Thread(target=self._read, name="audit-reader", daemon=True)
            self._thread.start()
            self._rule = ["always,exit", "-F", "arch=b64", "-S", "execve", "-S", "connect",
                          "-F", f"auid>={self.first_auid}", "-F", f"auid<={self.first_auid + self.count - 1}",
                          "-k", self.key]
            added = subprocess.run(["auditctl", "-a", *self._rule], capture_output=True, text=True, timeout=20)
            if added.returncode != 0:
                self._rule = []
                raise AuditUnavailable(f"auditctl -a: {added.stderr.strip()}")
            probe = subprocess.run([shutil.which("true") or "/bin/true"], preexec_fn=self.login_as(self.count),
                                   capture_output=True, timeout=20)  # an auid outside the rule: not recorded
            if probe.returncode != 0:
                raise AuditUnavailable("cannot set the login uid of test processes")
        except (OSError, subprocess.SubprocessError, AuditUnavailable) as error:
            self.stop()
            if isinstance(error, AuditUnavailable):
                raise
            raise AuditUnavailable(f"kernel audit not usable: {error}") from None
        return self

    def _read(self) -> None:
        assert self._socket is not None
        self._socket.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = self._socket.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 16:
                continue
            kind = struct.unpack_from("=H", data, 4)[0]
            if 1100 <= kind < 3000:  # audit records (their nlmsg_len leaves out the header: take the datagram)
                with self._lock:
                    self.lines.append(record_line(kind, data[16:]))
                    self._last = time.monotonic()

    def login_as(self, test: int) -> Callable[[], None]:
        """A preexec function giving the process (and its children) test `test`'s auid (`count` is the
        probe's, outside the rule)."""
        auid = str(self.first_auid + test).encode()

        def preexec() -> None:
            descriptor = os.open("/proc/self/loginuid", os.O_WRONLY)
            try:
                os.write(descriptor, auid)
            finally:
                os.close(descriptor)

        return preexec

    def drain(self, quiet: float = 0.3, limit: float = 5.0) -> None:
        """Wait until the kernel has delivered the records (nothing new for `quiet` seconds)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._lock:
                idle = time.monotonic() - self._last
            if idle >= quiet:
                return
            time.sleep(0.05)

    def by_test(self) -> dict[int, list[str]]:
        """The captured lines of each test (index -> audit.log lines)."""
        with self._lock:
            lines = list(self.lines)
        return group_by_auid(lines, self.key, self.first_auid, self.count)

    def stop(self) -> None:
        """Delete the rule and restore the audit status; safe to call more than once."""
        if self._rule:
            subprocess.run(["auditctl", "-d", *self._rule], capture_output=True, timeout=20)
            self._rule = []
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._socket is not None:
            if self._saved is not None:
                with contextlib.suppress(OSError, AuditUnavailable):
                    self._set(STATUS_ENABLED | STATUS_BACKLOG_LIMIT | STATUS_PID, enabled=self._saved.enabled,
                              pid=0, backlog_limit=self._saved.backlog_limit, seq=3)
                self._saved = None
            self._socket.close()
            self._socket = None

    def __enter__(self) -> KernelAudit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
