"""No regular expression runs in super-linear time on attacker-controlled text (docs/REGEX_AUDIT.md).

(a) An inventory: every compiled `re.Pattern` the modules of imds_detect hold (module level, in tuples, lists,
    dicts and dataclass instances such as the log formats), and the byte patterns the prefilter builds, are
    checked against static rules for the constructs that backtrack super-linearly. A short allowlist names the
    patterns that break a rule and are safe, with the reason.
(b) Input-size scaling: each attacker-facing entry point is fed hostile inputs of size n and 8n (runs of
    digits, dots, percent signs, `0x`, `[::ffff:`, backslash escapes, quotes, blanks ...); the CPU time must
    grow well below quadratically (8n: ratio < 24 where linear gives 8 and quadratic 64; 2n and 4n likewise, so a
    super-linear run fails early). Best of several runs,
    process time, sizes chosen so that a run takes milliseconds: no wall-clock threshold.
(c) Deterministic operation counts: the Python lines executed by the text entry points grow linearly, and the
    log-format fast path agrees with the reference expression (which RE2 runs in linear time).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import importlib
import io
import pkgutil
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import pytest

import imds_detect
from imds_detect.config import ConfigError, load_config
from imds_detect.detect import identity
from imds_detect.detect.command_line import detect_command_line
from imds_detect.detect.http import detect_http
from imds_detect.engine import prefilter as prefilter_module
from imds_detect.engine.prefilter import Prefilter
from imds_detect.knowledge import hosts, indicators, paths, urls
from imds_detect.knowledge.indicators import PatternSet, for_re, numeric_patterns, strong_patterns
from imds_detect.model import Event, EventKind, ProcessInfo, SourceRef
from imds_detect.sources import azure_logs, logformat, mde, winevent
from imds_detect.sources.access import ACCESS_ADAPTER, AccessLogAdapter
from imds_detect.sources.auditd import AuditdParser
from imds_detect.sources.auditd_records import RecordError, read_record
from imds_detect.sources.auditd_tiles import regex_tiles, tiles
from imds_detect.sources.awslb import AWS_LB_ADAPTER
from imds_detect.sources.iis import IIS_ADAPTER
from imds_detect.sources.linelog import NUMERIC_AFTER
from imds_detect.sources.squid import SQUID_ADAPTER
from imds_detect.sources.zeek import ZEEK_ADAPTER

MAXREPEAT = sre_constants.MAXREPEAT

# ------------------------------------------------------------------------------------------------ (a) inventory

# Characters the rules reason about: Latin-1 and a few others that classes treat differently.
_PROBE = [chr(c) for c in range(256)] + ["\u0661", "\u2003", "\u3000", "\u2028", "\u00e9", "\u4e00"]
_CATEGORY = {
    sre_constants.CATEGORY_DIGIT: r"\d", sre_constants.CATEGORY_NOT_DIGIT: r"\D",
    sre_constants.CATEGORY_SPACE: r"\s", sre_constants.CATEGORY_NOT_SPACE: r"\S",
    sre_constants.CATEGORY_WORD: r"\w", sre_constants.CATEGORY_NOT_WORD: r"\W",
    sre_constants.CATEGORY_LINEBREAK: r"\n", sre_constants.CATEGORY_NOT_LINEBREAK: r"[^\n]",
}
ALL = frozenset(_PROBE)

# Patterns that break a rule and are safe. name -> why.
SAFE: dict[str, str] = {
    # Leading unbounded repeat, but only ever run anchored (`match` / `fullmatch`), never searched:
    "imds_detect.sources.mde._INLINE_FIRST_OBJECT": "anchored: only _INLINE_FIRST_OBJECT.match(data)",
    "imds_detect.sources.squid._NATIVE": "anchored (.match); each \\S+ / \\s+ pair splits its run one way",
    "imds_detect.knowledge.cloud.GCP_DEFAULT_COMPUTE_SA": "fullmatch only (cloud/gcp.py)",
    "imds_detect.knowledge.paths._COMPILED[26][1]": "anchored (classify_path: .match); one `?`, then `[^#\\s]*&`",
    # Not telemetry: configuration values, generated pattern text, strace output of imds-detect's own runs.
    "imds_detect.cloud.settings._DURATION": "fullmatch on a configuration value",
    "imds_detect.spark.jvmfilter._PERIODIC": "fullmatch on generated pattern text",
    "imds_detect.validate.strace._LINE": "strace output of the validate command's own test programs",
    "imds_detect.validate.strace._CALL": "strace output of the validate command's own test programs",
    "imds_detect.validate.strace._INET": "strace output of the validate command's own test programs",
    "imds_detect.validate.strace._INET6": "strace output of the validate command's own test programs",
}
# Hyperscan (the prefilter's engine when installed) is linear by construction: its patterns are checked here as
# the `re` fallback runs them (indicators.for_re). RE2 patterns (allowlist regexes, globs, log formats' `exact`)
# are linear by construction and are not `re.Pattern`s.


def _chars(op: Any, av: Any, flags: int, binary: bool) -> frozenset[str]:
    """The probe characters one single-character item matches."""
    ignore = bool(flags & re.IGNORECASE)
    if op is sre_constants.LITERAL:
        char = chr(av)
        return frozenset({char, char.lower(), char.upper()} if ignore else {char})
    if op is sre_constants.NOT_LITERAL:
        return ALL - {chr(av)}
    if op is sre_constants.ANY:
        return ALL if flags & re.DOTALL else ALL - {"\n"}
    if op is sre_constants.CATEGORY:
        probe = re.compile(_CATEGORY[av].encode() if binary else _CATEGORY[av])
        return frozenset(c for c in _PROBE if ord(c) < 256 or not binary
                         if probe.fullmatch(c.encode("latin-1") if binary else c))
    if op is sre_constants.IN:
        chars: set[str] = set()
        negate = False
        for sub_op, sub_av in av:
            if sub_op is sre_constants.NEGATE:
                negate = True
            elif sub_op is sre_constants.RANGE:
                chars |= {c for c in _PROBE if sub_av[0] <= ord(c) <= sub_av[1]}
                if ignore:
                    chars |= {c.swapcase() for c in _PROBE if sub_av[0] <= ord(c) <= sub_av[1]}
            else:
                chars |= _chars(sub_op, sub_av, flags, binary)
        return ALL - chars if negate else frozenset(chars)
    return ALL


class _Checker:
    """Static rules over a parsed pattern; `problems` lists what it finds."""

    def __init__(self, pattern: re.Pattern[Any]) -> None:
        self.flags = pattern.flags
        self.binary = isinstance(pattern.pattern, bytes)
        text = pattern.pattern.decode("latin-1") if self.binary else pattern.pattern
        self.tree = sre_parse.parse(text, pattern.flags & ~re.UNICODE if self.binary else pattern.flags)
        self.flags = self.tree.state.flags  # with the inline ones
        self.problems: list[str] = []
        self.ambiguous = 0  # unbounded repeats whose end is not fixed by the next character

    # first characters and nullability of a sequence of items
    def first(self, items: Any) -> tuple[frozenset[str], bool]:
        chars: set[str] = set()
        for op, av in items:
            item_chars, nullable = self.first_item(op, av)
            chars |= item_chars
            if not nullable:
                return frozenset(chars), False
        return frozenset(chars), True

    def first_item(self, op: Any, av: Any) -> tuple[frozenset[str], bool]:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            chars, nullable = self.first(av[2])
            return chars, nullable or av[0] == 0
        if op is sre_constants.SUBPATTERN:
            return self.first(av[3])
        if op is sre_constants.ATOMIC_GROUP:
            return self.first(av)
        if op is sre_constants.BRANCH:
            results = [self.first(branch) for branch in av[1]]
            return frozenset().union(*(r[0] for r in results)), any(r[1] for r in results)
        if op is sre_constants.GROUPREF_EXISTS:
            yes = self.first(av[1])
            no = self.first(av[2]) if av[2] is not None else (frozenset(), True)
            return yes[0] | no[0], yes[1] or no[1]
        if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            return frozenset(), True
        if op is sre_constants.GROUPREF:
            return ALL, True
        return _chars(op, av, self.flags, self.binary), False

    def repeats_at(self, op: Any, av: Any, end: bool, atomic: bool = False) -> list[frozenset[str]]:
        """Character sets of the unbounded repeats the text can be in at the start (or end) of an item."""
        if atomic or op in (sre_constants.ATOMIC_GROUP, sre_constants.POSSESSIVE_REPEAT):
            return []
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            if av[1] == MAXREPEAT:
                return [self.first(av[2])[0]]
            return self.repeats_in(av[2], end)
        if op is sre_constants.SUBPATTERN:
            return self.repeats_in(av[3], end)
        if op is sre_constants.BRANCH:
            return [chars for branch in av[1] for chars in self.repeats_in(branch, end)]
        return []

    def repeats_in(self, items: Any, end: bool) -> list[frozenset[str]]:
        found: list[frozenset[str]] = []
        for op, av in (reversed(list(items)) if end else items):
            found += self.repeats_at(op, av, end)
            if not self.first_item(op, av)[1]:
                break
        return found

    def check(self, items: Any, atomic: bool = False, follow: frozenset[str] = frozenset(),
              repeated: bool = False) -> None:
        """R1-R3 and R5 over a sequence; `follow`: what can come after it; `repeated`: inside an unbounded repeat."""
        items = list(items)
        previous: list[frozenset[str]] = []  # repeats the text may still be in (only optional items since)
        for index, (op, av) in enumerate(items):
            rest_first, rest_nullable = self.first(items[index + 1:])
            after = rest_first | follow if rest_nullable else rest_first  # what can follow this item
            if not atomic:  # R3: two repeats, only optional items between, over the same characters
                for chars in self.repeats_at(op, av, end=False):
                    if any(chars & earlier for earlier in previous):
                        self.problems.append("adjacent unbounded repeats over the same characters")
            repeat = op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
            if repeat and av[1] == MAXREPEAT and not atomic:
                body_first, _ = self.first(av[2])
                self._nested(av[2], body_first)
                if body_first & after:
                    self.ambiguous += 1  # R5 below: where it stops is a choice the rest may undo
            # recurse
            if repeat:
                again = self.first(av[2])[0] if av[1] > 1 else frozenset()  # the next iteration may follow
                self.check(av[2], atomic, after | again, repeated or av[1] == MAXREPEAT)
            elif op is sre_constants.POSSESSIVE_REPEAT:
                self.check(av[2], True, after, repeated)
            elif op is sre_constants.ATOMIC_GROUP:
                self.check(av, True, after, repeated)
            elif op is sre_constants.SUBPATTERN:
                self.check(av[3], atomic, after, repeated)
            elif op is sre_constants.BRANCH:
                seen: set[str] = set()
                for branch in av[1]:
                    self.check(branch, atomic, after, repeated)
                    chars, nullable = self.first(branch)
                    chars = chars | after if nullable else chars  # an empty branch starts what follows
                    if repeated and not atomic and chars & seen:  # R2, with `a|aa` read as a(|a)
                        self.problems.append("repeated alternation with overlapping branches")
                    seen |= chars
            elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
                self.check(av[1], atomic)
            elif op is sre_constants.GROUPREF_EXISTS:
                self.check(av[1], atomic, after, repeated)
                if av[2] is not None:
                    self.check(av[2], atomic, after, repeated)
            previous = ((previous if self.first_item(op, av)[1] else [])
                        + ([] if atomic else self.repeats_at(op, av, end=True)))

    def check_lead(self) -> None:
        """R4: a pattern that starts (not anchored, no look-behind) with an unbounded repeat followed by something
        that can fail: searched unanchored, it reads a long run again from each of its characters (quadratic)."""
        items = list(self.tree)
        while items and items[0][0] is sre_constants.SUBPATTERN:
            items = list(items[0][1][3]) + items[1:]
        if not items:
            return
        op, av = items[0]
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and av[1] == MAXREPEAT:
            if not self.first(items[1:])[1]:
                self.problems.append("leading unbounded repeat that can fail after it: quadratic when searched")
        elif op is sre_constants.LITERAL:  # R6: a later repeat runs over the next place the pattern starts
            start = _chars(op, av, self.flags, self.binary)
            for index in range(1, len(items)):
                reaches = any(chars & start for chars in self.repeats_at(*items[index], end=False)) or any(
                    chars & start for chars in self.repeats_in(items[index:index + 1], end=True))
                if reaches and not self.first(items[index + 1:])[1]:
                    self.problems.append("a repeat reads past the next start and can fail: quadratic searched")
                    return

    def _nested(self, body: Any, body_first: frozenset[str]) -> None:
        """R1: an unbounded repeat inside an unbounded repeat that can run on into the next iteration."""
        for op, av in body:
            if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and av[1] == MAXREPEAT:
                if self.first(av[2])[0] & body_first:
                    self.problems.append("nested unbounded repeats over the same characters")
                self._nested(av[2], body_first)
            elif op is sre_constants.SUBPATTERN:
                self._nested(av[3], body_first)
            elif op is sre_constants.BRANCH:
                for branch in av[1]:
                    self._nested(branch, body_first)


def problems(pattern: re.Pattern[Any]) -> list[str]:
    checker = _Checker(pattern)
    checker.check(checker.tree)
    checker.check_lead()
    if checker.ambiguous >= 2:  # R5: two places where the text may be split several ways: polynomial
        checker.problems.append(f"{checker.ambiguous} unbounded repeats whose end the rest may move")
    return checker.problems


def _collect(name: str, value: Any, found: dict[str, re.Pattern[Any]], depth: int = 0) -> None:
    if isinstance(value, re.Pattern):
        found.setdefault(name, value)
    elif depth >= 3:
        return
    elif isinstance(value, (tuple, list, frozenset, set)):
        for index, item in enumerate(value):
            _collect(f"{name}[{index}]", item, found, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(f"{name}[{key!r}]", item, found, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            _collect(f"{name}.{item.name}", getattr(value, item.name, None), found, depth + 1)


def all_patterns() -> dict[str, re.Pattern[Any]]:
    found: dict[str, re.Pattern[Any]] = {}
    for info in pkgutil.walk_packages(imds_detect.__path__, "imds_detect."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional dependency (pyspark ...)
            continue
        for attribute, value in vars(module).items():
            if isinstance(value, type(sys)):
                continue
            _collect(f"{info.name}.{attribute}", value, found)
    # The byte patterns the prefilter and the indicator gate run (as the `re` fallback runs them; Hyperscan is
    # linear by construction).
    keys = ("ProcessCommandLine", "InitiatingProcessCommandLine", "RemoteUrl")
    generated: list[tuple[str, bytes]] = [
        *(("numeric", p) for p in numeric_patterns()),
        *(("json-numeric", p) for p in prefilter_module._json_numeric_patterns(keys)),
        *(("prefixed-numeric", p) for p in prefilter_module._prefixed_numeric_patterns(NUMERIC_AFTER)),
        *(("edges", p) for p in prefilter_module._edge_patterns((b"{", b"}"))),
        *(("blank", p) for p in prefilter_module.BLANK_PATTERNS),
        *(("encoding", p) for p in indicators.ENCODING_PATTERNS),
        *(("base64", p) for p in indicators.base64_patterns()[:1]),  # the rest are literals
    ]
    for index, (kind, pattern) in enumerate(generated):
        found[f"prefilter.{kind}[{index}]"] = re.compile(for_re(pattern), re.IGNORECASE | re.MULTILINE)
    for text in ('$remote_addr [$time_local] "$request" $status $http_host', "$msec $a$b$request_uri $status $x",
                 "%t %r %b%s"):
        found[f"logformat.custom[{text}]"] = logformat.compile_format(text).regex
    return found


def test_the_rules_find_the_dangerous_constructs() -> None:
    for bad in (r"(a+)+b", r"(?:\w+\s?)*$", r"(?:a|aa)*c", r"x(?:b|bc|c)*d", r"\n[ \t]*,?[ \t]*\[",
                r"[0-9]{3,}\.[0-9]{3,}x", r"(?:[^ \\]|\\.)*\\? (?:[^ \\]|\\.)*\\? x", r"(?P<f>.*?)\s*\Z",
                rb"<EventID(?:\s[^>]*)?>", rb"<!--.*?-->", rb'"a"\s*:.*"b"\s*:', rb"saddr=([^ \n]*)[^\n]*\n"):
        assert problems(re.compile(bad)), bad
    for good in (r"(?:[^\"\\]|\\.)*", r"(?: a[0-9]+=[^ ]*)*", r"(?<![0-9])[0-9]{3,}\.x", r"x(?>a+)+b", r"a*+a",
                 r"x(?:a|ab)*c", r"\n[ \t]*(?:,[ \t]*)?\[", r"[^\s\"'`<>(){}|;&]+"):
        assert not problems(re.compile(good)), good
    # The reference expression of a log format is what the fast path avoids: the rules see why.
    elements = logformat._apache_elements(logformat.COMBINED)
    assert problems(re.compile(logformat.reference_pattern(elements, True), re.DOTALL))


def test_every_pattern_passes_the_rules_or_is_allowlisted_with_a_reason() -> None:
    found = all_patterns()
    names: dict[int, list[str]] = {}
    for name, pattern in found.items():
        names.setdefault(id(pattern), []).append(name)
    assert len(names) > 100  # the walk reached the modules
    failing = {tuple(names[id(pattern)]): problems(pattern) for pattern in found.values()}
    failing = {key: found_problems for key, found_problems in failing.items() if found_problems}
    unexplained = {key: found_problems for key, found_problems in failing.items() if not SAFE.keys() & set(key)}
    assert not unexplained, unexplained
    stale = set(SAFE) - {name for key in failing for name in key}
    assert not stale, f"allowlisted patterns that no longer break a rule (drop them): {sorted(stale)}"


# ---------------------------------------------------------------------------------------------- (b) scaling

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SOURCE = SourceRef("test", "f", 1, 0)


def _fresh() -> None:
    """Forget the results the entry points cache by text, so that every run does the work."""
    hosts._canonical_host.cache_clear()
    urls._cached_references.cache_clear()
    for cache in (urls._PLAIN_WORDS, urls._TOOL_WORDS, urls._PIECES, urls._MATCHES):
        cache.clear()
    indicators.token_names_metadata.cache_clear()
    paths.classify_path.cache_clear()
    identity.tool_name.cache_clear()
    identity.path_matches.cache_clear()


def _cost(run: Callable[[Any], object], data: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        _fresh()
        gc.disable()  # (no collection pause inside a measurement; collecting before each one costs more)
        try:
            began = time.process_time()
            run(data)
            best = min(best, time.process_time() - began)
        finally:
            gc.enable()
    return max(best, 1e-6)


def assert_linear(run: Callable[[Any], object], make: Callable[[int], Any], n: int) -> None:
    """CPU time on inputs of size 2n, 4n and 8n against size n: below 3x the size ratio (linear: 1x, quadratic 2x-8x
    the size ratio). A super-linear run fails at the first size that shows it, before the slowest one."""
    ratio, k = 0.0, 1
    for repeats in (2, 5):  # a second, more careful measurement before failing (a noisy neighbour)
        base = _cost(run, make(n), repeats)
        for k in (2, 4, 8):
            ratio = _cost(run, make(k * n), repeats) / base
            if ratio >= 3 * k:
                break
        else:
            return
    pytest.fail(f"time grew {ratio:.1f}x for {k}x the input (n={n})")


def _text(unit: str, prefix: str = "", suffix: str = "") -> Callable[[int], str]:
    return lambda n: prefix + unit * max(1, n // len(unit)) + suffix


# Hostile free text: what attackers put in command lines, URLs, Host headers and log fields.
TEXT_FAMILIES: dict[str, Callable[[int], str]] = {
    "digits": _text("1", "curl http://"),
    "digits-dot": _text("1", "", "."),
    "dots": _text("."),
    "digit-dots": _text("1."),
    "percent-25": _text("%25", "http://"),
    "percent": _text("%"),
    "nested-percent": _text("%2525252541"),
    "0x": _text("0x"),
    "ffff": _text("[::ffff:"),
    "long-hostnames": _text("a" * 60 + "."),
    "backslash-x": _text("\\x"),
    "quotes": _text("\"'"),
    "markers": _text("x/latest/meta-data/\x0c"),
    "entities": _text("&#"),
    "escapes": _text("\\u0031"),
    "metadata-ips": _text("169.254.169.254."),
}


def _command(text: str) -> Event:
    return Event(EventKind.PROCESS, T0, SOURCE, process=ProcessInfo(name="curl", path="/usr/bin/curl",
                                                                    command_line=text))


def _request(text: str) -> Event:
    return Event(EventKind.HTTP, T0, SOURCE, http_host="shop.example", http_uri="/fetch?u=" + text,
                 http_body=text, direction="inbound")


TEXT_ENTRIES: dict[str, tuple[Callable[[str], object], int]] = {
    "canonical_host": (hosts.canonical_host, 500),  # (hosts longer than 4096 characters are refused)
    "extract_host_references": (urls.extract_host_references, 6000),
    "detect_command_line": (lambda text: detect_command_line(_command(text)), 4000),
    "detect_http": (lambda text: detect_http(_request(text)), 2000),
}
TEXT_CASES = [(entry, family) for entry in TEXT_ENTRIES for family in TEXT_FAMILIES
              if not (entry == "canonical_host" and family in ("markers", "entities", "escapes", "quotes"))]


@pytest.mark.parametrize(("entry", "family"), TEXT_CASES, ids=[f"{e}-{f}" for e, f in TEXT_CASES])
def test_text_entry_points_scale_linearly(entry: str, family: str) -> None:
    run, n = TEXT_ENTRIES[entry]
    assert_linear(run, TEXT_FAMILIES[family], n)


def _sink(_skip: object) -> None:
    return None


def _safe(parse: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def run(line: bytes) -> object:
        try:
            return parse(line)
        except (RecordError, ValueError):
            return None
    return run


_IIS_HEAD = (b"#Software: Microsoft Internet Information Services 10.0\n"
             b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) cs-host sc-status\n")
_ZEEK_HEAD = (b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n"
              b"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\n"
              b"#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\n")
_CUSTOM = AccessLogAdapter(('$remote_addr [$time_local] "$request" $status $http_host',
                            "$msec $x$y$request_uri $status"))


def _auditd(line: bytes) -> None:
    for _ in AuditdParser("f", _sink, light=True).events(io.BytesIO(line + b"\n")):
        pass


LINE_ENTRIES: dict[str, tuple[Callable[[bytes], object], int]] = {
    "access": (lambda line: ACCESS_ADAPTER.parse_line(line, "f", 1, 0, _sink), 300),  # (was cubic: small n)
    "access-custom": (lambda line: _CUSTOM.parse_line(line, "f", 1, 0, _sink), 300),
    "squid": (lambda line: SQUID_ADAPTER.parse_line(line, "f", 1, 0, _sink), 300),
    "squid-sniff": (SQUID_ADAPTER.sniff, 300),
    "aws-lb": (lambda line: AWS_LB_ADAPTER.parse_line(line, "f", 1, 0, _sink), 6000),
    "zeek-json": (lambda line: ZEEK_ADAPTER.parse_line(line, "f", 1, 0, _sink), 20000),
    "zeek-tsv": (lambda line: list(ZEEK_ADAPTER.parse(io.BytesIO(_ZEEK_HEAD + line + b"\n"), "f", _sink)), 8000),
    "iis": (lambda line: list(IIS_ADAPTER.parse(io.BytesIO(_IIS_HEAD + line + b"\n"), "f", _sink)), 8000),
    "auditd": (_auditd, 8000),
    "auditd-record": (_safe(read_record), 8000),
    "sysmon-syslog": (lambda line: winevent._syslog_line(line, "f", 1, _sink), 8000),
}


def _line(unit: bytes, prefix: bytes = b"", suffix: bytes = b"") -> Callable[[int], bytes]:
    return lambda n: prefix + unit * max(1, n // len(unit)) + suffix


_ACCESS_HEAD = b'198.51.100.7 - - [10/Oct/2023:13:55:36 +0000] "GET /'
_SYSLOG_HEAD = b"Mar 14 10:11:12 host sysmon: <Event><System>"
LINE_FAMILIES: dict[str, Callable[[int], bytes]] = {
    "digits": _line(b"1"),
    "digit-dots": _line(b"1."),
    "percent-25": _line(b"%25", _ACCESS_HEAD),
    "0x": _line(b"0x"),
    "ffff": _line(b"[::ffff:"),
    "backslash-x": _line(b"\\x"),
    "quotes": _line(b"\"'"),
    "escaped-blanks": _line(b"\\ "),  # a value that may end at any `\ ` (log formats)
    "escaped-quotes": _line(b'\\" ', _ACCESS_HEAD),
    "blanks": _line(b" ", b"x", b"x"),
    "tabs": _line(b"\t", b"x", b"x"),
    "carriage-returns": _line(b"\r", b"x", b"x"),
    "audit-types": _line(b"type=SYSCALL msg=audit(1.1:1): "),
    "event-ids": _line(b"<EventID ", _SYSLOG_HEAD, b"</System></Event>"),
    "providers": _line(b"<Provider ", _SYSLOG_HEAD, b"<EventID>7</EventID></System></Event>"),
}
LINE_CASES = [(entry, family) for entry in LINE_ENTRIES for family in LINE_FAMILIES]


@pytest.mark.parametrize(("entry", "family"), LINE_CASES, ids=[f"{e}-{f}" for e, f in LINE_CASES])
def test_line_parsers_scale_linearly(entry: str, family: str) -> None:
    run, n = LINE_ENTRIES[entry]
    assert_linear(run, LINE_FAMILIES[family], n)


@functools.cache
def _python_matcher(name: str) -> Callable[[bytes], object]:
    """The prefilter's `re` fallback (what runs without Hyperscan), built on first use (compiling takes a while)."""
    if name == "pattern-set":
        return PatternSet((strong_patterns(), numeric_patterns()), use_hyperscan=False).matches
    prefilters = {
        "no-keys": lambda: Prefilter(use_hyperscan=False),
        "json-keys": lambda: Prefilter(("ProcessCommandLine", "RemoteUrl"), (b"{", b"}"), use_hyperscan=False),
        "web": lambda: Prefilter(numeric_after=NUMERIC_AFTER, decode_percent=True, record_edges=(b"0123456789", None),
                                 use_hyperscan=False),
    }
    return prefilters[name]().plan


