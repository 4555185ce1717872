"""--since/--until: absolute ISO times, or durations counted back from the newest event in the input."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(\d{1,9})\s*([smhdw])$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class TimeBound:
    """Either an absolute moment or a duration before the newest event."""

    absolute: datetime | None = None
    before_newest: timedelta | None = None

    def resolve(self, newest: datetime | None) -> datetime | None:
        if self.absolute is not None:
            return self.absolute
        if self.before_newest is not None and newest is not None:
            try:
                return newest - self.before_newest
            except OverflowError:  # counted back past the year 1 (a hostile or broken input's times)
                return datetime.min.replace(tzinfo=UTC)
        return None


def parse_bound(text: str) -> TimeBound:
    """Parse '24h', '7d', '90m' or an ISO 8601 time (UTC when no offset); raises ValueError."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return TimeBound(before_newest=timedelta(**{_UNITS[unit]: amount}))
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like 24h/7d/30m nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return TimeBound(absolute=moment.astimezone(UTC))


@dataclass(frozen=True)
class Window:
    """A resolved time window; either side may be open."""

    since: datetime | None
    until: datetime | None

    def contains_epoch(self, seconds: float) -> bool:
        """`contains` for a POSIX timestamp (compared as one: the float of a time late in 9999 can round to a
        second that datetime cannot hold)."""
        if self.since is not None and seconds < self.since.timestamp():
            return False
        return not (self.until is not None and seconds > self.until.timestamp())

    def contains(self, moment: datetime) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return not (self.until is not None and moment > self.until)
