"""Fast timestamp parsing for log sources.

Accepted forms (surrounding whitespace is ignored):

- ISO 8601: ``2024-05-01T10:11:12.1234567Z``, ``T``/``t`` or a space between date and time, 0 or
  1-9 fractional digits (``.`` or ``,``), seconds optional, zone ``Z``, ``UTC``, ``GMT``, ``+HH:MM``,
  ``+HHMM``, ``+HH`` or none; a bare date ``2024-05-01`` is midnight.
- US style as written by the Defender and Log Analytics portal CSV export:
  ``5/1/2024, 10:11:12.123 AM`` (comma optional, AM/PM optional for 24-hour clocks).

A timestamp without a zone is taken as UTC (Defender and Sentinel store UTC). The result is always an
aware UTC datetime; fractions beyond microseconds are truncated. Anything else raises ValueError.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["parse_timestamp"]

_C_ISO = sys.version_info >= (3, 11)  # datetime.fromisoformat accepts "Z" and 7 fractional digits
_DIGITS = frozenset("0123456789")
_UTC_SUFFIXES = frozenset(("", "Z", "z", "UTC", "GMT", " UTC", " GMT"))


def _num(text: str, what: str, source: str) -> int:
    """An unsigned ASCII decimal number (int() alone would accept signs, spaces and underscores)."""
    if not text or not text.isdigit():
        raise ValueError(f"invalid timestamp {source!r}: bad {what}")
    return int(text)


def _fraction(digits: str, source: str) -> int:
    """Microseconds from 1-9 fractional digits (truncated, never rounded up into the next second)."""
    if not 1 <= len(digits) <= 9 or not digits.isdigit():
        raise ValueError(f"invalid timestamp {source!r}: bad fraction")
    return int((digits + "00000")[:6])


def parse_timestamp(text: str) -> datetime:
    """Parse a log timestamp into an aware UTC datetime; raise ValueError on anything unrecognised."""
    if not isinstance(text, str):
        raise ValueError(f"invalid timestamp {text!r}: not a string")
    s = text.strip()
    if not s.isascii():
        raise ValueError(f"invalid timestamp {text!r}: non-ASCII characters")
    n = len(s)
    # Fast path for YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, the form Defender and Sentinel write: the C parser of
    # Python >= 3.11 (which truncates extra fractional digits); anything it refuses takes the slow path.
    if (
        _C_ISO
        and 20 <= n <= 30
        and s[-1] == "Z"
        and s[4] == "-"
        and s[10] in "T "
        and s[13] == ":"
        and s[16] == ":"
        and (n == 20 or (s[19] == "." and s[20:-1].isdigit()))
    ):
        try:
            return datetime.fromisoformat(s)
        except ValueError:
            pass
    if n >= 10 and s[4] == "-":
        return _parse_iso(s)
    if "/" in s:
        return _parse_us(s)
    raise ValueError(f"invalid timestamp {text!r}")


def _parse_iso(s: str) -> datetime:
    n = len(s)
    if s[7] != "-":
        raise ValueError(f"invalid timestamp {s!r}")
    year = _num(s[0:4], "year", s)
    month = _num(s[5:7], "month", s)
    day = _num(s[8:10], "day", s)
    if n == 10:
        return datetime(year, month, day, tzinfo=UTC)
    if s[10] not in "Tt " or n < 16 or s[13] != ":":
        raise ValueError(f"invalid timestamp {s!r}")
    hour = _num(s[11:13], "hour", s)
    minute = _num(s[14:16], "minute", s)
    second = 0
    pos = 16
    if n > 16 and s[16] == ":":
        second = _num(s[17:19], "second", s)
        pos = 19
    micro = 0
    if pos < n and s[pos] in ".,":
        end = pos + 1
        while end < n and s[end] in _DIGITS:
            end += 1
        micro = _fraction(s[pos + 1 : end], s)
        pos = end
    rest = s[pos:]
    if rest in _UTC_SUFFIXES:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=_offset(rest, s))
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before datetime.min in UTC
        raise ValueError(f"invalid timestamp {s!r}: out of range") from None


def _offset(rest: str, source: str) -> timezone:
    """A fixed zone from ``+HH:MM``, ``+HHMM`` or ``+HH`` (also ``-``)."""
    sign = rest[:1]
    body = rest[1:]
    if sign not in ("+", "-"):
        raise ValueError(f"invalid timestamp {source!r}: bad zone")
    if len(body) == 5 and body[2] == ":":
        hours, minutes = _num(body[:2], "zone", source), _num(body[3:], "zone", source)
    elif len(body) == 4:
        hours, minutes = _num(body[:2], "zone", source), _num(body[2:], "zone", source)
    elif len(body) == 2:
        hours, minutes = _num(body, "zone", source), 0
    else:
        raise ValueError(f"invalid timestamp {source!r}: bad zone")
    if hours > 23 or minutes > 59:
        raise ValueError(f"invalid timestamp {source!r}: bad zone")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)


def _parse_us(s: str) -> datetime:
    """``M/D/YYYY, h:mm[:ss[.fff]] [AM|PM]``."""
    if "," in s:
        date_part, _, time_part = s.partition(",")
    else:
        date_part, _, time_part = s.partition(" ")
    pieces = date_part.strip().split("/")
    if len(pieces) != 3 or len(pieces[2]) != 4:
        raise ValueError(f"invalid timestamp {s!r}")
    month = _num(pieces[0], "month", s)
    day = _num(pieces[1], "day", s)
    year = _num(pieces[2], "year", s)
    clock = time_part.strip()
    if not clock:
        return datetime(year, month, day, tzinfo=UTC)
    meridiem = ""
    upper = clock[-2:].upper()
    if upper in ("AM", "PM"):
        meridiem = upper
        clock = clock[:-2].rstrip()
    if clock.endswith((" UTC", " GMT")):
        clock = clock[:-4].rstrip()
    parts = clock.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"invalid timestamp {s!r}")
    hour = _num(parts[0], "hour", s)
    minute = _num(parts[1], "minute", s)
    second = micro = 0
    if len(parts) == 3:
        whole, dot, frac = parts[2].replace(",", ".").partition(".")
        second = _num(whole, "second", s)
        if dot:
            micro = _fraction(frac, s)
    if len(parts[1]) != 2 or (len(parts) == 3 and len(whole) != 2):
        raise ValueError(f"invalid timestamp {s!r}")
    if meridiem:
        if not 1 <= hour <= 12:
            raise ValueError(f"invalid timestamp {s!r}: hour out of range for {meridiem}")
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
