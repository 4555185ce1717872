"""Alerts of a Spark scan written by Spark to any path it can write (local, HDFS, S3): Parquet or JSON.

The schema is fixed (`ALERT_SCHEMA`), so an empty result still writes a readable, typed dataset and
the columns do not depend on which optional fields happened to be present. Field names and values are
those of the JSON-lines output (`Alert.as_dict`); ``timestamp`` is a Spark TIMESTAMP (UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model import Alert

OUTPUT_FORMATS = ("parquet", "json")

ALERT_SCHEMA = (
    "rule_id STRING, title STRING, severity STRING, technique STRING, tactic STRING, timestamp TIMESTAMP, "
    "host STRING, user STRING, "
    "process STRUCT<name: STRING, path: STRING, pid: BIGINT, command_line: STRING, parent_name: STRING, "
    "parent_path: STRING>, "
    "endpoint STRUCT<provider: STRING, raw: STRING, canonical: STRING, port: INT, path: STRING, "
    "path_class: STRING>, "
    "reasons ARRAY<STRING>, "
    "source STRUCT<format: STRING, file: STRING, line: BIGINT, record: BIGINT>, "
    "suppressed_by STRING, raw STRING"
)


def alert_row(alert: Alert) -> tuple[Any, ...]:
    """One alert as a row of `ALERT_SCHEMA` (same values as the JSON-lines output)."""
    data = alert.as_dict()
    process, endpoint, source = data["process"], data["endpoint"], data["source"]
    return (
        data["rule_id"], data["title"], data["severity"], data["technique"], data["tactic"], alert.timestamp,
        data["host"], data["user"],
        (process["name"], process["path"], process["pid"], process["command_line"], process["parent_name"],
         process["parent_path"]),
        (endpoint["provider"], endpoint["raw"], endpoint["canonical"], endpoint["port"], endpoint["path"],
         endpoint["path_class"]),
        list(data["reasons"]),
        (source["format"], source["file"], source["line"], source["record"]),
        data.get("suppressed_by"), data.get("raw"),
    )


def write_alerts(spark: Any, alerts: Iterable[Alert], uri: str, fmt: str) -> int:
    """Write `alerts` to `uri` (a directory, replaced) as `fmt` (parquet|json); return how many were written."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown Spark output format {fmt!r} (expected {'|'.join(OUTPUT_FORMATS)})")
    rows = [alert_row(alert) for alert in alerts]
    frame = spark.createDataFrame(rows, ALERT_SCHEMA).coalesce(1)
    writer = frame.write.mode("overwrite")
    if fmt == "parquet":
        writer.parquet(uri)
    else:
        writer.option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").json(uri)
    return len(rows)
