"""`--html FILE`: one self-contained HTML report (inline CSS, JavaScript and data; no network) for analysts."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, TextIO

import orjson

from ..detect.allowlist import Allowlist
from ..engine.summary import Summary
from ..model import Alert
from .html_data import report_data

_PLACEHOLDER = re.compile(r"__(TITLE|STYLE|SCRIPT|DATA)__")


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, `<!--` or line separators can end it."""
    text = orjson.dumps(data).decode()
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_html(data: dict[str, Any]) -> str:
    """The page for report data (see `html_data.report_data`)."""
    values = {"TITLE": html.escape(str(data.get("title", "imds-detect report"))), "STYLE": _asset("report.css"),
              "SCRIPT": _asset("report.js"), "DATA": script_json(data)}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], _asset("report.html"))


def write_html(alerts: Iterable[Alert], summary: Summary, out: TextIO, *, incidents: Iterable[Any] = (),
               allowlist: Allowlist | None = None, title: str = "imds-detect report") -> None:
    """Write the report of a scan (alerts, and suppressed ones when shown) to `out`."""
    data = report_data(list(alerts), summary, incidents=incidents, allowlist=allowlist, title=title)
    out.write(render_html(data))
