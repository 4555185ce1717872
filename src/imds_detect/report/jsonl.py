"""JSON lines: one alert object per line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import orjson

from ..model import Alert


def jsonl_line(alert: Alert) -> str:
    return orjson.dumps(alert.as_dict()).decode() + "\n"


def write_jsonl(alerts: Iterable[Alert], out: TextIO) -> None:
    for alert in alerts:
        out.write(jsonl_line(alert))
