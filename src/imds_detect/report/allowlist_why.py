"""Why an alert was not allowlisted: the nearest allowlist entry and the conditions it failed.

Each condition of an entry is tested alone with `AllowEntry.matches` (an entry holding only that condition),
so the explanation uses exactly the allowlist's own matching.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..detect.allowlist import AllowEntry, Allowlist
from ..detect.identity import exe_name
from ..detect.rules import RULES_BY_ID
from ..model import Alert, Event, EventKind

# condition field -> (label, what the alert has)
_CONDITIONS: dict[str, tuple[str, str]] = {
    "paths": ("path", "process.path"),
    "scripts": ("script", "process.command_line"),
    "names": ("name", "process.name"),
    "parents": ("parent", "process.parent_name"),
    "parent_paths": ("parent path", "process.parent_path"),
    "users": ("user", "user"),
    "hosts": ("host", "host"),
    "command_line": ("command line", "process.command_line"),
    "user_agent": ("user agent", "user_agent"),
    "uri": ("uri", "uri"),
    "titles": ("process title", "process.title"),
    "parent_pids": ("parent pid", "process.parent_pid"),
    "outside_login_session": ("outside a login session", "process.login_session"),
    "without_script": ("no script argument", "process.command_line"),
}
_IDENTIFYING = ("paths", "scripts", "names", "hosts")


@dataclass(frozen=True)
class NearestEntry:
    """An allowlist entry close to the alert and the conditions it did not meet."""

    entry_id: str
    origin: str
    met: tuple[str, ...]
    failed: tuple[str, ...]  # "path: needs /usr/bin/amazon-ssm-agent, has /tmp/amazon-ssm-agent"


def event_of(alert: Alert) -> Event:
    """The parts of the alert's event the allowlist reads."""
    request = alert.request
    return Event(kind=EventKind.PROCESS, timestamp=alert.timestamp, source=alert.source, host=alert.host,
                 user=alert.user, process=alert.process,
                 user_agent=request.user_agent if request else "",
                 http_uri=request.uri if request else alert.endpoint.path)


def _value(expected: Any) -> str:
    if isinstance(expected, tuple):
        shown = ", ".join(str(item) for item in expected[:4])
        return shown + (f" (+{len(expected) - 4})" if len(expected) > 4 else "")
    pattern = getattr(expected, "pattern", None)
    return f"/{pattern}/" if pattern is not None else str(expected)


def _actual(event: Event, where: str) -> str:
    target: Any = event
    for part in where.split("."):
        target = getattr(target, part, "") if part != "uri" else event.http_uri
    return "unknown" if target in ("", None) else str(target)


def _judge(entry: AllowEntry, event: Event, rule_id: str) -> NearestEntry:
    met, failed = [], []
    for name in (f.name for f in fields(AllowEntry)):
        if name not in _CONDITIONS or not getattr(entry, name):
            continue
        label, where = _CONDITIONS[name]
        alone = AllowEntry(id=entry.id, **{name: getattr(entry, name)})
        if alone.matches(event, rule_id):
            met.append(label)
        else:
            failed.append(f"{label}: needs {_value(getattr(entry, name))}, has {_actual(event, where)}")
    return NearestEntry(entry.id, entry.origin, tuple(met), tuple(failed))


def _relevant(entry: AllowEntry, judged: NearestEntry, name: str) -> bool:
    """The entry is about this process: an identifying condition holds, or a path or name of it has its name."""
    if any(label in judged.met for label in ("path", "script", "name", "host")):
        return True
    candidates = (*entry.paths, *entry.names, *entry.scripts)
    return bool(name) and any(exe_name(candidate) == name for candidate in candidates)


def nearest_entry(alert: Alert, allowlist: Allowlist) -> NearestEntry | None:
    """The entry that came closest to suppressing the alert, or None when no entry is about its process."""
    event = event_of(alert)
    name = exe_name(alert.process.path or alert.process.name)
    best: tuple[int, int, NearestEntry] | None = None
    for entry in allowlist.entries:
        if entry.rules and alert.rule_id not in entry.rules:
            continue
        judged = _judge(entry, event, alert.rule_id)
        if not judged.failed or not _relevant(entry, judged, name):
            continue
        score = (len(judged.failed), -len(judged.met), judged)
        if best is None or score[:2] < best[:2]:
            best = score
    return best[2] if best else None


def why_not_allowlisted(alert: Alert, allowlist: Allowlist) -> str:
    """One sentence for the analyst: why this alert stands although an allowlist exists."""
    if alert.suppressed_by:
        return f"suppressed by allowlist entry {alert.suppressed_by}"
    rule = RULES_BY_ID.get(alert.rule_id)
    if rule is not None and not rule.suppressible:
        return f"{alert.rule_id} is never suppressed by default-scoped allowlist entries"
    if not allowlist.entries:
        return "no allowlist loaded"
    nearest = nearest_entry(alert, allowlist)
    who = alert.process.path or alert.process.name or "unknown process"
    if nearest is None:
        return f"no allowlist entry names this process ({who})"
    return f"nearest entry {nearest.entry_id} ({nearest.origin}) did not match: " + "; ".join(nearest.failed)
