"""Process identity from audit records: argv from EXECVE/PROCTITLE, names from comm and exe.

EXECVE arguments are double-quoted or unquoted hex (when they hold a space, quote, control or non-ASCII
byte); a long argument is logged as ``aN_len=L`` then ``aN[0]=...``, ``aN[1]=...`` chunks, possibly over
several EXECVE records of the same event. PROCTITLE is the hex of the process's argv memory joined by
NUL and cut at 128 bytes by the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..detect.identity import tool_name
from ..knowledge.agents import SHELLS_AND_INTERPRETERS
from .auditd_records import Record, decode_value, hex_bytes, raw_fields, unescape_interpreted

__all__ = [
    "COMM_LIMIT",
    "MAX_ARGUMENT_BYTES",
    "Argv",
    "Known",
    "basename",
    "clean_exe",
    "full_comm",
    "join_argv",
    "proctitle_command_line",
    "program_name",
    "take_execve",
]

MAX_ARGUMENT_BYTES = 65536  # decoded argv kept per event (the command-line rule reads 64 KiB)
COMM_LIMIT = 15  # TASK_COMM_LEN - 1: the kernel cuts comm to 15 bytes
_NEEDS_QUOTES = re.compile(r"[\s\"']")


@dataclass(slots=True)
class Known:
    """What was last seen of a pid: its executable, comm and (from its execve) argv."""

    exe: str
    comm: str
    argv: tuple[str, ...] = ()


@dataclass(slots=True)
class Argv:
    """EXECVE arguments collected over one or more EXECVE records (bounded by MAX_ARGUMENT_BYTES)."""

    argc: int | None = None
    whole: dict[int, str] = field(default_factory=dict)
    chunks: dict[int, dict[int, bytes]] = field(default_factory=dict)
    lengths: dict[int, int] = field(default_factory=dict)
    size: int = 0
    truncated: bool = False

    def fits(self, size: int) -> bool:
        if self.size + size > MAX_ARGUMENT_BYTES:
            self.truncated = True
            return False
        self.size += size
        return True

    def arguments(self) -> tuple[list[str], list[str]]:
        """(argv in order, notes about missing or cut arguments)."""
        args: dict[int, str] = dict(self.whole)
        notes: list[str] = []
        for index, parts in self.chunks.items():
            data = b"".join(parts[i] for i in sorted(parts))
            expected = self.lengths.get(index)
            if expected is not None and len(data) != expected:
                notes.append(f"a{index}: {len(data)} of {expected} bytes logged")
            args[index] = data.decode("utf-8", "replace")
        count = self.argc if self.argc is not None else (max(args) + 1 if args else 0)
        missing: list[int] = []  # the first 8, found in len(args) + 8 steps whatever argc claims
        index = 0
        while index < count and len(missing) < 8:
            if index not in args:
                missing.append(index)
            index += 1
        if missing:
            notes.append(f"argc={count} but a{', a'.join(map(str, missing))} missing")
        if self.truncated:
            notes.append(f"arguments cut at {MAX_ARGUMENT_BYTES} bytes")
        return [args[i] for i in sorted(args) if self.argc is None or i < self.argc], notes


def take_execve(argv: Argv, record: Record) -> None:
    """Add one EXECVE record's arguments (raises RecordError for bad hex or a cut quoted value)."""
    fields = _execve_fields(record.body) if record.interpreted else raw_fields(record.body)
    for key, value in fields.items():
        if key == "argc":
            argv.argc = _number(value)
            continue
        if not key.startswith("a"):
            continue
        name, bracket, rest = key[1:].partition("[")
        if bracket:
            number, chunk = _number(name), _number(rest.rstrip("]"))
            if number is None or chunk is None:
                continue
            data = unescape_interpreted(value).encode() if record.interpreted else _chunk_bytes(value, key)
            if argv.fits(len(data)):
                argv.chunks.setdefault(number, {})[chunk] = data
        elif name.endswith("_len"):
            number, length = _number(name[:-4]), _number(value)
            if number is not None and length is not None:
                argv.lengths[number] = length
        elif (number := _number(name)) is not None:
            text = decode_value(value, f"EXECVE {key}", record.interpreted)
            if argv.fits(len(text)):
                argv.whole[number] = text


