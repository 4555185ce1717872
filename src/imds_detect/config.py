"""The TOML tuning file: allowlist additions and removals, scan defaults, cloud inputs and limits. Data only
(``tomllib``: no code, no includes), validated strictly."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cloud.config import load_cloud
from .cloud.settings import CloudSettings
from .detect.allowlist import AllowEntry, Allowlist, compile_regex, default_entries, entry_problem
from .detect.rules import RULES_BY_ID
from .limits import Limits
from .model import Severity


class ConfigError(Exception):
    """A configuration problem: one line that names the file and the key."""


@dataclass
class Config:
    """Everything the tuning file can set."""

    allowlist: Allowlist = field(default_factory=lambda: Allowlist(default_entries()))
    min_severity: Severity | None = None
    cloud: CloudSettings = field(default_factory=CloudSettings)
    limits: Limits = field(default_factory=Limits)
    # [web]: custom access-log format strings (tried before the built-in ones) and JSON web-log field names
    web_log_formats: tuple[str, ...] = ()
    web_json_fields: tuple[str, ...] = ()  # FIELD=NAME[,NAME...] pairs, as --json-field takes them


_TOP_KEYS = {"allowlist", "scan", "cloud", "limits", "web"}
_WEB_KEYS = {"log_formats", "json_fields"}
_ALLOWLIST_KEYS = {"defaults", "disable", "entry"}
_SCAN_KEYS = {"min_severity"}
_LIST_KEYS = {"path": "paths", "name": "names", "script": "scripts", "parent": "parents",
              "parent_path": "parent_paths", "user": "users", "host": "hosts", "rules": "rules"}
_REGEX_KEYS = {"command_line", "user_agent", "uri"}
_ENTRY_KEYS = {"id", "description", "allow_interpreter", *_LIST_KEYS, *_REGEX_KEYS}


def load_config(path: str | None, use_defaults: bool = True) -> Config:
    """Read and validate a config file (or just the defaults when `path` is None)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"config {path}: cannot read: {error.strerror or error}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"config {path}: not valid TOML: {error}") from None
    return _build(data, path or "<defaults>", use_defaults)


def _build(data: dict[str, Any], where: str, use_defaults: bool) -> Config:
    _check_keys(data, _TOP_KEYS, where, "")
    scan = _table(data.get("scan", {}), where, "scan")
    _check_keys(scan, _SCAN_KEYS, where, "scan.")
    config = Config()
    if "min_severity" in scan:
        try:
            config.min_severity = Severity.parse(str(scan["min_severity"]))
        except ValueError as error:
            raise ConfigError(f"config {where}: scan.min_severity: {error}") from None
    section = _table(data.get("allowlist", {}), where, "allowlist")
    _check_keys(section, _ALLOWLIST_KEYS, where, "allowlist.")
    defaults_on = section.get("defaults", True)
    if not isinstance(defaults_on, bool):
        raise ConfigError(f"config {where}: allowlist.defaults must be true or false")
    entries = default_entries() if (use_defaults and defaults_on) else []
    disable = section.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(item, str) for item in disable):
        raise ConfigError(f"config {where}: allowlist.disable must be a list of entry ids")
    known = {entry.id for entry in default_entries()}
    for entry_id in disable:
        if entry_id not in known:
            raise ConfigError(f"config {where}: allowlist.disable: no default entry {entry_id!r}")
    entries = [e for e in entries if e.id not in disable and e.id.removesuffix("-script") not in disable]
    raw_entries = section.get("entry", [])
    if not isinstance(raw_entries, list):
        raise ConfigError(f"config {where}: allowlist.entry must be an array of tables ([[allowlist.entry]])")
    for index, raw in enumerate(raw_entries):
        entries.append(_entry(raw, where, f"allowlist.entry[{index}]"))
    config.allowlist = Allowlist(entries)
    try:
        config.limits = Limits.from_table(_table(data.get("limits", {}), where, "limits"))
    except ValueError as error:
        raise ConfigError(f"config {where}: {error}") from None
    config.web_log_formats, config.web_json_fields = _web(_table(data.get("web", {}), where, "web"), where)
    try:
        config.cloud = load_cloud(_table(data.get("cloud", {}), where, "cloud"), Path(where).parent)
    except ValueError as error:
        raise ConfigError(f"config {where}: {error}") from None
    return config


def _web(table: dict[str, Any], where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``[web]`` table: ``log_formats`` (nginx ``log_format`` / Apache ``LogFormat`` strings) and
    ``json_fields`` (a table of field = "name[,name...]"), each checked the way the scan will use it."""
    from .sources.webconfig import check_web_formats

    _check_keys(table, _WEB_KEYS, where, "web.")
    formats = table.get("log_formats", [])
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not all(isinstance(item, str) and item.strip() for item in formats):
        raise ConfigError(f"config {where}: web.log_formats must be a list of format strings")
    fields = table.get("json_fields", {})
    if not isinstance(fields, dict) or not all(isinstance(value, str) and value.strip() for value in fields.values()):
        raise ConfigError(f"config {where}: web.json_fields must be a table of field = \"name[,name...]\"")
    pairs = tuple(f"{key}={value}" for key, value in fields.items())
    try:
        check_web_formats(formats, pairs)
    except ValueError as error:
        raise ConfigError(f"config {where}: web: {error}") from None
    return tuple(formats), pairs


def _table(value: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"config {where}: {key} must be a table")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            expected = ", ".join(sorted(allowed))
            raise ConfigError(f"config {where}: unknown key {prefix}{key} (expected one of {expected})")


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise ConfigError(f"config {where}: {key} must be a string or a list of non-empty strings")
    return tuple(items)


def _entry(raw: Any, where: str, label: str) -> AllowEntry:
    table = _table(raw, where, label)
    _check_keys(table, _ENTRY_KEYS, where, label + ".")
    entry_id = table.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        raise ConfigError(f"config {where}: {label}.id is required (a short name shown when it suppresses)")
    fields: dict[str, Any] = {}
    for key, attribute in _LIST_KEYS.items():
        if key in table:
            fields[attribute] = _strings(table[key], where, f"{label}.{key}")
    for rule_id in fields.get("rules", ()):
        if rule_id not in RULES_BY_ID:
            raise ConfigError(f"config {where}: {label}.rules: unknown rule {rule_id!r}")
    for key in _REGEX_KEYS:
        if key in table:
            pattern = table[key]
            if not isinstance(pattern, str):
                raise ConfigError(f"config {where}: {label}.{key} must be a regular expression string")
            try:  # RE2: these are searched in attacker-written text, in time linear in it
                fields[key] = compile_regex(pattern)
            except ValueError as error:
                raise ConfigError(f"config {where}: {label}.{key}: invalid regular expression for RE2 (no look-around "
                                  f"or back-references; \\z, not \\Z): {error}") from None
    allow_interpreter = table.get("allow_interpreter", False)
    if not isinstance(allow_interpreter, bool):
        raise ConfigError(f"config {where}: {label}.allow_interpreter must be true or false")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"config {where}: {label}.description must be a string")
    entry = AllowEntry(id=entry_id, description=description, origin=f"config:{where}",
                       allow_interpreter=allow_interpreter, **fields)
    problem = entry_problem(entry)
    if problem:
        raise ConfigError(f"config {where}: {label} ({entry_id}): {problem}")
    return entry
