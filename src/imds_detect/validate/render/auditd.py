"""Observations as raw audit.log lines (SYSCALL, EXECVE, CWD, PATH, SOCKADDR, PROCTITLE, EOE).

Written the way the kernel writes them: values with a space, quote, control or non-ASCII byte in
upper-case hex, argv longer than the kernel's 7500-byte chunk split into ``aN_len``/``aN[i]``,
PROCTITLE cut at 128 bytes, SOCKADDR as the hex of the sockaddr (little-endian family).
"""

from __future__ import annotations

import ipaddress
import platform
import struct
from collections.abc import Iterable

from ..telemetry import Observation

# arch field, execve and connect syscall numbers
ARCHES = {"x86_64": ("c000003e", 59, 42), "aarch64": ("c00000b7", 221, 203)}
UNSET_AUID = 4294967295
CHUNK = 7500
PROCTITLE_MAX = 128


def _arch() -> tuple[str, int, int]:
    return ARCHES.get(platform.machine(), ARCHES["x86_64"])


def encode(value: str) -> str:
    """A field value as audit logs it: quoted, or upper-case hex when it has a special byte."""
    raw = value.encode("utf-8", "surrogateescape")
    if any(byte <= 0x20 or byte >= 0x7F or byte == 0x22 for byte in raw):
        return raw.hex().upper()
    return f'"{value}"'


def sockaddr_hex(ip: str, port: int) -> str:
    """The hex of a sockaddr_in / sockaddr_in6 as the SOCKADDR record carries it."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return (struct.pack("<H", 2) + struct.pack("!H", port) + address.packed + bytes(8)).hex().upper()
    return (struct.pack("<H", 10) + struct.pack("!H", port) + bytes(4) + address.packed + bytes(4)).hex().upper()


def _execve_fields(args: tuple[str, ...]) -> list[str]:
    """EXECVE record bodies: one per record (arguments chunked over several records when long)."""
    records: list[str] = [f"argc={len(args)}"]
    for index, arg in enumerate(args):
        value = encode(arg)
        if len(value) <= CHUNK:
            field = f"a{index}={value}"
        else:
            hexed = arg.encode("utf-8", "surrogateescape").hex().upper()
            chunks = [hexed[i:i + CHUNK] for i in range(0, len(hexed), CHUNK)]
            records.append(f"a{index}_len={len(hexed) // 2}")
            records.extend(f"a{index}[{n}]={chunk}" for n, chunk in enumerate(chunks))
            continue
        if len(records[-1]) + len(field) > CHUNK:
            records.append(field)
        else:
            records[-1] += " " + field
    return records


def proctitle(args: tuple[str, ...]) -> str:
    return "\0".join(args).encode("utf-8", "surrogateescape")[:PROCTITLE_MAX].hex().upper()


def audit_lines(observations: Iterable[Observation], auid: int = UNSET_AUID, key: str = "imds_validate",
                first_serial: int = 1000) -> list[str]:
    """audit.log lines for the exec and connect observations (DNS has no audit record and is left out)."""
    arch, execve, connect = _arch()
    lines: list[str] = []
    serial = first_serial
    for obs in observations:
        if obs.kind not in ("exec", "connect"):
            continue
        stamp = f"audit({obs.time.timestamp():.3f}:{serial}):"
        proc = obs.proc
        args = proc.args
        comm = (proc.exe.rsplit("/", 1)[-1] or args[0])[:15]
        session = 1 if auid != UNSET_AUID else UNSET_AUID
        ids = " ".join(f"{name}={proc.uid}" for name in ("uid", "gid", "euid", "suid", "fsuid", "egid", "sgid",
                                                          "fsgid"))
        if obs.kind == "exec":
            head = (f"arch={arch} syscall={execve} success=yes exit=0 a0=55d0c0de0000 a1=55d0c0de0100 "
                    f"a2=55d0c0de0200 a3=0 items=2")
        else:
            ok = "yes" if obs.result == "0" else "no"
            head = (f"arch={arch} syscall={connect} success={ok} exit={obs.result} a0=5 a1=7ffd0c0de000 a2=10 a3=0 "
                    "items=0")
        lines.append(f"type=SYSCALL msg={stamp} {head} ppid={proc.ppid or 0} pid={proc.pid} auid={auid} {ids} "
                     f"tty=(none) ses={session} comm={encode(comm)} exe={encode(proc.exe)} subj=unconfined "
                     f'key="{key}"')
        if obs.kind == "exec":
            lines.extend(f"type=EXECVE msg={stamp} {body}" for body in _execve_fields(args))
            lines.append(f"type=CWD msg={stamp} cwd={encode(proc.cwd)}")
            lines.append(f"type=PATH msg={stamp} item=0 name={encode(proc.exe)} inode=1 dev=fe:00 mode=0100755 "
                         "ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0")
        else:
            lines.append(f"type=SOCKADDR msg={stamp} saddr={sockaddr_hex(obs.remote_ip, obs.remote_port or 0)}")
        lines.append(f"type=PROCTITLE msg={stamp} proctitle={proctitle(args)}")
        lines.append(f"type=EOE msg={stamp}")
        serial += 1
    return lines