def _number(text: str) -> int | None:
    """argc, an argument's index or length: ASCII digits (str.isdigit() takes '²', which int() refuses), at
    most 18 of them (int() refuses 4300); None otherwise."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _chunk_bytes(value: str, what: str) -> bytes:
    if value[:1] == '"':
        return decode_value(value, f"EXECVE {what}").encode()
    return hex_bytes(value, f"EXECVE {what}")


def _execve_fields(body: str) -> dict[str, str]:
    """Interpreted EXECVE fields: values are plain text that may contain spaces, so split only at
    `` argc=``, `` aN=``, `` aN_len=`` and `` aN[i]=``."""
    positions: list[tuple[int, int, str]] = []
    index = 0
    while True:
        start = body.find("a", index)
        if start < 0:
            break
        if start == 0 or body[start - 1] == " ":
            equals = body.find("=", start)
            key = body[start:equals] if equals > 0 else ""
            if key == "argc" or _is_arg_key(key):
                positions.append((start, equals + 1, key))
                index = equals + 1
                continue
        index = start + 1
    fields: dict[str, str] = {}
    for number, (_start, value_start, key) in enumerate(positions):
        end = positions[number + 1][0] - 1 if number + 1 < len(positions) else len(body)
        fields.setdefault(key, body[value_start:end])
    return fields


def _is_arg_key(key: str) -> bool:
    rest = key[1:]
    if not key.startswith("a") or not rest:
        return False
    if rest.endswith("_len"):
        return rest[:-4].isdigit()
    if rest.endswith("]") and "[" in rest:
        number, _, chunk = rest[:-1].partition("[")
        return number.isdigit() and chunk.isdigit()
    return rest.isdigit()


def proctitle_command_line(record: Record) -> str:
    """PROCTITLE as a command line (hex argv joined by NUL, quoted text, or interpreted text)."""
    body = record.body
    value = body[10:] if body.startswith("proctitle=") else ""
    if record.interpreted:
        return unescape_interpreted(value)
    if value[:1] == '"':
        return decode_value(value, "PROCTITLE proctitle")
    if value in ("", "(null)"):
        return ""
    data = hex_bytes(value.split(" ", 1)[0], "PROCTITLE proctitle")
    return join_argv([part.decode("utf-8", "replace") for part in data.rstrip(b"\0").split(b"\0")])


def join_argv(args: list[str] | tuple[str, ...]) -> str:
    """A command line from argv: arguments with spaces or quotes are quoted so that they stay one token."""
    out: list[str] = []
    for arg in args:
        if arg and not _NEEDS_QUOTES.search(arg):
            out.append(arg)
        elif '"' not in arg:
            out.append(f'"{arg}"')
        elif "'" not in arg:
            out.append(f"'{arg}'")
        else:
            out.append(arg)
    return " ".join(out)


def clean_exe(exe: str) -> str:
    """The executable path without the kernel's `` (deleted)`` mark or rpm's ``;5f3a2b1c`` temporary suffix.

    A binary replaced by a package upgrade keeps running from its unlinked inode: the kernel then names it
    ``/usr/bin/python2.7;58d1ccfb (deleted)`` (seen in the real GCE samples).
    """
    if exe.endswith(" (deleted)"):
        exe = exe[:-10]
        stem, semicolon, suffix = exe.rpartition(";")
        if semicolon and len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix):
            exe = stem
    return exe


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def program_name(comm: str, exe: str) -> str:
    """ProcessInfo.name: ``comm``, except where comm does not name the executable.

    comm is the kernel's task name: the base name of the file passed to execve, cut to 15 bytes, and
    settable by the process (prctl). For a ``#!`` script it is the *script's* name while ``exe`` is the
    interpreter, so an interpreter is named by its executable: otherwise every run of a script-based
    agent (cloud-init, the legacy Google daemons) would look like a renamed agent binary. When comm is
    the executable's name cut to 15 bytes, the full name is used. Otherwise comm is kept: a program run
    through a symlink (``nc`` -> ``nc.openbsd``, ``/tmp/cloud-init`` -> curl) and busybox applets are known
    by the name they were started as.
    """
    base = basename(exe)
    if not comm or comm == base:
        return base
    if not base:
        return comm
    if len(comm.encode()) >= COMM_LIMIT and base.startswith(comm):
        return base
    tool = tool_name(base)
    if tool in SHELLS_AND_INTERPRETERS and tool != "busybox":
        return base
    return comm


def full_comm(known: Known) -> str:
    """A parent's name: its comm, completed from its argv (or exe) when the kernel cut it at 15 bytes.

    Script-run parents are known by their script name (the knowledge base names the EC2 Instance Connect
    helper ``eic_curl_authorized_keys``), which is what comm holds for a script. A parent name only
    narrows allowlist entries, it never allows by itself.
    """
    comm = known.comm
    if not comm:
        return basename(known.exe)
    if len(comm.encode()) >= COMM_LIMIT:
        for arg in (*known.argv[:3], known.exe):
            base = basename(arg)
            if base.startswith(comm):
                return base
    return comm
