"""The allowlist: identity-based entries that suppress alerts for legitimate metadata clients.

An entry matches only when every condition it sets holds and the data carries the field it tests:
a missing executable path never satisfies a path condition. Entries must identify the process
itself (by path, interpreter script, or host); a parent or user only narrows an entry, so the child
of an agent is never allowed because of its parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, cast

import re2

from ..knowledge.agents import (
    AGENTS,
    INTERPRETER_PATHS,
    NETWORK_TOOLS,
    SHELLS_AND_INTERPRETERS,
    SYSTEM_PYTHON_PATHS,
)
from ..model import Event
from .identity import RE2_OPTIONS, exe_name, name_matches, path_matches, script_argument, tool_name


class TextPattern(Protocol):
    """A compiled regular expression that is searched in text (`re.Pattern` or RE2's)."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, /) -> object | None: ...


def compile_regex(pattern: str) -> TextPattern:
    """An entry's regular expression (command_line, user_agent, uri), compiled with RE2.

    Those are searched in text an attacker writes (command lines, user agents, request targets), so they run on
    an engine that is linear in the text whatever the expression; a backtracking one would let a hostile line
    take polynomial or exponential time on an expression such as `(a|a)*x` or `.*=.*=.*;`. RE2 syntax is
    Python's without look-around and back-references, with `\\z` for Python's `\\Z`; `\\d`, `\\w`, `\\s`, `\\b`
    are ASCII and `$` matches only at the very end. ValueError (one line) when RE2 cannot compile it.
    """
    try:
        return cast(TextPattern, re2.compile(pattern, RE2_OPTIONS))
    except re2.error as error:
        message = error.args[0] if error.args else error
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        raise ValueError(" ".join(text.split())) from None


@dataclass(frozen=True)
class AllowEntry:
    """One allowlist entry. Tuple fields are alternatives (any may match); fields are combined with AND."""

    id: str
    description: str = ""
    origin: str = "default"  # "default" or "config:<file>"
    paths: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    parent_paths: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    command_line: TextPattern | None = None  # RE2 (compile_regex): searched in attacker-written text
    user_agent: TextPattern | None = None
    uri: TextPattern | None = None
    rules: tuple[str, ...] = ()  # rule ids it applies to; empty = every suppressible rule
    allow_interpreter: bool = False
    # Daemon identity for logs without a command line (see AgentIdentity.daemon_titles).
    titles: tuple[str, ...] = ()
    parent_pids: tuple[int, ...] = ()
    outside_login_session: bool = False
    without_script: bool = False  # the command line, if any, names no script (none seen, or a rewritten title)

    def matches(self, event: Event, rule_id: str) -> bool:
        """Whether this entry suppresses `rule_id` raised on `event`."""
        if self.rules and rule_id not in self.rules:
            return False
        process = event.process
        if self.paths and not path_matches(process.path, self.paths):
            return False
        if self.scripts and not self._runs_script(process.path, process.command_line):
            return False
        if self.names and not name_matches(process.name or process.path, self.names):
            return False
        if self.parents and not name_matches(process.parent_name or process.parent_path, self.parents):
            return False
        if self.parent_paths and not path_matches(process.parent_path, self.parent_paths):
            return False
        if self.users and _bare_user(event.user or process.user) not in {u.lower() for u in self.users}:
            return False
        if self.hosts and not name_matches(event.host, self.hosts):
            return False
        if self.command_line and not self.command_line.search(process.command_line):
            return False
        if self.user_agent and not self.user_agent.search(event.user_agent):
            return False
        if self.uri and not self.uri.search(event.http_uri):
            return False
        return self._daemon_conditions_hold(event)

    def _daemon_conditions_hold(self, event: Event) -> bool:
        process = event.process
        if self.titles and process.title not in self.titles:
            return False
        if self.parent_pids and process.parent_pid not in self.parent_pids:
            return False
        if self.outside_login_session and process.login_session is not False:
            return False
        return not (self.without_script and script_argument(process.command_line))

    def _runs_script(self, path: str, command_line: str) -> bool:
        if not path_matches(path, INTERPRETER_PATHS):
            return False
        script = script_argument(command_line)
        return bool(script) and (path_matches(script, self.scripts) or script.lower() in self.scripts)


def _bare_user(user: str) -> str:
    return user.replace("/", "\\").rsplit("\\", 1)[-1].lower()


@dataclass
class Allowlist:
    """Ordered entries; the first match suppresses."""

    entries: list[AllowEntry] = field(default_factory=list)

    def match(self, event: Event, rule_id: str) -> AllowEntry | None:
        for entry in self.entries:
            if entry.matches(event, rule_id):
                return entry
        return None

    def considered(self, event: Event) -> list[str]:
        """Entries that share the process name but did not match (to explain why an alert stands)."""
        name = exe_name(event.process.name or event.process.path)
        if not name:
            return []
        notes = []
        for agent in AGENTS:
            if name in {exe_name(n) for n in agent.names}:
                where = event.process.path or "unknown path"
                notes.append(f"allowlist {agent.id}: name matches but identity does not ({where})")
        return notes


def default_entries() -> list[AllowEntry]:
    """The default allowlist, derived from the agents of the knowledge base."""
    return [
        AllowEntry(
            id=agent.id,
            description=agent.description,
            paths=agent.paths,
            parents=agent.parent_names,
            users=agent.users,
            allow_interpreter=agent.generic_tool,
        )
        for agent in AGENTS
        if agent.paths
    ] + [
        AllowEntry(
            id=f"{agent.id}-script",
            description=f"{agent.description} (interpreter running the agent script)",
            scripts=agent.scripts,
            allow_interpreter=True,
        )
        for agent in AGENTS
        if agent.scripts
    ] + [
        AllowEntry(
            id=f"{agent.id}-daemon",
            description=(f"{agent.description} (system Python named {', '.join(agent.daemon_titles)}, started "
                         "by init as root outside any login session, where the log shows no script argument)"),
            paths=SYSTEM_PYTHON_PATHS,
            titles=agent.daemon_titles,
            parent_pids=(1,),
            users=("root",),
            outside_login_session=True,
            without_script=True,
            allow_interpreter=True,
        )
        for agent in AGENTS
        if agent.daemon_titles
    ]


def entry_problem(entry: AllowEntry) -> str | None:
    """Why an entry would open a hole, or None when it is safe to load."""
    if not (entry.paths or entry.scripts or entry.hosts):
        return ("must name the process by 'path' (or 'script', or a whole 'host'): "
                "a name, parent or user alone can be faked")
    if entry.allow_interpreter:
        return None
    generic = [p for p in entry.paths if tool_name(p) in SHELLS_AND_INTERPRETERS | NETWORK_TOOLS]
    if generic and not (entry.command_line or entry.parents or entry.users or entry.hosts):
        return (f"path {generic[0]!r} is a shell, interpreter or download tool: narrow it with "
                "'command_line', 'parent' or 'user', or set allow_interpreter = true knowingly")
    return None
