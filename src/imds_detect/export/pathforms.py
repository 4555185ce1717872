"""Metadata paths of the knowledge base (paths.py regexes) as Sigma wildcard values, grouped by level.

Each PathRule regex is expanded into the literal alternatives it allows: optional parts and alternations
give one value each, character classes with a repetition become `*`, small literal classes are expanded.
A SIEM matches these as substrings, so it cannot tell where the path ends: a role listing written with a
trailing slash (`.../security-credentials/`) reads as the credentials path there (high, not medium).
"""

from __future__ import annotations

import itertools
from functools import cache

from ..knowledge.paths import RULES, PathRule
from ..model import Severity

MAX_FORMS = 16
_QUANT = "?*+{"


def _parse_class(pattern: str, start: int) -> tuple[str, int]:
    end = start + 1
    if pattern[end : end + 1] == "^":
        end += 1
    if pattern[end : end + 1] == "]":
        end += 1
    while pattern[end] != "]":
        end += 2 if pattern[end] == "\\" else 1
    return pattern[start : end + 1], end + 1


def _split_alternatives(body: str) -> list[str]:
    parts, depth, current, index = [], 0, [], 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            current.append(body[index : index + 2])
            index += 2
            continue
        if char == "[":
            cls, index = _parse_class(body, index)
            current.append(cls)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _quantifier(pattern: str, index: int) -> tuple[str, int]:
    if index < len(pattern) and pattern[index] in "?*+":
        return pattern[index], index + 1
    if index < len(pattern) and pattern[index] == "{":
        end = pattern.index("}", index)
        return pattern[index : end + 1], end + 1
    return "", index


def expand(pattern: str) -> list[str]:
    """Sigma wildcard strings (`*` for any run) that the regex `pattern` allows, at most MAX_FORMS."""
    out: list[str] = []
    for form in _expand(pattern):
        while "**" in form:
            form = form.replace("**", "*")
        form = form.rstrip("*")
        if form and form not in out:
            out.append(form)
    return out[:MAX_FORMS]


def _expand(pattern: str) -> list[str]:
    forms = [""]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        atom: list[str]
        if char == "\\":
            atom = [_sigma_literal(pattern[index + 1])] if pattern[index + 1] not in "sdw" else ["*"]
            index += 2
        elif char == "[":
            cls, index = _parse_class(pattern, index)
            inner = cls[1:-1]
            atom = list(inner) if inner.isalnum() else ["*"]
        elif char == "(":
            depth, end = 1, index + 1
            while depth:
                if pattern[end] == "\\":
                    end += 2
                    continue
                depth += {"(": 1, ")": -1}.get(pattern[end], 0)
                end += 1
            body = pattern[index + 1 : end - 1]
            body = body[2:] if body.startswith("?:") else body
            atom = [form for alternative in _split_alternatives(body) for form in _expand(alternative)]
            index = end
        elif char == "$":
            atom = [""]
            index += 1
        elif char == ".":
            atom = ["*"]
            index += 1
        else:
            atom = [_sigma_literal(char)]
            index += 1
        quant, index = _quantifier(pattern, index)
        if quant == "?":
            atom = [*atom, ""]
        elif quant and atom != ["*"]:
            atom = [a + "*" for a in atom] if quant in ("+",) or quant.startswith("{") else ["*"]
        forms = list(dict.fromkeys(a + b for a, b in itertools.product(forms, atom)))[: MAX_FORMS * 4]
    return forms


def _sigma_literal(char: str) -> str:
    """A literal character in a Sigma value; `?` stays a one-character wildcard (it matches itself too)."""
    return "\\" + char if char in "*\\" else char


@cache
def rule_values(rule: PathRule) -> tuple[str, ...]:
    return tuple(expand(rule.pattern))


LEVELS: tuple[tuple[str, Severity], ...] = (("high", Severity.HIGH), ("medium", Severity.MEDIUM),
                                             ("low", Severity.LOW))


def values_by_level(marker_only: bool) -> dict[str, tuple[str, ...]]:
    """Path values per Sigma level (high, medium, low); with `marker_only`, only metadata-specific paths."""
    out: dict[str, list[str]] = {name: [] for name, _ in LEVELS}
    for rule in RULES:
        if marker_only and not rule.marker:
            continue
        level = next(name for name, severity in LEVELS if severity == rule.severity)
        for value in rule_values(rule):
            if value not in out[level]:
                out[level].append(value)
    return {level: tuple(values) for level, values in out.items()}


def rules_by_level(marker_only: bool) -> dict[str, tuple[PathRule, ...]]:
    out: dict[str, list[PathRule]] = {name: [] for name, _ in LEVELS}
    for rule in RULES:
        if marker_only and not rule.marker:
            continue
        out[next(name for name, severity in LEVELS if severity == rule.severity)].append(rule)
    return {level: tuple(rules) for level, rules in out.items()}
