"""Capture by ``strace -f``: execve and connect of every process a test starts, parsed into observations.

Used when the kernel audit subsystem is not available. strace sees the same syscalls audit rules
would (execve with its full argv, connect with its sockaddr), for the traced process tree only.
Threads are folded into their process (a connect from curl's resolver thread is curl's), and a
child's parent comes from the clone/fork that created it.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .telemetry import Observation, Proc, make_proc

TRACED = "execve,execveat,connect,clone,clone3,fork,vfork"
_LINE = re.compile(r"(\d+)\s+(\d+\.\d+)\s+(.*)")
_CALL = re.compile(r"([a-z0-9_]+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)", re.S)
_RESUMED = re.compile(r"<\.\.\. ([a-z0-9_]+) resumed>(.*)", re.S)
_UNFINISHED = " <unfinished ...>"
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_INET = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'inet_pton\(AF_INET6,\s*"([^"]+)"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


def strace_command(argv: list[str], output: str) -> list[str]:
    """The command line that runs `argv` under strace, writing the trace to `output`."""
    return ["strace", "-f", "-qq", "-ttt", "-s", "65536", "-e", "signal=none", "-e", f"trace={TRACED}",
            "-o", output, "--", *argv]


def c_string(text: str, start: int) -> tuple[str, int]:
    """The C string literal at text[start] (a double quote), unescaped, and the index after it (and after
    strace's ``...`` truncation mark)."""
    if text[start] != '"':
        raise ValueError(f"expected a string at {start}")
    out: list[str] = []
    raw = bytearray()
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            i += 1
            if text.startswith("...", i):
                i += 3
            break
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                raw.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            octal = re.match(r"[0-7]{1,3}", text[i + 1:i + 4])
            if octal:
                raw.append(int(octal.group(), 8))
                i += 1 + len(octal.group())
                continue
            _flush(raw, out)
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        _flush(raw, out)
        out.append(char)
        i += 1
    else:
        raise ValueError("unterminated string")
    _flush(raw, out)
    return "".join(out), i


def _flush(raw: bytearray, out: list[str]) -> None:
    if raw:
        out.append(raw.decode("utf-8", "replace"))
        raw.clear()


def string_array(text: str, start: int) -> tuple[list[str], int]:
    """The ``["a", "b"]`` array at text[start]."""
    if text[start] != "[":
        raise ValueError(f"expected an array at {start}")
    items: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "]":
            return items, i + 1
        if char == '"':
            value, i = c_string(text, i)
            items.append(value)
        else:
            i += 1
    raise ValueError("unterminated array")


@dataclass
class _Call:
    pid: int
    time: float
    name: str
    args: str
    result: str
    line: int


def calls(text: str) -> list[_Call]:
    """The completed syscalls of a trace, with `<unfinished ...>` / `<... resumed>` pairs joined."""
    out: list[_Call] = []
    pending: dict[int, tuple[float, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _LINE.match(line)
        if not match:
            continue
        pid, moment, rest = int(match.group(1)), float(match.group(2)), match.group(3)
        if rest.endswith(_UNFINISHED):
            pending[pid] = (moment, rest[: -len(_UNFINISHED)])
            continue
        resumed = _RESUMED.match(rest)
        if resumed:
            if pid not in pending:
                continue
            moment, head = pending.pop(pid)
            rest = head + resumed.group(2)
        call = _CALL.match(rest)
        if call:
            out.append(_Call(pid, moment, call.group(1), call.group(2), _result(call.group(3), call.group(4)), number))
    return out


def _result(value: str, rest: str) -> str:
    """The syscall result as audit writes it: the return value, or minus the errno on failure."""
    if value != "-1":
        return value
    name = rest.split()[0] if rest.split() else ""
    number = getattr(errno, name, None)
    return f"-{number}" if isinstance(number, int) else value


def parse_strace(text: str, uid: int = 0, user: str = "root") -> list[Observation]:
    """exec and connect observations of a ``strace -f -ttt`` trace, in trace order."""
    trace = calls(text)
    parent: dict[int, int] = {}  # process (tgid) -> parent process
    owner: dict[int, int] = {}  # thread id -> its process
    for call in trace:  # pass 1: who created whom (a child's lines can come before the clone returns)
        if call.name in ("clone", "clone3", "fork", "vfork") and call.result.isdigit():
            child = int(call.result)
            if "CLONE_THREAD" in call.args:
                owner[child] = call.pid
            else:
                parent[child] = call.pid

    def process_of(tid: int) -> int:
        seen = 0
        while tid in owner and seen < 64:
            tid, seen = owner[tid], seen + 1
        return tid

    procs: dict[int, Proc] = {}
    out: list[Observation] = []
    for call in trace:  # pass 2
        pid = process_of(call.pid)
        moment = datetime.fromtimestamp(call.time, UTC)
        if call.name in ("clone", "clone3", "fork", "vfork") and call.result.isdigit():
            child = int(call.result)
            if child in parent and pid in procs:
                procs.setdefault(child, procs[pid])  # a fork runs its parent's program until it execs
        elif call.name in ("execve", "execveat") and call.result == "0":
            exe, argv = _exec_args(call)
            ppid = process_of(parent[pid]) if pid in parent else None
            procs[pid] = make_proc(pid, exe, tuple(argv), ppid, procs.get(ppid) if ppid else None, uid, user)
            out.append(Observation("exec", moment, procs[pid]))
        elif call.name == "connect":
            address = _sockaddr(call.args)
            if address is None:
                continue
            proc = procs.get(pid) or Proc(pid, "", uid=uid, user=user)
            if proc.pid != pid:  # a forked child that has not exec'd yet runs its parent's program
                proc = replace(proc, pid=pid, ppid=procs[pid].pid)
            out.append(Observation("connect", moment, proc, address[0], address[1], "", call.result))
    return out


def _exec_args(call: _Call) -> tuple[str, list[str]]:
    text = call.args
    start = text.index('"')
    exe, end = c_string(text, start)
    argv, _ = string_array(text, text.index("[", end))
    return exe, argv


def _sockaddr(args: str) -> tuple[str, int] | None:
    port = _PORT.search(args)
    if "AF_INET6" in args:
        address = _INET6.search(args)
    elif "AF_INET" in args:
        address = _INET.search(args)
    else:
        return None
    if not port or not address:
        return None
    return address.group(1), int(port.group(1))
