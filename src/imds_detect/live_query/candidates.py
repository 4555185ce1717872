"""The candidate-row KQL: the knowledge base's indicator patterns (the local prefilter's necessary condition)
over the text columns of the Defender tables, so that the service sends only rows that could alert.

Base64 inside UTF-8 text is covered by the same fragments as locally; a digit run followed by a non-digit is a
numeric host candidate (a space is appended to the text so that a number at its end also qualifies).
"""

from __future__ import annotations

from datetime import datetime

from ..export.kql import kql_string
from ..knowledge.indicators import ENCODING_PATTERNS, base64_patterns, literal_needles, numeric_patterns
from ..model import iso_utc

TABLES: dict[str, tuple[str, ...]] = {
    "DeviceNetworkEvents": ("RemoteIP", "RemoteUrl", "InitiatingProcessFileName", "InitiatingProcessFolderPath",
                            "InitiatingProcessCommandLine", "tostring(AdditionalFields)"),
    "DeviceProcessEvents": ("FileName", "FolderPath", "ProcessCommandLine", "InitiatingProcessFileName",
                            "InitiatingProcessFolderPath", "InitiatingProcessCommandLine"),
    "DeviceEvents": ("FileName", "FolderPath", "InitiatingProcessFileName", "InitiatingProcessFolderPath",
                     "InitiatingProcessCommandLine", "tostring(AdditionalFields)"),
}
LET_NAMES = {"DeviceNetworkEvents": "NetworkRows", "DeviceProcessEvents": "ProcessRows",
             "DeviceEvents": "DeviceEventRows"}
NON_ASCII = r"[^\x00-\x7f]"


def gate_regex() -> str:
    """One case-insensitive RE2 alternation of every indicator pattern."""
    import re

    parts = [re.escape(needle) for needle in literal_needles()]
    parts += [pattern.decode() for pattern in (*ENCODING_PATTERNS, *numeric_patterns(), *base64_patterns())]
    parts.append(NON_ASCII)
    return "(?i)(?:" + "|".join(parts) + ")"


def _datetime(moment: datetime) -> str:
    return f"datetime({iso_utc(moment)})"


def candidate_query(start: datetime, end: datetime, time_column: str = "Timestamp") -> str:
    """Rows of the three tables in [start, end) whose text could name a metadata endpoint, each with `Type`."""
    lines = [f"let Gate = {kql_string(gate_regex())};"]
    names = []
    for table, columns in TABLES.items():
        name = LET_NAMES[table]
        names.append(name)
        text = "strcat(" + ", \" \", ".join(f"tostring({c})" if not c.startswith("tostring") else c
                                           for c in columns) + ", \" \")"
        lines.append(f"let {name} = {table}\n"
                     f"| where {time_column} >= {_datetime(start)} and {time_column} < {_datetime(end)}\n"
                     f"| where {text} matches regex Gate\n"
                     f"| extend Type = \"{table}\";")
    lines.append(f"union {', '.join(names)}\n| sort by {time_column} asc")
    return "\n".join(lines) + "\n"
