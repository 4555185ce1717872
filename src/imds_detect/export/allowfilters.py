"""Allowlist entries (defaults from agents.py plus the user's tuning) as conditions, per rule family.

An entry becomes one filter: every condition it sets must hold (as in the engine). Conditions that a
family's records cannot carry make the entry inapplicable there (the engine would not match either);
conditions no SIEM record carries at all (the daemon identity of auditd-only entries) are reported as
skipped, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..detect.allowlist import AllowEntry, Allowlist
from ..detect.rules import AGENT_MASQUERADE, RULES_BY_ID
from ..knowledge.agents import INTERPRETER_PATHS

IMAGE, COMMAND_LINE, PARENT, USER, HOST, USER_AGENT, URI = (
    "image", "command_line", "parent", "user", "host", "user_agent", "uri")
PROCESS_FIELDS = frozenset({IMAGE, COMMAND_LINE, PARENT, USER, HOST})
HTTP_FIELDS = frozenset({HOST, USER_AGENT, URI})


@dataclass(frozen=True)
class Cond:
    """One condition: `op` is glob (path globs), name (file-name globs), script (interpreter's script
    argument), equals (case-insensitive) or regex (a Python/RE2 regular expression)."""

    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class EntryFilter:
    id: str
    origin: str
    description: str
    conds: tuple[Cond, ...]


def entry_conditions(entry: AllowEntry) -> tuple[Cond, ...] | None:
    """The entry's conditions, or None when it needs data no SIEM record carries (daemon identity)."""
    if entry.titles or entry.parent_pids or entry.outside_login_session or entry.without_script:
        return None
    conds: list[Cond] = []
    if entry.paths:
        conds.append(Cond(IMAGE, "glob", entry.paths))
    if entry.scripts:
        conds.append(Cond(IMAGE, "glob", INTERPRETER_PATHS))
        conds.append(Cond(COMMAND_LINE, "script", entry.scripts))
    if entry.names:
        conds.append(Cond(IMAGE, "name", entry.names))
    if entry.parents:
        conds.append(Cond(PARENT, "name", entry.parents))
    if entry.parent_paths:
        conds.append(Cond(PARENT, "glob", entry.parent_paths))
    if entry.users:
        conds.append(Cond(USER, "equals", entry.users))
    if entry.hosts:
        conds.append(Cond(HOST, "name", entry.hosts))
    for field_name, pattern in ((COMMAND_LINE, entry.command_line), (USER_AGENT, entry.user_agent),
                                (URI, entry.uri)):
        if pattern is not None:
            conds.append(Cond(field_name, "regex", (pattern.pattern,)))
    return tuple(conds)


def applies(entry: AllowEntry, rule_id: str) -> bool:
    """Whether the engine lets `entry` suppress `rule_id` (see Detector._judge)."""
    rule = RULES_BY_ID[rule_id]
    if entry.rules and rule_id not in entry.rules:
        return False
    if rule.suppressible:
        return True
    return rule is AGENT_MASQUERADE and bool(entry.rules)


def filters_for(allowlist: Allowlist, rule_id: str, fields: frozenset[str]) -> tuple[list[EntryFilter], list[str]]:
    """(filters, skipped notes) of the allowlist for one rule on records that carry `fields`."""
    filters: list[EntryFilter] = []
    skipped: list[str] = []
    for entry in allowlist.entries:
        if not applies(entry, rule_id):
            continue
        conds = entry_conditions(entry)
        if conds is None:
            skipped.append(f"{entry.id}: needs the process title, parent pid and login session (auditd only)")
            continue
        if any(cond.field not in fields for cond in conds):
            continue  # these records cannot satisfy it: the engine does not apply it to them either
        filters.append(EntryFilter(entry.id, entry.origin, entry.description, conds))
    return filters, skipped


def skipped_entries(allowlist: Allowlist) -> list[str]:
    """Entries no SIEM query can apply, with the reason (for descriptions and docs)."""
    notes = []
    for entry in allowlist.entries:
        if entry_conditions(entry) is None:
            notes.append(f"{entry.id} (needs the process title, parent pid and login session: auditd only)")
    return notes
