"""Severity by what was read and, when no path is visible, by who read it."""

from __future__ import annotations

from ..knowledge.agents import NETWORK_TOOLS, SHELLS_AND_INTERPRETERS, WRITABLE_DIRS
from ..knowledge.paths import PathRule
from ..model import ProcessInfo, Severity
from .identity import normalize_exe_path, tool_name


def runs_from_writable_dir(process: ProcessInfo) -> bool:
    """Whether the executable lives in a world- or user-writable directory."""
    path = normalize_exe_path(process.path)
    lowered = path.lower() if path[:2].endswith(":") else path
    return any(lowered.startswith(prefix) for prefix in WRITABLE_DIRS)


def severity_by_process(process: ProcessInfo) -> tuple[Severity, str]:
    """Severity of a metadata access whose path is unknown, judged by the process that made it."""
    if runs_from_writable_dir(process):
        return Severity.HIGH, f"no path visible; executable runs from a writable directory ({process.path})"
    name = tool_name(process.name or process.path)
    if name in SHELLS_AND_INTERPRETERS or name in NETWORK_TOOLS:
        return Severity.MEDIUM, f"no path visible; {name} is a shell, interpreter or network tool"
    if not name:
        return Severity.LOW, "no path visible; process unknown"
    return Severity.LOW, f"no path visible; {name} is not a known agent"


def severity_for(rule: PathRule | None, path: str, process: ProcessInfo) -> tuple[str, Severity, str]:
    """(path class, severity, reason) for a metadata request."""
    if rule is not None:
        return rule.path_class, rule.severity, f"path class {rule.path_class}: {rule.description} ({rule.id})"
    if path and path not in ("/", ""):
        return "metadata", Severity.LOW, "path class metadata: unrecognised metadata path"
    severity, why = severity_by_process(process)
    return "unknown", severity, why
