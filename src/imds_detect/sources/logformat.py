"""Access-log line formats given as an nginx `log_format` or an Apache `LogFormat` string.

A format compiles to one regular expression over the line and a list of what each captured value is
(client, time, request, Host header, status ...). A value ends at the first character of the literal
text that follows it in the format (backslash escapes inside it are skipped), so quoted fields may hold
spaces; a value at the end of the format runs to the end of the line. Variables that do not matter to
the detections are matched and ignored.

nginx: `$name` or `${name}`; Apache: `%h`, `%>s`, `%{User-Agent}i`, `%{%d/%b/%Y:%H:%M:%S %z}t`, with the
`\\"` of an httpd.conf line accepted for `"`. A format needs a time and a request target (`$request`,
`$request_uri`, `$uri`, `%r`, `%U` ...).

Matching is linear in the line (docs/REGEX_AUDIT.md). The reference semantics is that of one backtracking
regular expression per format; backtracking into a value (a `\\"` read as a value ending in a backslash, a
short value before another one) would be polynomial in the line on hostile lines. So a line is matched by
`LogFormat.regex`, the same expression with every value in an atomic group (it commits to the first way a
value can be read: linear, and when it matches the result is the reference one), and only when that fails
by `LogFormat.exact`, the reference expression under RE2 (linear, leftmost-first: the same groups).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import re2

from .httplog import HttpRecord, clf_time, epoch_time, split_request, to_int, unescape
from .timeparse import parse_timestamp

# Normalized fields; SCANNED ones are where a metadata host or URL is looked for.
SCANNED = frozenset({"request", "uri", "path", "query", "host", "body"})
TEXT_FIELDS = SCANNED | {"user_agent", "server", "client", "destination", "user"}

NGINX_VARIABLES: dict[str, tuple[str, str]] = {
    "remote_addr": ("client", ""), "realip_remote_addr": ("client", ""), "remote_user": ("user", ""),
    "time_local": ("time", "clf"), "time_iso8601": ("time", "iso"), "msec": ("time", "epoch"),
    "request": ("request", ""), "request_method": ("method", ""), "request_uri": ("uri", ""),
    "uri": ("path", ""), "document_uri": ("path", ""), "args": ("query", ""), "query_string": ("query", ""),
    "status": ("status", ""), "body_bytes_sent": ("bytes", ""), "bytes_sent": ("bytes", ""),
    "http_user_agent": ("user_agent", ""), "http_host": ("host", ""), "host": ("host", ""),
    "server_name": ("server", ""), "hostname": ("server", ""), "server_addr": ("server", ""),
    "request_body": ("body", ""), "upstream_addr": ("destination", ""),
}
APACHE_DIRECTIVES: dict[str, tuple[str, str]] = {
    "h": ("client", ""), "a": ("client", ""), "u": ("user", ""), "t": ("time", "clf"), "r": ("request", ""),
    "m": ("method", ""), "U": ("path", ""), "q": ("query", ""), "s": ("status", ""), "b": ("bytes", ""),
    "B": ("bytes", ""), "O": ("bytes", ""), "v": ("server", ""), "A": ("server", ""),
    # %V is the Host the client sent (UseCanonicalName Off, the default)
    "V": ("host", ""),
}
APACHE_HEADERS: dict[str, str] = {"user-agent": "user_agent", "host": "host"}
_APACHE_DIRECTIVE = re.compile(r"%(?:!?[0-9]{3}(?:,[0-9]{3})*)?[<>]?(?:\{([^}]*)\})?(\^t[io]|[a-zA-Z%])")
_NGINX_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")
_NUMERIC = {"status": r"(-|[0-9]{1,3})", "bytes": r"(-|[0-9]+)"}


class _Dialect(NamedTuple):
    """How a pattern says white space and the end of the text."""

    space: str  # one white-space character
    space_chars: str  # the same inside a character class
    not_space: str
    end: str


_PYTHON = _Dialect(r"\s", r"\s", r"\S", r"\Z")
# Python's `\s` on str (str.isspace()); RE2's `\s` is [\t\n\f\r ] only.
_SPACE_CHARS = r"\t\n\x0b\x0c\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_RE2 = _Dialect(f"[{_SPACE_CHARS}]", _SPACE_CHARS, f"[^{_SPACE_CHARS}]", r"\z")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.dot_nl = True  # re.DOTALL
_RE2_OPTIONS.log_errors = False
ADDRESS_CHARS = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:.[]_-"


class LogFormatError(ValueError):
    """A format string that cannot be used."""


@dataclass(frozen=True)
class Element:
    """A piece of a format: literal text, or a variable with its normalized field ('' = ignored)."""

    literal: str = ""
    field: str = ""
    time_kind: str = ""  # clf | iso | epoch | epoch-ms | epoch-us | strftime:<fmt>
    variable: str = ""  # as written, for messages


@dataclass(frozen=True)
class LogFormat:
    """A compiled access-log format."""

    text: str
    style: str  # nginx | apache
    regex: re.Pattern[str]  # values in atomic groups: linear; a match is the reference one
    exact: Any  # the reference expression under RE2 (re2._Regexp), tried when `regex` does not match
    fields: tuple[tuple[str, str], ...]  # (group name, field) per captured variable
    time_kind: str
    starts_with_scanned: bool  # the first element is a field the detections read
    first_edge: bytes | None  # what every line starts with (a class of characters), when known
    last_edge: bytes | None

    def parse(self, text: str) -> HttpRecord | None:
        """The record of one line, or None when the line does not have this format; ValueError on a bad time."""
        match: Any = self.regex.match(text)
        if match is None:
            try:
                match = self.exact.match(text)
            except UnicodeEncodeError:  # a lone surrogate (lines are decoded with "replace": none there)
                return None
            if match is None:
                return None
        values: dict[str, str] = {}
        for group, field in self.fields:
            value = match.group(group)
            if value is not None and field not in values:
                values[field] = value
        return _record(values, self.time_kind)


def _record(values: dict[str, str], time_kind: str) -> HttpRecord:
    def text(field: str) -> str:
        value = values.get(field, "")
        return "" if value == "-" else unescape(value) if field in TEXT_FIELDS else value

    method, target = split_request(text("request"))
    if not target:
        target = text("uri") or text("path")
        query = text("query")
        if target and query and "?" not in target:
            target += query if query.startswith("?") else "?" + query
    return HttpRecord(
        time=parse_time(values.get("time", ""), time_kind),
        client=text("client"),
        method=method or text("method"),
        target=target,
        host=text("host"),
        status=to_int(values.get("status")),
        response_bytes=to_int(values.get("bytes")),
        user_agent=text("user_agent"),
        body=text("body"),
        server=text("server"),
        destination=text("destination"),
    )


def parse_time(value: str, kind: str) -> datetime:
    """A logged time by the kind its format gives; ValueError when it does not read."""
    if kind == "clf":
        return clf_time(value)
    if kind == "iso":
        return parse_timestamp(value)
    if kind.startswith("epoch"):
        scale = {"epoch": 1, "epoch-ms": 1000, "epoch-us": 1_000_000}[kind]
        number = to_int(value) if scale > 1 else None
        return epoch_time(number / scale if number is not None else value)
    if kind.startswith("strftime:"):
        moment = datetime.strptime(value.strip("[]"), kind.removeprefix("strftime:"))
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise ValueError(f"unknown time kind {kind!r}")


def compile_format(text: str, allow_trailing: bool = False) -> LogFormat:
    """Compile an nginx `log_format` or Apache `LogFormat` string (recognised by `$` or `%` variables)."""
    style = "nginx" if _NGINX_VARIABLE.search(text) else "apache"
    elements = _nginx_elements(text) if style == "nginx" else _apache_elements(text)
    fields = {element.field for element in elements}
    if "time" not in fields:
        raise LogFormatError(f"log format {text!r} has no time variable")
    if not fields & {"request", "uri", "path"}:
        raise LogFormatError(f"log format {text!r} has no request variable ($request, $request_uri, %r, %U ...)")
    fast: list[str] = []  # `regex`: each value atomic (a lazy one together with the value after it)
    groups: list[tuple[str, str]] = []
    time_kind = ""
    opened = 0  # atomic groups of lazy values still open in `fast`
    ended = False  # `fast` already holds the last value and the end of the line
    for index, element in enumerate(elements):
        if not element.field and not element.variable:
            fast.append(re.escape(element.literal))
            continue
        following = elements[index + 1] if index + 1 < len(elements) else None
        name = f"f{index}"
        pattern, kind = _value_pattern(element, following, name, _PYTHON)
        if kind == "lazy":  # `\S*?` before another value: committed together with that value
            fast.append("(?>" + pattern)
            opened += 1
        elif kind == "last":  # `.*?` up to the end: white space after it is the tail's
            value = pattern if allow_trailing else rf"(?P<{name}>(?:.*\S)?)"  # (the same, without lazy steps)
            fast.append(value + (r"(?:\s.*)?\Z" if allow_trailing else r"\s*\Z") + ")" * opened)
            opened, ended = 0, True
        else:
            fast.append("(?>" + pattern + ")" + ")" * opened)
            opened = 0
        if element.field:
            groups.append((name, element.field))
        if element.field == "time" and not time_kind:
            time_kind = element.time_kind
    tail = r"(?:\s.*)?" if allow_trailing else r"\s*"
    regex = re.compile("".join(fast) + ("" if ended else tail + r"\Z"), re.DOTALL)
    first, last = elements[0], elements[-1]
    return LogFormat(
        text=text,
        style=style,
        regex=regex,
        exact=re2.compile(reference_pattern(elements, allow_trailing, _RE2), _RE2_OPTIONS),
        fields=tuple(groups),
        time_kind=time_kind,
        starts_with_scanned=first.field in SCANNED,
        first_edge=_edge_of(first, first=True),
        last_edge=None if allow_trailing else _edge_of(last, first=False),
    )


def reference_pattern(elements: list[Element], allow_trailing: bool, dialect: _Dialect = _PYTHON) -> str:
    """The reference expression of a format (with re.DOTALL): each value as it is read when the rest of the line
    must match too. Backtracking engines take polynomial time on it (see the module docstring)."""
    parts: list[str] = []
    for index, element in enumerate(elements):
        if not element.field and not element.variable:
            parts.append(re.escape(element.literal))
            continue
        following = elements[index + 1] if index + 1 < len(elements) else None
        parts.append(_value_pattern(element, following, f"f{index}", dialect)[0])
    tail = rf"(?:{dialect.space}.*)?" if allow_trailing else dialect.space + "*"
    return "".join(parts) + tail + dialect.end


def _value_pattern(element: Element, following: Element | None, name: str,
                   dialect: _Dialect = _PYTHON) -> tuple[str, str]:
    """The pattern of a value and its kind: "plain", "lazy" (as short as the rest allows, before another value)
    or "last" (the last element, lazy up to the end of the line)."""
    space_chars, not_space = dialect.space_chars, dialect.not_space
    if element.field == "time" and element.time_kind == "clf" and element.variable == "%t":
        return rf"\[(?P<{name}>[^\]]*)\]", "plain"  # Apache %t writes its own brackets
    if element.field in _NUMERIC:
        return f"(?P<{name}>" + _NUMERIC[element.field][1:], "plain"
    if element.field == "time":  # times may hold spaces: as many as their format writes
        if element.time_kind == "clf":
            return rf"(?P<{name}>[^{space_chars}\]]+(?: [+-][0-9]{{4}})?)", "plain"
        spaces = element.time_kind.count(" ") if element.time_kind.startswith("strftime:") else 0
        return rf"(?P<{name}>{not_space}+" + rf"(?: {not_space}+)" * spaces + ")", "plain"
    if following is None:
        return rf"(?P<{name}>.*?)", "last"
    if not following.literal:  # back to back: a path starts at its '/', a query at its '?', else the first is short
        if following.field in ("uri", "path"):
            return rf"(?P<{name}>[^/{space_chars}]*)", "plain"
        if following.field == "query":
            return rf"(?P<{name}>[^?{space_chars}]*)", "plain"
        return rf"(?P<{name}>{not_space}*?)", "lazy"
    stop = re.escape(following.literal[0])
    return rf"(?P<{name}>(?:[^{stop}\\]|\\.)*\\?)", "plain"


def _edge_of(element: Element, first: bool) -> bytes | None:
    if element.literal and not element.variable:
        char = element.literal[0] if first else element.literal[-1]
        return char.encode() if char.isascii() and not char.isspace() else None
    if element.field in ("client", "server") and first:
        return ADDRESS_CHARS
    if element.field in _NUMERIC and not first:
        return b"0123456789-"
    return None


def _nginx_elements(text: str) -> list[Element]:
    elements: list[Element] = []
    position = 0
    for match in _NGINX_VARIABLE.finditer(text):
        if match.start() > position:
            elements.append(Element(literal=text[position:match.start()]))
        name = (match.group(1) or match.group(2)).lower()
        field, kind = NGINX_VARIABLES.get(name, ("", ""))
        if not field and name.startswith("http_"):
            field = {"user_agent": "user_agent", "host": "host"}.get(name[5:], "")
        elements.append(Element(field=field, time_kind=kind, variable=match.group(0)))
        position = match.end()
    if position < len(text):
        elements.append(Element(literal=text[position:]))
    return _merge_literals(elements)


def _apache_elements(text: str) -> list[Element]:
    text = text.replace('\\"', '"').replace("\\t", "\t")
    elements: list[Element] = []
    position = 0
    for match in _APACHE_DIRECTIVE.finditer(text):
        if match.start() > position:
            elements.append(Element(literal=text[position:match.start()]))
        argument, letter = match.group(1), match.group(2)
        position = match.end()
        if letter == "%":
            elements.append(Element(literal="%"))
            continue
        field, kind = APACHE_DIRECTIVES.get(letter, ("", ""))
        if letter == "i" and argument is not None:
            field = APACHE_HEADERS.get(argument.lower(), "")
        elif letter == "a" and argument not in (None, "c"):
            field = ""
        elif letter == "t" and argument is not None:
            kind = _apache_time(argument)
        elif letter == "h" and argument not in (None, "c"):
            field = ""
        variable = "%t" if letter == "t" and argument is None else match.group(0)
        elements.append(Element(field=field, time_kind=kind, variable=variable))
    if position < len(text):
        elements.append(Element(literal=text[position:]))
    if not any(element.variable for element in elements):
        raise LogFormatError(f"log format {text!r} has no variables")
    return _merge_literals(elements)


def _apache_time(argument: str) -> str:
    body = argument.removeprefix("begin:").removeprefix("end:")
    special = {"sec": "epoch", "msec": "epoch-ms", "usec": "epoch-us"}
    if body in special:
        return special[body]
    if "%" not in body:
        raise LogFormatError(f"time format %{{{argument}}}t is not supported")
    return "strftime:" + body


def _merge_literals(elements: list[Element]) -> list[Element]:
    merged: list[Element] = []
    for element in elements:
        if merged and not element.variable and not merged[-1].variable:
            merged[-1] = Element(literal=merged[-1].literal + element.literal)
        else:
            merged.append(element)
    return merged


# Built-in formats, tried in this order (nginx writes the same lines with `$` variables).
COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
COMMON = '%h %l %u %t "%r" %>s %b'
VHOST_COMBINED = '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'
BUILTIN_FORMATS: tuple[LogFormat, ...] = tuple(
    compile_format(text, allow_trailing=True) for text in (COMBINED, COMMON, VHOST_COMBINED))
