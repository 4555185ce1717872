"""--since/--until parsing."""

from array import array
from datetime import UTC, datetime, timedelta

import pytest

from imds_detect import scan_events
from imds_detect.engine.scan import PRUNE_START, Scanner, ScanOptions
from imds_detect.engine.window import Window, parse_bound
from imds_detect.model import Event, EventKind, ProcessInfo, SourceRef


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


# -- alerts outside a window are dropped as the scan goes (memory follows what will be reported) ------------------

def _events(count: int, step: timedelta) -> list[Event]:
    """Alerting python3 fetches of credentials and allowlisted SSM agent connects, `step` apart, oldest first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for index in range(count):
        moment = start + index * step
        source = SourceRef("test", "t.log", index + 1, index)
        if index % 2:
            process = ProcessInfo("amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", 10, "/usr/bin/amazon-ssm-agent")
        else:
            process = ProcessInfo("python3", "/usr/bin/python3", 20, "python3 fetch.py")
        events.append(Event(EventKind.NETWORK, moment, source, host="web-1", process=process,
                            action="ConnectionSuccess", remote_ip="169.254.169.254", remote_port=80))
    return events


@pytest.mark.parametrize("since,until", [("1h", None), ("2026-01-05T00:00:00Z", None),
                                         (None, "2026-01-02T00:00:00Z"), ("3h", "2026-01-09T00:00:00Z")])
@pytest.mark.parametrize("show_suppressed", [False, True])
def test_alerts_outside_the_window_are_dropped_early_with_the_same_result(
        since: str | None, until: str | None, show_suppressed: bool) -> None:
    events = _events(20_000, timedelta(minutes=1))  # about 14 days
    bounds = {"since": parse_bound(since) if since else None, "until": parse_bound(until) if until else None}
    scanner = Scanner(ScanOptions(show_suppressed=show_suppressed, **bounds))  # type: ignore[arg-type]
    peak = 0
    for event in events:
        scanner.scan_event(event)
        peak = max(peak, len(scanner.alerts))
    result = scanner.finish()
    # the reference: everything kept, the window applied to the alerts of an unbounded scan
    reference = scan_events(events, ScanOptions(show_suppressed=show_suppressed))
    newest = events[-1].timestamp
    window = Window(bounds["since"].resolve(newest) if bounds["since"] else None,
                    bounds["until"].resolve(newest) if bounds["until"] else None)
    inside = [alert for alert in reference.alerts if window.contains(alert.timestamp)]
    assert [alert.source.line for alert in result.alerts] == [alert.source.line for alert in inside]
    assert result.summary.outside_window == len(reference.alerts) - len(inside) > 0
    assert sum(result.summary.suppressed.values()) == sum(1 for event in events[1::2]
                                                          if window.contains(event.timestamp))
    if show_suppressed:
        assert len(result.suppressed) == sum(result.summary.suppressed.values())
    assert peak <= 2 * max(PRUNE_START, len(inside)) + 1  # not the 10,000 alerts of the whole input


def test_a_merge_prunes_suppressed_times_too() -> None:
    """prune_if_due (called after each --jobs merge) looks at the suppressed times as well as the alerts: times
    before an absolute --since are dropped once one entry holds PRUNE_START of them, and not before."""
    scanner = Scanner(ScanOptions(since=parse_bound("2026-11-27T00:00:00Z")))
    old = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    recent = datetime(2026, 11, 28, tzinfo=UTC).timestamp()
    times = scanner._suppressed_times.setdefault("aws-ssm-agent", array("d"))
    times.extend([old] * (PRUNE_START - 2) + [recent])
    scanner.prune_if_due()
    assert len(scanner._suppressed_times["aws-ssm-agent"]) == PRUNE_START - 1  # below the mark: kept
    scanner._suppressed_times["aws-ssm-agent"].append(old)
    scanner.prune_if_due()
    assert list(scanner._suppressed_times["aws-ssm-agent"]) == [recent]
