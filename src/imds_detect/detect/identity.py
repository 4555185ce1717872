"""Process identity helpers: executable names, path normalisation and path globs that cannot be stretched."""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from typing import Any

import re2

RE2_OPTIONS = re2.Options()
RE2_OPTIONS.log_errors = False  # (a pattern RE2 refuses is reported by the caller, not logged to stderr)

_DRIVE = re.compile(r"^[a-zA-Z]:[\\/]")


@lru_cache(maxsize=4096)
def is_windows_path(path: str) -> bool:
    """Whether a path looks like a Windows path (drive letter, UNC or backslashes)."""
    return bool(_DRIVE.match(path)) or path.startswith("\\\\") or ("\\" in path and "/" not in path)


@lru_cache(maxsize=4096)
def normalize_exe_path(path: str) -> str:
    """A comparable form of an executable path: Windows paths lower-cased with `/`, dot segments resolved."""
    if not path:
        return ""
    if is_windows_path(path):
        text = path.replace("\\", "/").lower()
        for prefix in ("//?/", "//./", "/??/"):
            if text.startswith(prefix):
                text = text[len(prefix):]
        drive, rest = (text[:2], text[2:]) if _DRIVE.match(text) else ("", text)
        return drive + posixpath.normpath(rest or "/")
    return posixpath.normpath(path) if path.startswith("/") else path


@lru_cache(maxsize=4096)
def exe_name(name_or_path: str) -> str:
    """Lower-case base name without a Windows `.exe` suffix: `C:\\x\\PowerShell.EXE` -> `powershell`."""
    base = name_or_path.replace("\\", "/").rsplit("/", 1)[-1].strip().strip("\"'").lower()
    return base[:-4] if base.endswith(".exe") else base


_VERSIONED = re.compile(r"^([a-z][a-z0-9_+-]*?[a-z])(\d*)(?:[.-]\d+)+$")


@lru_cache(maxsize=4096)
def tool_name(name_or_path: str) -> str:
    """`exe_name` without version digits: `python3.10` -> `python`, `perl5.36` -> `perl`, `wget2` -> `wget`."""
    name = exe_name(name_or_path)
    versioned = _VERSIONED.match(name)
    base = versioned.group(1) if versioned else name
    return base.rstrip("0123456789") or base


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> Any:
    """Glob to regex: `*` and `?` never cross `/`; `**` does.

    Compiled with RE2 (an `re2._Regexp`): globs come from the configuration and are matched against paths and
    names an attacker chooses; with several `*` in one segment (`/opt/*a*a*a*/x`) a backtracking match takes
    time polynomial in the path, RE2 linear.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    return re2.compile("".join(out) + r"\z", RE2_OPTIONS)


@lru_cache(maxsize=16384)
def path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether an executable path matches one of the globs (Windows paths case-insensitively)."""
    if not path or not patterns:
        return False
    normalized = normalize_exe_path(path)
    windows = is_windows_path(path)
    for pattern in patterns:
        candidate = normalize_exe_path(pattern) if windows or is_windows_path(pattern) else pattern
        if _glob_regex(candidate).match(normalized):
            return True
    return False


def name_matches(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether an executable name matches one of the globs (case-insensitive, `.exe` optional)."""
    if not name:
        return False
    lowered = exe_name(name)
    return any(_glob_regex(exe_name(p)).match(lowered) for p in patterns)


def script_argument(command_line: str) -> str:
    """The script an interpreter runs: the first argument after argv[0] that is not an option."""
    tokens = _split(command_line)
    for token in tokens[1:]:
        if token.startswith("-"):
            continue
        return token
    return ""


def _split(command_line: str) -> list[str]:
    """A tolerant whitespace split that honours simple quotes (never raises)."""
    tokens: list[str] = []
    current: list[str] = []
    quote = ""
    for char in command_line[:4096]:
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote = char
        elif char.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def command_tokens(command_line: str) -> list[str]:
    """The command line split into tokens (quotes removed), bounded to the first 4 KiB."""
    return _split(command_line)
