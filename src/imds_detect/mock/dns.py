"""A tiny DNS responder for the metadata names (as GCP's resolver on 169.254.169.254:53 answers them).

Only A queries for names in the knowledge base get an address; AAAA and other types for those names
get an empty answer, and every other name NXDOMAIN: nothing is ever forwarded.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Mapping

from ..knowledge.endpoints import NAMES

QTYPE_A, QTYPE_AAAA = 1, 28
_QTYPES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 65: "HTTPS"}


def metadata_names() -> dict[str, str]:
    """name -> IPv4 address for every metadata DNS name."""
    return {entry.name: entry.resolves_to for entry in NAMES}


def parse_query(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end of question) of a query; raises ValueError when malformed."""
    if len(packet) < 12:
        raise ValueError("short packet")
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError("one question expected")
    labels, offset = [], 12
    while True:
        if offset >= len(packet):
            raise ValueError("truncated name")
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length > 63 or offset + length > len(packet):
            raise ValueError("bad label")
        labels.append(packet[offset:offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(packet):
        raise ValueError("truncated question")
    qtype = struct.unpack("!H", packet[offset:offset + 2])[0]
    return ident, flags, ".".join(labels).lower(), qtype, offset + 4


def answer(packet: bytes, names: Mapping[str, str]) -> tuple[bytes, dict[str, object]]:
    """The response to one query, and what to log about it."""
    ident, flags, name, qtype, end = parse_query(packet)
    address = names.get(name.rstrip("."))
    rcode = 0 if address is not None else 3
    answers = b""
    if address is not None and qtype == QTYPE_A:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, 1, 60, 4) + socket.inet_aton(address)
    header = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1,
                         1 if answers else 0, 0, 0)
    info: dict[str, object] = {"qname": name, "qtype": _QTYPES.get(qtype, str(qtype)),
                               "answer": address if answers else "", "rcode": "NOERROR" if rcode == 0 else "NXDOMAIN"}
    return header + packet[12:end] + answers, info


class DnsResponder:
    """Serves `names` on a UDP socket in a daemon thread until closed."""

    def __init__(self, host: str, port: int, log: Callable[[dict[str, object]], None],
                 names: Mapping[str, str] | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        self.socket.bind((host, port))
        self.address = self.socket.getsockname()[:2]
        self._names = dict(names if names is not None else metadata_names())
        self._log = log
        self._thread = threading.Thread(target=self._serve, name="mock-dns", daemon=True)
        self._closed = threading.Event()
        self._thread.start()

    def _serve(self) -> None:
        self.socket.settimeout(0.2)
        while not self._closed.is_set():
            try:
                packet, client = self.socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply, info = answer(packet, self._names)
            except ValueError:
                continue
            self._log({"kind": "dns", "client": f"{client[0]}:{client[1]}",
                       "local": f"{self.address[0]}:{self.address[1]}", **info})
            self.socket.sendto(reply, client)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self.socket.close()
