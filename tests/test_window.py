"""--since/--until parsing."""

from datetime import UTC, datetime, timedelta

import pytest

from imds_detect.engine.window import Window, parse_bound


def test_relative_bound_counts_back_from_newest_event() -> None:
    newest = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert parse_bound("24h").resolve(newest) == newest - timedelta(hours=24)
    assert parse_bound("7d").resolve(newest) == newest - timedelta(days=7)
    assert parse_bound("30m").resolve(None) is None


def test_absolute_bound_without_offset_is_utc() -> None:
    assert parse_bound("2026-11-27T10:00:00").resolve(None) == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert parse_bound("2026-11-27T12:00:00+02:00").resolve(None) == datetime(2026, 11, 27, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "24x", "", "-5h"])
def test_garbage_bound_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bound(text)


def test_window_is_inclusive() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert Window(moment, moment).contains(moment)
    assert not Window(moment, None).contains(moment - timedelta(seconds=1))
