"""One entry point for both services: resolve the window, fetch candidate rows slice by slice, detect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..engine.scan import ScanOptions, ScanResult, scan_records
from ..engine.window import TimeBound
from ..model import iso_utc
from . import LiveQueryError
from .slices import Truncated, fetch_sliced

DEFAULT_SINCE = timedelta(hours=24)
SLICE = timedelta(hours=6)


class Source(Protocol):
    name: str

    def fetch(self, start: datetime, end: datetime) -> list[dict[str, Any]]: ...


def live_window(since: TimeBound | None, until: TimeBound | None, now: datetime | None = None,
                ) -> tuple[datetime, datetime]:
    """[start, end): durations count back from now (the service's `ago()`), default the last 24 hours."""
    now = now or datetime.now(UTC)
    end = until.absolute if until and until.absolute else now - (until.before_newest if until and
                                                                  until.before_newest else timedelta(0))
    start = since.absolute if since and since.absolute else end - (since.before_newest if since and
                                                                   since.before_newest else DEFAULT_SINCE)
    if start >= end:
        raise LiveQueryError(f"empty time window: {iso_utc(start)} is not before {iso_utc(end)}")
    return start, end


def live_scan(source: Source, label: str, start: datetime, end: datetime, options: ScanOptions,
              slice_size: timedelta = SLICE, warn: Callable[[str], None] = lambda message: None) -> ScanResult:
    """Detect on the candidate rows of [start, end) (the rows are read as `label` in alerts' source)."""

    def split(low: datetime, high: datetime) -> None:
        warn(f"{source.name}: answer for {iso_utc(low)}..{iso_utc(high)} was truncated; splitting the slice")

    rows = fetch_sliced(source.fetch, start, end, slice_size, split)
    try:
        return scan_records(rows, options, name=label)
    except Truncated as error:
        raise LiveQueryError(f"{source.name}: a one-second slice is still truncated ({error})") from None


def sentinel_scan(workspace_id: str, since: TimeBound | None, until: TimeBound | None, options: ScanOptions,
                  credential: Any = None, warn: Callable[[str], None] = lambda message: None,
                  **client_options: Any) -> ScanResult:
    """`scan --sentinel WORKSPACE_ID`."""
    from .sentinel import SentinelSource, make_client

    start, end = live_window(since, until)
    source = SentinelSource(workspace_id, make_client(credential, **client_options))
    return live_scan(source, f"sentinel:{workspace_id}", start, end, options, warn=warn)


def defender_scan(since: TimeBound | None, until: TimeBound | None, options: ScanOptions, credential: Any = None,
                  warn: Callable[[str], None] = lambda message: None, **pipeline_options: Any) -> ScanResult:
    """`scan --defender`."""
    from .defender import DefenderSource, make_pipeline

    start, end = live_window(since, until)
    source = DefenderSource(make_pipeline(credential, **pipeline_options))
    return live_scan(source, "defender:advanced-hunting", start, end, options, warn=warn)
