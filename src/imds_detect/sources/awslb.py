"""AWS Application Load Balancer and Classic Load Balancer access logs (space-separated, some fields quoted).

ALB: `type time elb client:port target:port t1 t2 t3 elb_status target_status received sent "request"
"user_agent" ...`; Classic: the same from `time` on, without `type`. The request line holds an absolute URL
whose host is the Host header the client sent (`GET http://169.254.169.254:80/latest/... HTTP/1.1` is the
Host-header trick). Every request is INBOUND; the host is the load balancer.
"""

from __future__ import annotations

import re

from ..model import INBOUND
from .base import LineSource
from .httplog import HttpRecord, split_address, split_request, to_int, unescape
from .linelog import LineFormat, LineLogAdapter
from .timeparse import parse_timestamp

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
_ALB_TYPES = frozenset({"http", "https", "h2", "grpcs", "ws", "wss"})


def _unquote(token: str) -> str:
    if len(token) >= 2 and token.startswith('"') and token.endswith('"'):
        token = unescape(token[1:-1])
    return "" if token == "-" else token


class LoadBalancerLine:
    """One ALB or Classic Load Balancer line."""

    starts_with_scanned = False
    first_edge: bytes | None = b"0123456789hgw"
    last_edge: bytes | None = None

    def parse(self, text: str) -> HttpRecord | None:
        tokens = _TOKEN.findall(text)
        offset = 1 if tokens and tokens[0] in _ALB_TYPES else 0
        if len(tokens) < offset + 13 or not tokens[offset + 11].startswith('"'):
            return None
        time, balancer, client = tokens[offset], tokens[offset + 1], tokens[offset + 2]
        if not time[:4].isdigit():
            return None
        method, target = split_request(_unquote(tokens[offset + 11]))
        return HttpRecord(
            time=parse_timestamp(time),
            client=split_address(client)[0],
            method="" if method == "-" else method,
            target="" if target.startswith("- ") or target == "-" else target,
            status=to_int(tokens[offset + 7]),
            response_bytes=to_int(tokens[offset + 10]),
            user_agent=_unquote(tokens[offset + 12]),
            server=balancer,
        )


class LoadBalancerAdapter(LineLogAdapter):
    """AWS ALB / Classic ELB access logs."""

    name = "aws-lb"
    table = "load-balancer"
    direction = INBOUND

    def __init__(self) -> None:
        formats: tuple[LineFormat, ...] = (LoadBalancerLine(),)
        super().__init__(formats)


AWS_LB_ADAPTER = LoadBalancerAdapter()
_CHECK: LineSource = AWS_LB_ADAPTER
