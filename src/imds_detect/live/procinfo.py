"""Who owns a socket: inode -> pid through /proc/<pid>/fd, and the process's identity."""

from __future__ import annotations

import os
from pathlib import Path

from ..model import ProcessInfo


def pids_by_inode(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, int]:
    """The pid holding each socket inode (first holder found); pids that vanish are skipped."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    found: dict[int, int] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            descriptors = os.scandir(f"{entry.path}/fd")
        except OSError:
            continue
        with descriptors:
            for descriptor in descriptors:
                try:
                    target = os.readlink(descriptor.path)
                except OSError:
                    continue
                inode = wanted.get(target)
                if inode is not None and inode not in found:
                    found[inode] = int(entry.name)
        if len(found) == len(wanted):
            break
    return found


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(65536).decode("utf-8", "replace")
    except OSError:
        return ""


def _status(pid: int, proc: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in _read(f"{proc}/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _exe(pid: int, proc: Path) -> str:
    try:
        return os.readlink(f"{proc}/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return ""


def process_info(pid: int, proc: Path = Path("/proc")) -> ProcessInfo:
    """Name, executable, command line, parent and user of a running process (empty fields if it is gone)."""
    status = _status(pid, proc)
    parent = int(status.get("PPid", "0") or 0)
    uid = (status.get("Uid", "").split() or [""])[0]
    command_line = _read(f"{proc}/{pid}/cmdline").replace("\0", " ").strip()
    return ProcessInfo(
        name=_read(f"{proc}/{pid}/comm").strip(),
        path=_exe(pid, proc),
        pid=pid,
        command_line=command_line,
        parent_name=_read(f"{proc}/{parent}/comm").strip() if parent else "",
        parent_path=_exe(parent, proc) if parent else "",
        user=_user_name(uid),
    )


def _user_name(uid: str) -> str:
    if not uid.isdigit():
        return uid
    try:
        import pwd

        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ImportError):
        return uid