PREFILTER_FAMILIES: dict[str, Callable[[int], bytes]] = {
    "digits-at-end": _line(b"1", b"x "),  # the last line of a block may lack its newline
    "digits": _line(b"1", b"", b"\n"),
    "digits-then-dot": _line(b"1", b" ", b".x\n"),
    "digit-dots": _line(b"1.", b"", b"\n"),
    "carriage-returns": _line(b"\r", b"{x", b"x}\n"),
    "percent-25": _line(b"%25", b"{", b"}\n"),
}
PREFILTER_CASES = [(name, family) for name in ("no-keys", "json-keys", "web", "pattern-set")
                   for family in PREFILTER_FAMILIES]


@pytest.mark.parametrize(("name", "family"), PREFILTER_CASES, ids=[f"{n}-{f}" for n, f in PREFILTER_CASES])
def test_prefilter_python_matcher_scales_linearly(name: str, family: str) -> None:
    assert_linear(_python_matcher(name), PREFILTER_FAMILIES[family], 500)


@functools.cache
def _re_group(patterns: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """One group of byte patterns as PatternSet's `re` fallback compiles it."""
    return re.compile(b"|".join(map(for_re, patterns)), re.IGNORECASE | re.MULTILINE)


_NATIVE_PREFILTER = Prefilter(("ProcessCommandLine",))


def _native_plan(data: bytes) -> object:
    """The JSON prefilter's plan (with the C numeric pass when it is built)."""
    return _NATIVE_PREFILTER.plan(data)


# Patterns fixed in place, each on the input that made it super-linear.
PATTERN_CASES: dict[str, tuple[Callable[[Any], object], Callable[[int], Any], int]] = {
    "mde._OBJECT_START": (lambda data: mde._OBJECT_START.search(data), _line(b" ", b"\n", b"x"), 1000),
    "mde._ARRAY_START": (lambda data: mde._ARRAY_START.search(data), _line(b" ", b"\n", b"x"), 2000),
    "winevent._FILLER": (lambda data: winevent._report_junk(data, 1, "f", _sink), _line(b"<!--\n"), 5000),
    "winevent._FILLER-xml": (lambda data: winevent._report_junk(data, 1, "f", _sink), _line(b"<?xml\n"), 5000),
    "azure_logs._MARKERS": (azure_logs.AZURE_ADAPTER.sniff, _line(b'"callerIpAddress": 1, ', b"[{"), 8000),
    "auditd._TILE": (_auditd, lambda n: (b"type=SYSCALL msg=audit(1.001:5): arch=c000003e syscall=42 x\n"
                                         b"type=SOCKADDR msg=audit(1.001:5): saddr=" + b"A" * n), 4000),
    "auditd_tiles.tiles (unclosed events)": (lambda data: tiles(data, len(data)), lambda n: (
        b"type=SYSCALL msg=audit(1.001:5): arch=c000003e syscall=42 x\n" + b"type=PATH msg=audit(1.001:5): x\n" * n)
        * 4, 2000),
    "numeric_native (many parts)": (lambda data: _native_plan(data), _line(b"1.", b'{"ProcessCommandLine":" ', b" \n"),
                                    4000),
    "numeric_native (long runs)": (lambda data: _native_plan(data), _line(b"0", b'{"ProcessCommandLine":" 0x', b"\n"),
                                   4000),
    "auditd_tiles.regex_tiles": (lambda data: regex_tiles(data, len(data)),
                                 lambda n: (b"type=SYSCALL msg=audit(1.001:5): arch=c000003e syscall=42 x\n"
                                            b"type=SOCKADDR msg=audit(1.001:5): saddr=" + b"A" * n + b"\n"), 4000),
    "prefilter edge patterns": (lambda data: _re_group(prefilter_module._edge_patterns((b"{", b"}"))).findall(data),
                                _line(b"\r", b"{x", b"x}\n"), 5000),
    "numeric shapes": (lambda data: _re_group(numeric_patterns()).findall(data), _line(b"1", b"x "), 1500),
    "identity glob": (lambda path: identity.path_matches(path, ("/opt/*a*a*a*/agent",)), _text("a", "/opt/"), 200),
}


@pytest.mark.parametrize("name", list(PATTERN_CASES))
def test_fixed_patterns_scale_linearly(name: str) -> None:
    run, make, n = PATTERN_CASES[name]
    assert_linear(run, make, n)


def test_allowlist_regexes_run_in_linear_time(tmp_path: Any) -> None:
    config = tmp_path / "tuning.toml"
    config.write_text('[[allowlist.entry]]\nid = "x"\npath = "/usr/bin/curl"\ncommand_line = "^(?:x+x+)+y"\n')
    entry = load_config(str(config)).allowlist.entries[-1]
    assert not isinstance(entry.command_line, re.Pattern)  # RE2: `re` takes exponential time on this one
    assert not isinstance(identity._glob_regex("/opt/*a*a*/x"), re.Pattern)  # globs too (polynomial with `re`)
    assert_linear(lambda text: entry.matches(_command(text), "imds-command-line"), _text("x"), 20000)


@pytest.mark.parametrize(("pattern", "why"), [("(a)\\1", "back-reference"), ("(?<=a)b", "look-behind"),
                                               ("a\\Z", "\\Z")])
def test_allowlist_regexes_re2_cannot_run_are_refused(tmp_path: Any, pattern: str, why: str) -> None:
    config = tmp_path / "tuning.toml"
    config.write_text(f'[[allowlist.entry]]\nid = "x"\npath = "/opt/x"\nuser_agent = \'{pattern}\'\n')
    with pytest.raises(ConfigError) as error:
        load_config(str(config))
    message = str(error.value)
    assert "allowlist.entry[0].user_agent" in message and "\n" not in message, why


# ---------------------------------------------------------------------------- (c) deterministic operation counts


class _TooMany(Exception):
    pass


def _lines_executed(run: Callable[[str], object], text: str, budget: int) -> int:
    """Python lines executed by run(text) (stops, and reports the budget, once past it)."""
    count = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
            if count > budget:
                raise _TooMany
        return tracer

    _fresh()
    sys.settrace(tracer)
    try:
        run(text)
    except _TooMany:
        pass
    finally:
        sys.settrace(None)
    return count


COUNT_CASES = [("detect_command_line", "markers"), ("detect_http", "markers"), ("detect_command_line", "digits"),
               ("extract_host_references", "nested-percent"), ("extract_host_references", "quotes")]


@pytest.mark.parametrize(("entry", "family"), COUNT_CASES, ids=[f"{e}-{f}" for e, f in COUNT_CASES])
def test_python_operation_counts_grow_linearly(entry: str, family: str) -> None:
    run, _ = TEXT_ENTRIES[entry]
    make = TEXT_FAMILIES[family]
    small = _lines_executed(run, make(400), 10**7)
    large = _lines_executed(run, make(3200), 24 * small)
    assert large < 16 * small, f"{large} lines for 8x the input, {small} before"


def test_log_format_fast_path_agrees_with_the_reference_expression() -> None:
    """Where the atomic fast path matches, it reads the line as the backtracking reference does; where it does not,
    the RE2 form of the reference decides. Checked against Python's backtracking engine on short lines."""
    rng = random.Random(5)
    pieces = ["a", "1", " ", '"', '\\"', "\\", "\\ ", "/", "?", "-", "x y", "[", "]", "\u3000", "GET /a HTTP/1.1"]
    times = ["10/Oct/2023:13:55:36 +0000", "2023-01-01T00:00:00Z", "1700000000.123", "200", "-"]
    formats = [logformat.COMBINED, logformat.VHOST_COMBINED, '$remote_addr [$time_local] "$request" $status $http_host',
               "$time_iso8601 $request_method $scheme://$http_host$request_uri $status $request_body",
               "$msec $x$y$request_uri $status", '%{%Y-%m-%d %H:%M:%S}t %a %m %U%q %>s %{Host}i']
    for text in formats:
        for trailing in (False, True):
            compiled = logformat.compile_format(text, allow_trailing=trailing)
            elements = (logformat._nginx_elements(text) if compiled.style == "nginx"
                        else logformat._apache_elements(text))
            reference = re.compile(logformat.reference_pattern(elements, trailing), re.DOTALL)
            for _ in range(600):
                line = "".join(
                    element.literal if not element.variable and rng.random() > 0.05
                    else rng.choice(times) if element.field in ("time", "status") and rng.random() < 0.7
                    else "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
                    for element in elements)
                expected = reference.match(line)
                fast = compiled.regex.match(line)
                got = fast or compiled.exact.match(line)
                want = None if expected is None else [expected.group(g) for g, _ in compiled.fields]
                have = None if got is None else [got.group(g) for g, _ in compiled.fields]
                assert have == want, (text, line)
