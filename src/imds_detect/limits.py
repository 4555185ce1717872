"""Every bound a scan keeps on hostile input, in one place; each one configurable and each hit counted.

A scan never holds an unbounded line, record, decode chain or aggregation state. The bounds live in
:class:`Limits` (defaults: the values imds-detect has always used); a scan takes them from
``ScanOptions.limits``, which the ``[limits]`` table of the tuning file (and ``--limit NAME=VALUE``) fill.

How the code reads them: the source adapters and detectors are module-level singletons, so the
:class:`~imds_detect.engine.scan.Scanner` makes its limits the process-wide *active* ones
(:func:`activate`) whenever it starts work (a file, a range, its final judgement); everything else reads
:func:`active`. Worker processes of ``--jobs`` are forked and their scanners activate the same limits.

What happens on a hit (:func:`hit`): it is counted by the limit's name in the scan summary ("limits hit:
max_line_bytes=3"), and when it drops or cuts data of a record it is also reported with the file and line
of that record - by the adapter as a skipped record, or here as a warning for what the detections cut
(a text judged in part, a decode chain stopped, state that could not grow). Nothing is dropped silently:

- ``max_line_bytes`` / ``max_json_record_bytes`` / ``max_event_bytes``: the over-long line or record is
  skipped with its file and line (reason ``oversized-record``), reading goes on after it;
- ``max_decode_depth``: the text is judged with the layers decoded so far;
- ``max_text_chars``: the first ``max_text_chars`` characters of a field are judged;
- ``max_audit_open_events``: the oldest open audit event is closed early and judged as it stands (a record
  of it that comes later is reported as ``incomplete-event``); ``max_audit_event_records``: further records
  of one event are skipped and reported;
- ``max_probing_clients``: alerts of clients beyond the cap are kept one by one (not folded);
  ``max_probing_listed``: what a folded alert does not list is counted in it;
- ``max_cloud_sessions``: calls of workload sessions beyond the cap are counted and reported, not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["BOUNDS", "DESCRIPTIONS", "Limits", "activate", "active", "cut_text", "hit", "judging", "on_change",
           "parse_overrides"]

KiB, MiB = 1 << 10, 1 << 20


@dataclass(frozen=True)
class Limits:
    """The bounds of a scan (see the module docstring for what each does when it is reached)."""

    max_line_bytes: int = 256 * KiB  # one line of a text log (auditd, access, proxy, Zeek TSV, IIS, ALB)
    max_json_record_bytes: int = 256 * MiB  # one JSON record (a JSON line, an element of a JSON document)
    max_event_bytes: int = 1 * MiB  # one Windows event as XML, or one line of a Windows event export
    max_decode_depth: int = 4  # rounds of percent/escape decoding applied to a URL, host or path
    max_text_chars: int = 65536  # characters of one field (command line, URL, body) the detections judge
    max_audit_open_events: int = 128  # audit events assembled at once (records of many events interleave)
    max_audit_event_records: int = 64  # tracked records kept for one audit event
    max_probing_clients: int = 100_000  # clients whose alerts are folded into probing alerts
    max_probing_listed: int = 32  # spellings, paths and records listed in one probing alert
    max_cloud_sessions: int = 1_000_000  # workload sessions (instances, tasks, pods, identities) tracked

    def __post_init__(self) -> None:
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value!r}")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], base: Limits | None = None) -> Limits:
        """Limits with the values of a ``[limits]`` table; ValueError naming the key on a bad one."""
        known = {item.name for item in fields(cls)}
        for key in table:
            if key not in known:
                raise ValueError(f"unknown key limits.{key} (expected one of {', '.join(sorted(known))})")
        try:
            return replace(base or cls(), **table)  # __post_init__ checks every value against BOUNDS
        except ValueError as error:
            raise ValueError(f"limits.{error}") from None

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


# (smallest, largest) accepted value of each limit: large enough to read real logs, small enough that a
# typo cannot ask for unbounded memory or time.
BOUNDS: dict[str, tuple[int, int]] = {
    "max_line_bytes": (256, 1 << 30),
    "max_json_record_bytes": (256, 1 << 31),
    "max_event_bytes": (256, 1 << 30),
    "max_decode_depth": (1, 16),
    "max_text_chars": (64, 16 * MiB),
    "max_audit_open_events": (1, 1_000_000),
    "max_audit_event_records": (4, 65536),
    "max_probing_clients": (1, 100_000_000),
    "max_probing_listed": (1, 100_000),
    "max_cloud_sessions": (1, 100_000_000),
}

DESCRIPTIONS: dict[str, str] = {
    "max_line_bytes": "line of a text log longer than this: skipped and reported (file:line)",
    "max_json_record_bytes": "JSON record larger than this: skipped and reported",
    "max_event_bytes": "Windows event (XML) or event-export line larger than this: skipped and reported",
    "max_decode_depth": "decoding rounds of a URL/host/path: judged at the depth reached",
    "max_text_chars": "characters of one field judged: the rest is not read",
    "max_audit_open_events": "audit events assembled at once: the oldest is closed early and judged",
    "max_audit_event_records": "records kept per audit event: further ones skipped and reported",
    "max_probing_clients": "clients folded into probing alerts: the others' alerts are kept unfolded",
    "max_probing_listed": "items listed per probing alert: the rest counted in it",
    "max_cloud_sessions": "workload sessions tracked by the cloud detections: calls of further ones reported",
}

HitSink = Callable[[str, int, str, int, str], None]  # name, count, file, line, detail

_ACTIVE = Limits()
_SINK: HitSink | None = None
_WHERE: tuple[str, int] = ("", 0)  # the record being judged (set by the scanner), for hits without a place
_LISTENERS: list[Callable[[], None]] = []


def active() -> Limits:
    """The limits of the scan running in this process (the defaults outside a scan)."""
    return _ACTIVE


def activate(limits: Limits, sink: HitSink | None) -> None:
    """Make `limits` the active ones and send hits to `sink` (None: hits are not counted)."""
    global _ACTIVE, _SINK
    changed = limits != _ACTIVE
    _ACTIVE, _SINK = limits, sink
    if changed:
        for listener in _LISTENERS:
            listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call `listener` whenever other limits become active (caches of results that depend on them)."""
    _LISTENERS.append(listener)


