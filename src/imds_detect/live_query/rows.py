"""Answer rows as the plain mappings the Defender/Sentinel adapter reads (times as ISO 8601 UTC text)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..model import iso_utc


def plain_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    return value


def rows_from_columns(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Column names + value rows -> one dict per row."""
    return [{name: plain_value(value) for name, value in zip(columns, row, strict=False)} for row in rows]
