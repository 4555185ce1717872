"""Reading the kernel's socket tables (/proc/net/tcp, tcp6, udp, udp6)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TABLES = ("tcp", "tcp6", "udp", "udp6")
TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
    "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}


@dataclass(frozen=True)
class Socket:
    """One row of a socket table."""

    table: str  # tcp | tcp6 | udp | udp6
    line: int  # 1-based line in the table
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: str
    uid: int
    inode: int


def decode_address(text: str) -> tuple[str, int]:
    """`0100007F:0050` -> ("127.0.0.1", 80): each 32-bit word is in host (little-endian) order."""
    address_hex, port_hex = text.split(":")
    raw = bytes.fromhex(address_hex)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped), int(port_hex, 16)
    return str(address), int(port_hex, 16)


def parse_table(text: str, table: str) -> Iterator[Socket]:
    """Sockets of one table's text; malformed rows are passed over (the kernel writes these files)."""
    for number, row in enumerate(text.splitlines()[1:], start=2):
        fields = row.split()
        if len(fields) < 10:
            continue
        try:
            local_ip, local_port = decode_address(fields[1])
            remote_ip, remote_port = decode_address(fields[2])
            yield Socket(table, number, local_ip, local_port, remote_ip, remote_port,
                         TCP_STATES.get(fields[3], fields[3]) if table.startswith("tcp") else fields[3],
                         int(fields[7]), int(fields[9]))
        except ValueError:
            continue


def read_sockets(proc: Path = Path("/proc")) -> list[Socket]:
    """Every socket of the current network namespace (listeners included)."""
    sockets: list[Socket] = []
    for table in TABLES:
        try:
            text = (proc / "net" / table).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        sockets.extend(parse_table(text, table))
    return sockets


def client_sockets(sockets: list[Socket]) -> Iterator[Socket]:
    """Sockets this host opened towards a remote end: listeners and connections they accepted are left out."""
    listening = {(s.table, s.local_ip, s.local_port) for s in sockets if s.state == "LISTEN"}
    wildcard = {(table, port) for table, ip, port in listening if ip in ("0.0.0.0", "::")}
    for sock in sockets:
        if not sock.remote_port or sock.state == "LISTEN":
            continue
        if (sock.table, sock.local_ip, sock.local_port) in listening or (sock.table, sock.local_port) in wildcard:
            continue  # accepted by a local server
        yield sock