def judging(file: str, line: int) -> None:
    """The record now being judged: hits reported without a place of their own are placed there."""
    global _WHERE
    _WHERE = (file, line)


def hit(name: str, count: int = 1, file: str = "", line: int = 0, detail: str = "") -> None:
    """Count `count` hits of limit `name`; with `detail`, also warn (at `file`:`line`, or the record being
    judged) - for hits that cut or drop data that no skipped record reports."""
    if _SINK is None:
        return
    if detail and not file:
        file, line = _WHERE
    _SINK(name, count, file, line, detail)


def cut_text(text: str, what: str) -> str:
    """The part of a field the detections judge: its first ``max_text_chars`` characters (a longer one is a hit,
    reported at the record being judged)."""
    limit = _ACTIVE.max_text_chars
    if len(text) <= limit:
        return text
    hit("max_text_chars", detail=f"{what} of {len(text)} characters: its first {limit} judged")
    return text[:limit]


def parse_overrides(items: Iterable[str], base: Limits) -> Limits:
    """`base` with ``NAME=VALUE`` overrides (``--limit``); ValueError with a one-line reason."""
    table: dict[str, Any] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or not name:
            raise ValueError(f"{item!r}: expected NAME=VALUE, e.g. max_line_bytes=1048576")
        text = value.strip().replace("_", "")
        if not text.isdigit():
            raise ValueError(f"{item!r}: the value must be a whole number")
        table[name] = int(text)
    try:
        return Limits.from_table(table, base)
    except ValueError as error:
        raise ValueError(str(error).replace("limits.", "", 1)) from None
