"""Web server access logs: nginx and Apache combined, common and vhost_combined, or a custom format given as
an nginx `log_format` or Apache `LogFormat` string (see logformat.py).

Each line is a request the server received: the client, the request target (where SSRF payloads sit),
the Host header when logged, status and size (was the attempt answered), the body when logged. The event
is INBOUND, its host the server when the format logs it.
"""

from __future__ import annotations

import re
from datetime import datetime

from ..model import INBOUND
from .base import LineSource
from .httplog import clf_time
from .linelog import LineFormat, LineLogAdapter
from .logformat import BUILTIN_FORMATS, compile_format

_CLF_TIMES = re.compile(rb"\[([0-9]{1,2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}(?: [+-][0-9]{4})?)\]")


class AccessLogAdapter(LineLogAdapter):
    """nginx / Apache access logs in the built-in formats, custom formats first when given."""

    name = "access"
    table = "web-access"
    direction = INBOUND

    def __init__(self, custom: tuple[str, ...] = ()) -> None:
        formats: tuple[LineFormat, ...] = tuple(compile_format(text) for text in custom) + BUILTIN_FORMATS
        super().__init__(formats)
        self.custom = custom

    def newest_in_block(self, block: bytes) -> datetime | None:
        """The newest `[dd/Mon/yyyy:HH:MM:SS zone]` time in a block, without parsing its lines."""
        newest: datetime | None = None
        for value in set(_CLF_TIMES.findall(block)):
            try:
                moment = clf_time(value.decode("ascii"))
            except ValueError:
                continue
            if newest is None or moment > newest:
                newest = moment
        return newest


ACCESS_ADAPTER = AccessLogAdapter()
_CHECK: LineSource = ACCESS_ADAPTER
