"""Squid forward-proxy access logs: the native format and `logformat combined`.

Native: `time elapsed client result/status bytes method URL user hierarchy/peer type`, e.g.
`1700000000.123 150 10.0.0.5 TCP_MISS/200 1456 GET http://169.254.169.254/latest/... - HIER_DIRECT/169.254.169.254 -`.
Combined: the Apache combined line with `result:hierarchy` appended. Each line is a request a client sent
through the proxy (OUTBOUND): the URL names the destination, `hierarchy/peer` the address the proxy
connected to (so a name that resolved to a metadata address is seen too), and the event is attributed to
the client.
"""

from __future__ import annotations

import re

from ..model import OUTBOUND
from .base import LineSource
from .httplog import HttpRecord, epoch_time, to_int
from .linelog import LineFormat, LineLogAdapter, head_lines
from .logformat import COMBINED, compile_format

_NATIVE = re.compile(
    r"\s*(?P<time>[0-9]+(?:\.[0-9]+)?)\s+(?P<elapsed>-?[0-9]+)\s+(?P<client>\S+)\s+(?P<result>[A-Za-z_]+)/"
    r"(?P<status>[0-9]{3}|-)\s+(?P<bytes>[0-9]+|-)\s+(?P<method>\S+)\s+(?P<url>\S+)\s+(?P<user>\S+)\s+"
    r"(?P<hierarchy>[A-Za-z_]+)/(?P<peer>\S+)(?:\s+(?P<type>\S+))?(?:\s.*)?\Z",
    re.DOTALL,
)
_COMBINED_TAIL = re.compile(r"\s[A-Z_]+:[A-Z_]+\s*$")


class SquidNative:
    """The native Squid line (`logformat squid`)."""

    starts_with_scanned = False
    first_edge: bytes | None = b" 0123456789"
    last_edge: bytes | None = None

    def parse(self, text: str) -> HttpRecord | None:
        match = _NATIVE.match(text)
        if match is None:
            return None
        peer = match.group("peer")
        return HttpRecord(
            time=epoch_time(match.group("time")),
            client=match.group("client"),
            method=match.group("method"),
            target=match.group("url"),
            status=to_int(match.group("status")),
            response_bytes=to_int(match.group("bytes")),
            destination="" if peer == "-" else peer,
            action=f"{match.group('result')}/{match.group('hierarchy')}",
        )


class SquidAdapter(LineLogAdapter):
    """Squid access.log, native or combined."""

    name = "squid"
    table = "proxy"
    direction = OUTBOUND

    def __init__(self) -> None:
        formats: tuple[LineFormat, ...] = (SquidNative(), compile_format(COMBINED, allow_trailing=True))
        super().__init__(formats)

    def sniff(self, head: bytes) -> bool:
        """Native lines, or combined lines that end in Squid's `result:hierarchy` codes."""
        if not super().sniff(head):
            return False
        lines = head_lines(head)
        native = sum(1 for line in lines if _NATIVE.match(line))
        tagged = sum(1 for line in lines if _COMBINED_TAIL.search(line))
        return native + tagged >= max(1, (len(lines) * 3 + 4) // 5)


SQUID_ADAPTER = SquidAdapter()
_CHECK: LineSource = SQUID_ADAPTER
