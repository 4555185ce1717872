"""Allowlist globs (`*` and `?` never cross a folder, `**` does) as Sigma values and as RE2 expressions.

Windows globs in the knowledge base are lower case with `/`; the logs write `\\`. Sigma matches
case-insensitively and its `*` crosses folders, so a Sigma value is slightly wider than the glob (the
documented difference); the native KQL uses an exact regular expression instead.
"""

from __future__ import annotations

import re

_DRIVE = re.compile(r"^[a-zA-Z]:[\\/]")


def is_windows_glob(pattern: str) -> bool:
    return bool(_DRIVE.match(pattern)) or pattern.startswith("\\\\")


def native_text(pattern: str) -> str:
    """The glob as the logs write the path (Windows: backslashes, drive letter upper case)."""
    if not is_windows_glob(pattern):
        return pattern
    text = pattern.replace("/", "\\")
    return text[0].upper() + text[1:]


def sigma_escape(text: str, keep_wildcards: bool = True) -> str:
    """Escape for a Sigma string: a backslash before `*`, `?` or `\\` is doubled (else it would escape it)."""
    out: list[str] = []
    for index, char in enumerate(text):
        if char in "*?":
            out.append(char if keep_wildcards else "\\" + char)
        elif char == "\\":
            following = text[index + 1 : index + 2]
            out.append("\\\\" if following in ("*", "?", "\\") or (following == "" and not keep_wildcards) else "\\")
        else:
            out.append(char)
    return "".join(out)


def sigma_path_value(pattern: str) -> tuple[str, str]:
    """(modifier, value) of a path glob in Sigma: exact, startswith (one trailing `*`), or a wildcard value."""
    text = native_text(pattern).replace("**", "*")
    body = text[:-1] if text.endswith("*") else text
    if "*" not in body and "?" not in body:
        if text.endswith("*"):
            return "startswith", sigma_escape(body)
        return "", sigma_escape(text)
    return "", sigma_escape(text)


def glob_regex(pattern: str, anchored: bool = True) -> str:
    """An RE2 regular expression for the glob, as the engine reads it (Windows: case-insensitive, `\\` or `/`)."""
    windows = is_windows_glob(pattern)
    sep = r"[\\/]" if windows else "/"
    not_sep = r"[^\\/]" if windows else "[^/]"
    out: list[str] = []
    index = 0
    text = pattern.replace("\\", "/") if windows else pattern
    while index < len(text):
        char = text[index]
        if text.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append(not_sep + "*")
        elif char == "?":
            out.append(not_sep)
        elif char == "/":
            out.append(sep)
        else:
            out.append(regex_escape(char))
        index += 1
    body = "".join(out)
    if anchored:
        body = "^" + body + "$"
    return ("(?i)" if windows else "") + body


_RE_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def regex_escape(text: str) -> str:
    """Escape regex metacharacters only (RE2 rejects escapes of ordinary characters such as `\\ `)."""
    return "".join("\\" + char if char in _RE_SPECIAL else char for char in text)
