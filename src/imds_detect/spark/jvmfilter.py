"""The prefilter as one Java regular expression, derived from the same knowledge base as the local one.

The local prefilter (engine/prefilter.py) selects a line when one of these holds:

- STRONG: a strong indicator (`knowledge.indicators.strong_patterns()`: literal needles, encoding marks,
  Unicode-folding characters and their `\\uXXXX` escapes, base64 forms), ASCII case-insensitive;
- NUMERIC: a numeric host shape in free text (`engine.prefilter._json_numeric_patterns`), confirmed by a
  token check;
- SUSPECT: the line does not start with the record's first edge or does not end with its last;
- and blank lines are not records.

Spark evaluates, per line and without Python, the Java translation of STRONG and NUMERIC (without the
token check, so a superset), the edge test, and a test for invalid UTF-8 (Spark decodes it to U+FFFD,
which could hide an indicator's bytes). Lines that pass are *candidates*: they reach Python, where the
local :class:`~imds_detect.engine.prefilter.Prefilter` plans them again, so the lines parsed are exactly
those of the local engine. Safety needs only that every line the local prefilter selects is a candidate.

Translation. Every pattern is ASCII case-insensitive (Python bytes patterns, Hyperscan's CASELESS and
Java's ``(?i)`` all fold ASCII letters only). A pattern that is an escaped literal (the inverse of
``re.escape``) becomes a word: words are matched from their *anchor*, their rarest character in
Defender JSON lines, to their end, and a look-behind there checks the whole word (exact: a position
matches when a word ends there). Single non-ASCII characters become one class. Other patterns are ASCII
regex syntax that means the same in Java (classes, counted repetition, ``\\s``, groups); a pattern that is
a repeated run of single-character atoms (the base64 UTF-16 shape) is anchored the same way, at its
rarest atom. Speed: java.util.regex tries every alternative at every position, so all alternatives are
put behind one look-ahead class of their possible first characters, grouped by first character and
ordered by how often that character occurs: at most positions a single class test fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..engine.prefilter import _json_numeric_patterns
from ..knowledge.indicators import numeric_patterns, strong_patterns

_REGEX_META = frozenset(b".^$*+?{}[]|()")
_ASCII = frozenset(chr(code) for code in range(128))
REPLACEMENT = "\ufffd"  # what Spark's decoder puts where a line is not valid UTF-8

# How often each character occurs (lower-cased, per 100,000 characters) in Defender JSON lines (measured on
# the benchmark data). Only speed depends on it: anchors and groups go to rare characters first.
TYPICAL_FREQUENCY: dict[str, int] = {
    **dict.fromkeys("!<*;%?$>+&|'[]#^`~", 5), "_": 12, "(": 16, ")": 16, "@": 26, "q": 36, "=": 64,
    "{": 92, "}": 92, "j": 143, "w": 180, "k": 206, "x": 227, "z": 281, "/": 314, " ": 377, "y": 510,
    "h": 540, "v": 615, ".": 714, "\\": 732, "b": 1080, "u": 1109, "9": 1194, "8": 1284, "-": 1361,
    "6": 1416, "7": 1429, "3": 1551, "f": 1562, "g": 1626, "l": 1725, "4": 1726, "m": 1756, "5": 1815,
    "2": 2007, "1": 2324, ",": 2328, "d": 2408, "0": 2463, ":": 2839, "p": 3025, "r": 3408, "s": 4411,
    "c": 4590, "o": 4826, "a": 4844, "n": 5580, "t": 5602, "e": 6635, "i": 8000, '"': 8742,
}
NON_ASCII_FREQUENCY = 53
RARE = 1  # characters not in the table (controls, ...)


def _frequency(char: str) -> int:
    if not char.isascii():
        return NON_ASCII_FREQUENCY
    return TYPICAL_FREQUENCY.get(char.lower(), RARE)


# -- literals and characters ----------------------------------------------------------------------


def literal_of(pattern: bytes) -> bytes | None:
    """The text an escaped-literal pattern (as written by ``re.escape``) matches, or None for a real regex."""
    out = bytearray()
    index = 0
    while index < len(pattern):
        byte = pattern[index]
        if byte == 0x5C:  # backslash: only an escaped non-alphanumeric character is a literal
            if index + 1 >= len(pattern) or chr(pattern[index + 1]).isalnum():
                return None
            out.append(pattern[index + 1])
            index += 2
            continue
        if byte in _REGEX_META:
            return None
        out.append(byte)
        index += 1
    return bytes(out)


def java_char(char: str) -> str:
    """One character as a Java regex atom that matches exactly it (inside or outside a class)."""
    if char.isascii() and char.isalnum():
        return char
    if char.isascii() and char.isprintable():
        return "\\" + char  # a backslash before a non-alphabetic character always quotes it in Java
    return f"\\x{{{ord(char):X}}}"


def java_class(chars: set[str] | frozenset[str], non_ascii: bool = False) -> str:
    """A Java class of `chars` (code points merged into ranges), plus every non-ASCII one when asked."""
    # ASCII characters one by one: Java keeps single characters below 256 in one bit set (one test), while
    # each range is a test of its own
    parts = [java_char(char) for char in sorted(char for char in chars if char.isascii())]
    points = sorted({ord(char) for char in chars if not char.isascii() and not non_ascii})
    index = 0
    while index < len(points):
        end = index
        while end + 1 < len(points) and points[end + 1] == points[end] + 1:
            end += 1
        first, last = java_char(chr(points[index])), java_char(chr(points[end]))
        parts.append(first if end == index else first + last if end == index + 1 else f"{first}-{last}")
        index = end + 1
    if non_ascii:
        parts.append("\\x{80}-\\x{10FFFF}")
    return "[" + "".join(parts) + "]"


MIN_ANCHORED = 1  # characters an anchor must leave of its word (1: any character may be the anchor)


def anchor_of(word: str) -> int:
    """Where to anchor `word`: the position of its rarest character (the first of equally rare ones)."""
    last = len(word) - min(len(word), MIN_ANCHORED)
    return min(range(last + 1), key=lambda index: (_frequency(word[index]), index))


def anchors(words: list[str]) -> dict[str, int]:
    """The anchor of each word: its rarest character, then moved to characters other words already start
    from where that empties a frequent character from the set of first characters (fewer positions to
    look at twice)."""
    chosen = {word: anchor_of(word) for word in words}
    changed = True
    while changed:
        changed = False
        used = {word[index] for word, index in chosen.items()}
        for char in sorted(used, key=_frequency, reverse=True):
            others = used - {char}
            moves: dict[str, int] = {}
            for word, index in chosen.items():
                if word[index] != char:
                    continue
                options = [i for i in range(len(word)) if word[i] in others]
                if not options:
                    break
                moves[word] = min(options, key=lambda i: (_frequency(word[i]), i))
            else:
                if moves:
                    chosen.update(moves)
                    changed = True
                    break
    return chosen


def trie_branches(words: list[str], anchored: bool = True) -> list[str]:
    """Java alternatives that together match where one of `words` (case-folded, not empty) ends.

    Each alternative starts with one character. Anchored: a word is matched from its anchor to its end and
    a look-behind checks the whole word; otherwise from its start. The matched parts are factored by
    common prefix.
    """
    root: dict[str, Any] = {}
    done = ""  # key of the words (look-behinds) that end at a node
    where = anchors(sorted(set(words))) if anchored else {}
    for word in sorted(set(words)):
        start = where.get(word, 0)
        node = root
        for char in word[start:]:
            node = node.setdefault(char, {})
        node.setdefault(done, set()).add(word if start else "")

    def emit(node: dict[str, Any]) -> str:
        ends: set[str] = node.get(done, set())
        if "" in ends:
            return ""  # a whole word ends here: any continuation is already a match
        branches = ["(?<=" + "".join(java_char(c) for c in word) + ")" for word in sorted(ends)]
        branches += [java_char(char) + emit(child) for char, child in sorted(node.items()) if char != done]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return [java_char(char) + emit(child) for char, child in sorted(root.items()) if char != done]


# -- first characters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class First:
    """The characters a regex can start a match with: ASCII ones (both cases) and whether any non-ASCII."""

    chars: frozenset[str]
    non_ascii: bool

    def __or__(self, other: First) -> First:
        return First(self.chars | other.chars, self.non_ascii or other.non_ascii)


NOTHING = First(frozenset(), False)
ANYTHING = First(_ASCII, True)
_SPACE = frozenset(" \t\n\x0b\f\r")
_DIGITS = frozenset("0123456789")
_ZERO_WIDTH_ESCAPES = frozenset("AzZbBG")
_QUANTIFIER = re.compile(r"\?|\*|\+|\{(\d+)(?:,\d*)?\}")


def _class_end(regex: str, start: int) -> int:
    """The index just after the class that starts at regex[start] == '['."""
    index = start + 1
    if regex[index:index + 1] == "^":
        index += 1
    if regex[index:index + 1] == "]":
        index += 1
    while regex[index] != "]":
        if regex[index] == "[":
            raise ValueError(f"nested class in {regex!r}")
        index += 2 if regex[index] == "\\" else 1
    return index + 1


def _class_first(body: str) -> First:
    """The characters of a Java class body (between the brackets)."""
    python = re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", body)
    compiled = re.compile(f"[{python}]", re.ASCII)
    chars = frozenset(char for char in _ASCII if compiled.match(char))
    non_ascii = body.startswith("^") or "\\x{" in body or any(not char.isascii() for char in body)
    return First(chars, non_ascii)


def _atom(regex: str, index: int) -> tuple[First, bool, int]:
    """(first characters, whether it can match empty, end) of the atom at `index`."""
    char = regex[index]
    if char == "(":
        if regex.startswith("(?i)", index):
            return NOTHING, True, index + 4
        if regex.startswith(("(?=", "(?!", "(?<=", "(?<!"), index):
            _, _, end = _alternation(regex, index + (4 if regex[index + 2] == "<" else 3))
            return NOTHING, True, end + 1
        if not regex.startswith("(?:", index):
            raise ValueError(f"unsupported group at {index} in {regex!r}")
        first, nullable, end = _alternation(regex, index + 3)
        return first, nullable, end + 1
    if char == "[":
        end = _class_end(regex, index)
        return _class_first(regex[index + 1:end - 1]), False, end
    if char == "\\":
        escaped = regex[index + 1]
        if escaped == "x" and regex[index + 2:index + 3] == "{":
            end = regex.index("}", index) + 1
            code = chr(int(regex[index + 3:end - 1], 16))
            return (First(frozenset({code}), False) if code.isascii() else First(frozenset(), True)), False, end
        if escaped in _ZERO_WIDTH_ESCAPES:
            return NOTHING, True, index + 2
        if escaped == "s":
            return First(_SPACE, False), False, index + 2
        if escaped == "d":
            return First(_DIGITS, False), False, index + 2
        if escaped.isalnum():
            return ANYTHING, False, index + 2
        return First(frozenset({escaped}), False), False, index + 2
    if char in "^$":
        return NOTHING, True, index + 1
    if char == ".":
        return ANYTHING, False, index + 1
    return (First(frozenset({char}), False) if char.isascii() else First(frozenset(), True)), False, index + 1


def _sequence(regex: str, index: int) -> tuple[First, bool, int]:
    """(first characters, nullable, end) of the sequence at `index`, up to '|' or ')' or the end."""
    first = NOTHING
    nullable = True
    while index < len(regex) and regex[index] not in "|)":
        atom_first, atom_nullable, index = _atom(regex, index)
        quantifier = _QUANTIFIER.match(regex, index)
        if quantifier is not None:
            if quantifier.group() in ("?", "*") or quantifier.group(1) == "0":
                atom_nullable = True
            index = quantifier.end()
            if index < len(regex) and regex[index] in "?+":  # lazy or possessive
                index += 1
        if nullable:
            first = first | atom_first
        nullable = nullable and atom_nullable
    return first, nullable, index


def _alternation(regex: str, index: int) -> tuple[First, bool, int]:
    """(first characters, nullable, end) of alternatives at `index`, up to the closing ')' or the end."""
    first, nullable, index = _sequence(regex, index)
    while index < len(regex) and regex[index] == "|":
        more, more_nullable, index = _sequence(regex, index + 1)
        first, nullable = first | more, nullable or more_nullable
    return first, nullable, index


def first_of(regex: str) -> First:
    """The characters a match of `regex` (a Java regex in the subset this module writes) can start with,
    ASCII letters in both cases (every regex here is case-insensitive); ANYTHING when it can match empty."""
    first, nullable, end = _alternation(regex, 0)
    if end != len(regex):
        raise ValueError(f"unbalanced ')' in {regex!r}")
    if nullable:
        return ANYTHING
    return First(first.chars | {char.swapcase() for char in first.chars}, first.non_ascii)


def _mass(first: First) -> int:
    return sum(_frequency(char) for char in first.chars if not char.isupper()) + (
        NON_ASCII_FREQUENCY if first.non_ascii else 0)


# -- rewrites -------------------------------------------------------------------------------------

_PERIODIC = re.compile(r"\(\?:(.*)\)\{(\d+)\}")
_SIMPLE_ATOM = re.compile(r"\[(?:[^\]\\\[]|\\.)+\]|\\[^A-Za-z0-9]|[A-Za-z0-9]")


def anchor_periodic(regex: str) -> str:
    """`(?:A1 A2 ... Ak){n}` of single-character atoms, matched from its rarest atom Aj: the atoms before it
    are checked by a look-behind (same matches, cheaper start). Other regexes are returned unchanged."""
    whole = _PERIODIC.fullmatch(regex)
    if whole is None:
        return regex
    body, count = whole.group(1), int(whole.group(2))
    atoms: list[str] = _SIMPLE_ATOM.findall(body)
    if "".join(atoms) != body or count < 1:
        return regex
    rarest = min(range(len(atoms)), key=lambda index: (_mass(first_of(atoms[index])), index))
    if rarest == 0:
        return regex
    rest = "".join(atoms[rarest + 1:]) + (f"(?:{body}){{{count - 1}}}" if count > 1 else "")
    return atoms[rarest] + "(?<=" + "".join(atoms[:rarest + 1]) + ")" + rest


_LITERAL_GROUP = re.compile(r"\(\?:((?:[^()|\[\\]|\\[^A-Za-z0-9])+(?:\|(?:[^()|\[\\]|\\[^A-Za-z0-9])+)+)\)")


def factor_literal_groups(regex: str) -> str:
    """Groups of literal alternatives `(?:key1|key2|...)` as a look-ahead of their first characters and a
    prefix trie (same matches; at most positions one class test)."""

    def factored(match: re.Match[str]) -> str:
        words = []
        for alternative in match.group(1).split("|"):
            literal = literal_of(alternative.encode("ascii"))
            if literal is None:
                return match.group()
            words.append(literal.decode("ascii").lower())
        branches = trie_branches(words, anchored=False)
        lookahead = java_class(set().union(*(first_of(branch).chars for branch in branches)))
        return f"(?={lookahead})(?:" + "|".join(branches) + ")"

    return _LITERAL_GROUP.sub(factored, regex)


def dispatch(alternatives: list[str]) -> str:
    """One Java regex matching where any of `alternatives` matches, cheap where none can start.

    The alternatives are grouped by the characters they can start with, groups ordered by how often those
    characters occur, and the whole behind one look-ahead class of every possible first character.
    """
    firsts = [first_of(alternative) for alternative in alternatives]
    loose = [alternative for alternative, first in zip(alternatives, firsts, strict=True) if first == ANYTHING]
    by_char: dict[str, tuple[int, ...]] = {}
    for char in sorted(_ASCII):
        members = tuple(index for index, first in enumerate(firsts) if first != ANYTHING and char in first.chars)
        if members:
            by_char[char] = members
    groups: dict[tuple[int, ...], set[str]] = {}
    for char, members in by_char.items():
        groups.setdefault(members, set()).add(char)
    non_ascii = tuple(index for index, first in enumerate(firsts) if first != ANYTHING and first.non_ascii)
    nodes: list[_Node] = []
    for members, chars in groups.items():
        body = "|".join(alternatives[index] for index in members)
        only = len(members) == 1 and firsts[members[0]].chars == chars and not firsts[members[0]].non_ascii
        nodes.append(_Node(_mass(First(frozenset(chars), False)), frozenset(chars), False,
                           alternatives[members[0]] if only else f"(?={java_class(chars)})(?:{body})"))
    if non_ascii:
        body = "|".join(alternatives[index] for index in non_ascii)
        nodes.append(_Node(NON_ASCII_FREQUENCY, frozenset(), True, f"(?={java_class(set(), True)})(?:{body})"))
    guarded = ""
    if nodes:  # a single group: guard it too
        root = _huffman(nodes)
        guarded = root.text if len(nodes) > 1 else f"(?={java_class(root.chars, root.non_ascii)})(?:{root.text})"
    return "|".join(([guarded] if guarded else []) + loose)


@dataclass(frozen=True)
class _Node:
    """A group of alternatives (or two of them) and the characters its matches start with."""

    mass: int
    chars: frozenset[str]
    non_ascii: bool
    text: str  # fails at once (one class test) on a character that is not its own


def _huffman(nodes: list[_Node]) -> _Node:
    """The groups as a binary (Huffman) tree weighted by how often their characters occur. java.util.regex
    tries the alternatives of a `|` in turn and every subtree starts with a class test of its characters,
    so at a position the tests are about two per step of the path to its group: few for frequent
    characters, one (the root's) for characters no alternative starts with."""
    pending = sorted(nodes, key=lambda node: node.mass)
    while len(pending) > 1:
        light, heavy = pending.pop(0), pending.pop(0)
        chars, non_ascii = light.chars | heavy.chars, light.non_ascii or heavy.non_ascii
        guard = java_class(chars, non_ascii)
        pending.append(_Node(light.mass + heavy.mass, chars, non_ascii, f"(?={guard})(?:{heavy.text}|{light.text})"))
        pending.sort(key=lambda node: node.mass)
    return pending[0]


# -- the patterns of a format ---------------------------------------------------------------------


def _translate(patterns: tuple[bytes, ...]) -> tuple[list[str], list[str], list[str]]:
    """(ASCII-folded multi-character literals, single non-ASCII characters, regexes) of `patterns`."""
    words: list[str] = []
    singles: list[str] = []
    regexes: list[str] = []
    for pattern in patterns:
        literal = literal_of(pattern)
        if literal is None:
            try:
                text = pattern.decode("ascii")
            except UnicodeDecodeError:
                raise ValueError(f"cannot translate non-ASCII regex {pattern!r} to Java") from None
            first_of(text)  # raises on constructs this module does not know
            regexes.append(text)
            continue
        text = literal.lower().decode("utf-8")  # bytes.lower() folds ASCII letters only
        if len(text) == 1 and not text.isascii():
            singles.append(text)
        else:
            words.append(text)
    return words, singles, regexes


def numeric_alternatives(free_text_keys: tuple[str, ...]) -> list[str]:
    """The NUMERIC patterns as Java alternatives, one per prefix `(prefix)(?=[0-9])(?:any shape)` when they
    are the product of prefixes and shapes (as `_json_numeric_patterns` builds them), else one each."""
    patterns = _json_numeric_patterns(free_text_keys)
    words, singles, regexes = _translate(patterns)
    if words or singles:
        raise ValueError("numeric patterns are expected to be regexes")
    shapes = numeric_patterns()
    prefixes: dict[str, set[bytes]] = {}
    for pattern in patterns:
        shape = next((shape for shape in shapes if pattern.endswith(b"(?:" + shape + b")")), None)
        if shape is None:
            return [factor_literal_groups(regex) for regex in regexes]
        prefixes.setdefault(pattern[: -len(shape) - 4].decode("ascii"), set()).add(shape)
    if any(found != set(shapes) for found in prefixes.values()):
        return [factor_literal_groups(regex) for regex in regexes]
    digit = "(?=[0-9])" if all(shape.startswith(b"[0-9]") for shape in shapes) else ""
    shape_group = "(?:" + "|".join(shape.decode("ascii") for shape in shapes) + ")"
    return [factor_literal_groups(prefix) + digit + shape_group for prefix in sorted(prefixes)]


@dataclass(frozen=True)
class JvmPatterns:
    """The Java tests of one line format (see the module documentation)."""

    candidate: str  # STRONG or NUMERIC (superset) or invalid UTF-8, one regex for `rlike`
    first_edge: str  # SUSPECT: a record line starts with this ...
    last_edge: str  # ... and ends with this (one CR may follow)


@lru_cache(maxsize=8)
def jvm_patterns(free_text_keys: tuple[str, ...], record_edges: tuple[bytes, bytes] | None) -> JvmPatterns:
    """The Java patterns of a line format with these free-text keys and record edges."""
    words, singles, regexes = _translate(strong_patterns())
    alternatives = trie_branches(words)
    alternatives.append(java_class({*singles, REPLACEMENT}))
    alternatives.extend(anchor_periodic(regex) for regex in regexes)
    alternatives.extend(numeric_alternatives(free_text_keys))
    first, last = record_edges if record_edges is not None else (b"", b"")
    return JvmPatterns("(?i)" + dispatch(alternatives), first.decode("utf-8"), last.decode("utf-8"))


def python_equivalent(java: str) -> re.Pattern[str]:
    """A Java regex of this module compiled by Python's `re` (for tests and diagnostics): the constructs
    used mean the same in both engines, except `\\x{...}` and the inline flag, rewritten here."""
    text = re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", java)
    return re.compile(text.replace("(?i)", ""), re.IGNORECASE | re.ASCII)
