"""Indicator patterns derived from the knowledge base: what text must contain to possibly name a metadata host.

These patterns are a *necessary condition* for every detection: the host extractor, the path and
variable finders and the agent checks can only fire on text that matches one of them. They serve
twice: the prefilter runs them over raw bytes so that only candidate records are parsed, and the
command-line rule uses them as a cheap gate before the (slower) full extraction. A property test
checks the condition against generated spellings of every encoding class.

Pattern groups:
- literals (case-insensitive): metadata addresses in standard text, IPv6 prefixes and hex words,
  names, wildcard-DNS suffixes, metadata-specific path markers (with `/`, `\\` and `\\\\`),
  credential-endpoint variables, agent names, record types that always matter;
- numeric forms: every inet_aton spelling of a metadata IPv4 (1 to 4 parts, decimal, octal, parts
  wrapped modulo their size) has parts at least as long as the shortest decimal spelling of the
  part's value, so `[0-9]{L1,}\\.[0-9]{L2,}...` per address and part count covers them; hex parts
  are covered by the `0x` marker;
- encodings: percent escapes, `\\x`/`\\u` escapes, `&#` entities, and every non-ASCII character that
  Unicode folding (NFKC, Unicode full stops, ignored code points) can turn into host characters;
- base64: the shape of base64-encoded UTF-16LE text (PowerShell `-EncodedCommand`, whatever it says), and
  the literals above as they appear inside base64 of UTF-8 text at each of the three byte alignments
  (standard and URL-safe alphabets). Numeric and escaped spellings inside UTF-8 base64 are not covered:
  the full extraction finds them, the prefilter and the gate do not (scan with --no-prefilter for those).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import sys
import types
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..accelerators import native_function
from .agents import distinctive_agent_names
from .endpoints import ADDRESSES, ARC_PORT, NAMES, REBINDING_SUFFIXES, WILDCARD_DNS_SUFFIXES
from .hosts import IGNORED_CODEPOINTS, UNICODE_DOTS, ipv4_value
from .paths import CREDENTIAL_VARIABLES, specific_markers

PERCENT_ESCAPE = rb"%[0-9a-f]{2}"  # percent-encoding (any round)
ENCODING_PATTERNS = (
    PERCENT_ESCAPE,
    rb"\\x[0-9a-f]{2}",  # \x escapes in scripts
    rb"\\u00[2-7][0-9a-f]",  # \u escapes of ASCII characters (non-ASCII ones: see escaped_folding)
    rb"\\ud[89ab][0-9a-f]{2}",  # surrogate-pair escapes (astral characters)
    rb"\\u\{",  # \u{...} escapes
    rb"&#",  # HTML/XML character references
    rb"0x[0-9a-f]",  # hex parts and hex integers
)
_HOST_CHARS = set("0123456789abcdefghijklmnopqrstuvwxyz.-:/@[]%")


def _shortest_part_lengths(address: ipaddress.IPv4Address) -> list[list[int]]:
    """For 1..4 parts: the decimal length of each part's value (no spelling of that part is shorter)."""
    value = int(address)
    forms = []
    for count in range(1, 5):
        parts = []
        for index in range(count - 1):
            parts.append((value >> (24 - 8 * index)) & 0xFF)
        last_bits = 8 * (5 - count)
        parts.append(value & ((1 << last_bits) - 1))
        forms.append([len(str(part)) for part in parts])
    return forms


@lru_cache(maxsize=1)
def numeric_shapes() -> tuple[tuple[int, ...], ...]:
    """The minimum digit-run length of each dot-separated part, per shape (see :func:`numeric_patterns`)."""
    shapes: set[tuple[int, ...]] = set()
    for info in ADDRESSES:
        address = ipaddress.ip_address(info.address)
        if isinstance(address, ipaddress.IPv4Address) and info.address_alone:
            shapes |= {tuple(lengths) for lengths in _shortest_part_lengths(address)}
    return tuple(sorted(shapes))


def numeric_patterns() -> tuple[bytes, ...]:
    """Digit-shape patterns covering every decimal/octal inet_aton spelling of each metadata IPv4."""
    # A non-digit must follow, so each digit run ends in one match, not one per digit.
    return tuple(sorted({rb"\.".join(b"[0-9]{%d,}" % length for length in lengths) + b"[^0-9]"
                         for lengths in numeric_shapes()}))


@lru_cache(maxsize=1)
def literal_needles() -> tuple[str, ...]:
    """Lower-case literals whose presence makes a record a candidate."""
    needles: set[str] = set()
    for info in ADDRESSES:
        address = ipaddress.ip_address(info.address)
        if isinstance(address, ipaddress.IPv4Address):
            if info.address_alone:
                high_word = int(address) >> 16
                needles |= {info.address, f":{high_word:x}:"}
        elif info.address_alone:
            needles.add(address.exploded.split(":")[0] + ":")
    needles.add(str(ARC_PORT))
    needles |= {name.name for name in NAMES if not name.url_only} | {"metadata", "instance-data"}
    needles |= set(WILDCARD_DNS_SUFFIXES) | set(REBINDING_SUFFIXES)
    for marker in specific_markers():
        core = marker.strip("/")
        needles |= {core, core.replace("/", "\\"), core.replace("/", "\\\\")}
    needles |= set(CREDENTIAL_VARIABLES)
    needles |= {name.removesuffix(".exe") for name in distinctive_agent_names()}
    return tuple(sorted(_minimal(needles)))


def _minimal(needles: set[str]) -> list[str]:
    """Drop needles containing a shorter needle: the shorter one already selects those records."""
    kept: list[str] = []
    for needle in sorted(needles, key=len):
        if not any(shorter in needle for shorter in kept):
            kept.append(needle)
    return kept


@lru_cache(maxsize=1)
def folding_characters() -> tuple[str, ...]:
    """Non-ASCII characters that Unicode folding can turn into host characters (or that hosts ignore).

    A character counts when NFKC folds it to a single host character, to digits and dots only (`⒈`),
    or to a string that occurs in one of the literal needles (so `™` -> `tm` does not count).

    Reading every code point takes about 0.15 s, so the result is kept in the user's cache, under a name
    derived from everything it depends on (the Unicode version, the needles, the ignored code points and dots,
    and this computation's own code, see :func:`_code_fingerprint`). Writing a set removes the sets of other
    inputs; a cache that cannot be read or written is only a lost shortcut.
    """
    inputs = (unicodedata.unidata_version, literal_needles(), sorted(IGNORED_CODEPOINTS), sorted(UNICODE_DOTS),
              sorted(_HOST_CHARS), _code_fingerprint(_folding_characters.__code__))
    cached = _cache_dir() / f"folding-{hashlib.sha256(repr(inputs).encode()).hexdigest()[:32]}.txt"
    try:
        text = cached.read_text(encoding="utf-8")
        if text.endswith("\n"):  # (written whole: see below)
            return tuple(text[:-1])
    except (OSError, UnicodeDecodeError):
        pass
    chars = _folding_characters()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text("".join(chars) + "\n", encoding="utf-8")
        os.replace(temporary, cached)
        for stale in cached.parent.glob("folding-*.txt"):  # sets of other versions of the inputs
            if stale != cached:
                stale.unlink(missing_ok=True)
    except (OSError, UnicodeError):
        pass
    return chars


def _code_fingerprint(code: types.CodeType) -> tuple[object, ...]:
    """What a function's code does, the same in every process: its bytecode, names and constants, nested code
    likewise. (The repr of the constants would hold the memory address of nested code objects, and marshal's
    output depends on reference counts.)"""
    constants = tuple(_code_fingerprint(constant) if isinstance(constant, types.CodeType)
                      else tuple(sorted(map(repr, constant))) if isinstance(constant, frozenset) else constant
                      for constant in code.co_consts)
    return code.co_code, code.co_names, constants


def _folding_characters() -> tuple[str, ...]:
    """:func:`folding_characters`, computed."""
    words = literal_needles()
    chars: set[str] = {chr(c) for c in IGNORED_CODEPOINTS} | {chr(c) for c in UNICODE_DOTS}
    for code in range(0x80, 0x30000):
        char = chr(code)
        folded = unicodedata.normalize("NFKC", char).lower()
        if folded == char.lower() or not folded:
            continue
        host_part = "".join(c for c in folded if c in _HOST_CHARS)
        if not host_part:
            continue
        if len(folded) == 1 or folded.strip("0123456789.") == "" or any(folded in word for word in words):
            chars.add(char)
    return tuple(sorted(chars))


_B64 = rb"[A-Za-z0-9+/]"
# Base64 of UTF-16LE ASCII text, one 8-character period (6 bytes: c 0 c 0 c 0); five periods are 15
# characters of text, shorter than any command that fetches a URL.
UTF16_BASE64_SHAPE = rb"(?:" + _B64 + rb"[AQgw][AB]" + _B64 + rb"A[A-H][AEIMQUYcgkosw048]A){5}"
MIN_BASE64_LITERAL = 6  # shorter stable runs would match too much ordinary text


def base64_fragments(literal: bytes) -> set[bytes]:
    """The base64 characters that `literal` alone determines, at each of the three byte alignments."""
    fragments: set[bytes] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + literal + b"\0\0")
        first = -(-offset * 8 // 6)  # the first character whose 6 bits all come from the literal
        last = (offset + len(literal)) * 8 // 6  # one past the last such character
        fragment = encoded[first:last]
        if len(fragment) >= MIN_BASE64_LITERAL:
            fragments |= {fragment, fragment.translate(bytes.maketrans(b"+/", b"-_"))}
    return fragments


# Needles as they are usually written when that is not lower case: base64 keeps case, so the fragments of
# the lower-case needle miss them (`http://.../computeMetadata/v1/...` inside a base64 URL parameter).
WRITTEN_CASE_NEEDLES = ("computeMetadata", "Metadata")


@lru_cache(maxsize=1)
def base64_patterns() -> tuple[bytes, ...]:
    """Base64 forms: the UTF-16LE text shape, and every literal needle inside base64 of UTF-8 text."""
    fragments: set[bytes] = set()
    for needle in (*literal_needles(), *WRITTEN_CASE_NEEDLES):
        fragments |= base64_fragments(needle.encode())
    return (UTF16_BASE64_SHAPE,) + tuple(re.escape(fragment) for fragment in sorted(fragments))


@lru_cache(maxsize=1)
def strong_patterns() -> tuple[bytes, ...]:
    """Literal, encoding and Unicode-folding patterns: a match makes the text a candidate on its own."""
    literals = tuple(re.escape(n.encode()) for n in literal_needles())
    folding = tuple(re.escape(c.encode("utf-8")) for c in folding_characters())
    escaped = tuple(b"\\\\u%04x" % ord(c) for c in folding_characters() if ord(c) <= 0xFFFF)
    return literals + ENCODING_PATTERNS + folding + escaped + base64_patterns()


# Tokens that start with a digit, bounded by characters that are not part of a host (ASCII only: any
# non-ASCII host spelling is caught by the folding patterns).
_NUMERIC_TOKEN = re.compile(rb"(?<![0-9A-Za-z.])[0-9][0-9A-Za-z.]*")
_TOKEN_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")
METADATA_IPV4 = frozenset(
    int(ipaddress.IPv4Address(info.address)) for info in ADDRESSES
    if info.address_alone and isinstance(ipaddress.ip_address(info.address), ipaddress.IPv4Address)
)


@lru_cache(maxsize=65536)
def token_names_metadata(token: bytes) -> bool:
    """Whether a numeric token reads (inet_aton, with wrapping) as a metadata IPv4 address.

    The token is tried whole and, when it has more than four dot-separated parts, as every run of one
    to four consecutive parts, so a host cut out of a longer dotted string is not missed.
    """
    parts = token.decode("ascii").strip(".").split(".")
    if len(parts) <= 4:
        return ipv4_value(".".join(parts)) in METADATA_IPV4
    return any(ipv4_value(".".join(parts[i:i + size])) in METADATA_IPV4
               for size in range(1, 5) for i in range(len(parts) - size + 1))


_TOKEN_RUN = re.compile(rb"[0-9A-Za-z.]*")
_BACK_STEP = 64


def token_span(data: bytes, position: int) -> tuple[int, int]:
    """(start, end) of the maximal run of host characters (ASCII letters, digits, dots) around `position`.

    Linear in the run's length (regex forward, reversed slices backward), so callers that skip every
    position inside a run they already read stay linear on hostile runs of digits and dots.
    """
    end = _TOKEN_RUN.match(data, position).end()  # type: ignore[union-attr]  # `*` always matches
    start = position
    while start > 0:
        low = max(0, start - _BACK_STEP)
        back = data[low:start][::-1]
        taken = _TOKEN_RUN.match(back).end()  # type: ignore[union-attr]
        start -= taken
        if taken < len(back):
            break
    return start, end


def numeric_token(data: bytes, end: int, read_to: int = -1) -> tuple[bytes | None, int]:
    """The token (see :func:`token_span`) of a numeric-shape match that ends at `end`, just after its boundary
    character, and where that token ends. None when the match lies before `read_to`, the end of the token
    read last: in ascending end order, every shape inside one token reads that same token."""
    position = max(end - 2, 0)  # the last digit of the shape
    if position < read_to:
        return None, read_to
    start, stop = token_span(data, position)
    return data[start:stop], stop


@lru_cache(maxsize=1)
def _numeric_shapes() -> re.Pattern[bytes]:
    return re.compile(b"|".join(p.removesuffix(b"[^0-9]") for p in numeric_patterns()))


def numbers_name_metadata(data: bytes) -> bool:
    """Whether any numeric token in `data` reads as a metadata IPv4 address (see token_names_metadata)."""
    shapes = _numeric_shapes()
    return any(shapes.search(m.group()) and token_names_metadata(m.group()) for m in _NUMERIC_TOKEN.finditer(data))


def for_re(pattern: bytes) -> bytes:
    """A pattern as the `re` fallback runs it: a digit-run shape (`[0-9]{10,}[^0-9]` ...) is tried only where a
    run of digits starts. Searched unanchored, `re` would otherwise try it again from every digit of a long run,
    reading the rest of the run each time (quadratic). The matches are the same: a shape that matches from inside
    a run matches from the run's first digit too (its first part only gets longer), and is found there first.
    Hyperscan needs no such guard (it is linear by construction) and has no look-behind."""
    return b"(?<![0-9])" + pattern if pattern.startswith(b"[0-9]") else pattern


class PatternSet:
    """Groups of case-insensitive byte patterns compiled once: Hyperscan when installed, else `re`.

    Matches are reported by group index, so callers can treat groups differently.
    """

    def __init__(self, groups: tuple[tuple[bytes, ...], ...], use_hyperscan: bool = True) -> None:
        self.groups = groups
        self._database: Any = _hyperscan_database(groups) if use_hyperscan else None
        self._regexes = [] if self._database is not None else [
            (index, re.compile(b"|".join(map(for_re, group)), re.IGNORECASE | re.MULTILINE))
            for index, group in enumerate(groups) if group]
        self.engine = "hyperscan" if self._database is not None else "python"

    def matches(self, data: bytes) -> list[tuple[int, int]]:
        """(group index, end offset) of matches; with `re`, every non-overlapping match of each group.

        Hyperscan also reports overlapping ends; callers only need, per line, one end per group and, for
        numeric shapes, one end inside each token, which non-overlapping matches give.
        """
        found: list[tuple[int, int]] = []
        if self._database is not None:

            def on_match(group: int, _start: int, end: int, _flags: int, _context: object) -> None:
                found.append((group, end))

            self._database.scan(data, match_event_handler=on_match)
            return found
        for group, regex in self._regexes:
            found.extend((group, hit.end()) for hit in regex.finditer(data))
        return found

    def search(self, data: bytes) -> bool:
        """Whether any pattern matches `data`."""
        if self._database is None:
            return any(regex.search(data) is not None for _, regex in self._regexes)
        found = False

        def on_match(_group: int, _start: int, _end: int, _flags: int, _context: object) -> bool:
            nonlocal found
            found = True
            return True  # stop scanning

        try:
            self._database.scan(data, match_event_handler=on_match)
        except Exception:  # Hyperscan reports a scan stopped by the handler as an error
            if not found:
                raise
        return found


def _hyperscan_database(groups: tuple[tuple[bytes, ...], ...]) -> Any:
    """A compiled Hyperscan database, loaded from the user's cache when an identical one was built before."""
    try:
        import hyperscan
    except ImportError:
        return None
    patterns = [pattern for group in groups for pattern in group]
    ids = [index for index, group in enumerate(groups) for _ in group]
    digest = hashlib.sha256(repr((patterns, ids, getattr(hyperscan, "__version__", ""))).encode()).hexdigest()
    cached = _cache_dir() / f"hs-{digest[:32]}.db"
    try:
        loaded = hyperscan.loadb(cached.read_bytes(), hyperscan.HS_MODE_BLOCK)
        loaded.scratch = hyperscan.Scratch(loaded)
        return loaded
    except (OSError, TypeError, hyperscan.error):
        pass
    database = hyperscan.Database()
    database.compile(expressions=patterns, ids=ids, elements=len(patterns),
                     flags=[hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_MULTILINE] * len(patterns))
    try:  # best effort: a read-only home only costs the compile time next run
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(hyperscan.dumpb(database))
        os.replace(temporary, cached)
    except OSError:
        pass
    return database


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imds-detect"


@lru_cache(maxsize=1)
def _strong_gate() -> PatternSet:
    return PatternSet((strong_patterns(),))


def could_mention_metadata(text: str) -> bool:
    """False only when `text` cannot name a metadata endpoint, path, variable or agent in any spelling."""
    return could_mention_bytes(text.encode("utf-8", "surrogatepass"))


@lru_cache(maxsize=1)
def _shape_gate() -> PatternSet:
    """The strong patterns (group 0) and the numeric shapes with their boundary (group 1), in one pass."""
    return PatternSet((strong_patterns(), numeric_patterns()))


NATIVE_NUMERIC_ENDS: Callable[..., list[int]] | None = native_function("_numeric_tokens", "ends")
# The modes of the C numeric pass (its `bare` argument): JSON free text, or any digit-led token (the first, or each).
IN_FREE_TEXT, FIRST_TOKEN, EVERY_TOKEN = 0, 1, 2


def native_numeric_pass(keys: tuple[str, ...] = (), mode: int = IN_FREE_TEXT) -> Callable[[bytes], list[int]] | None:
    """The C numeric pass (``native/numeric_tokens.c``) over this knowledge base's shapes and addresses, or None
    when the extension is not built (or switched off).

    IN_FREE_TEXT, with free-text `keys`: it stands for the prefilter's numeric group of JSON lines followed by its
    token check (see ``engine/prefilter.py``): the end offsets of the digit-led tokens, in free text or at the start
    of a key's value, that name a metadata address. FIRST_TOKEN: the numeric part of :func:`could_mention_bytes` (a
    shape at any digit run of a digit-led token), the first such token only; EVERY_TOKEN: each of them.
    """
    ends = NATIVE_NUMERIC_ENDS
    if ends is None:
        return None
    arguments = (tuple(key.encode() for key in keys), numeric_shapes(), tuple(sorted(METADATA_IPV4)), mode)
    return lambda data: ends(data, *arguments)


@lru_cache(maxsize=1)
def _bare_numeric_pass() -> Callable[[bytes], list[int]] | None:
    return native_numeric_pass(mode=FIRST_TOKEN)


@lru_cache(maxsize=1)
def _every_numeric_pass() -> Callable[[bytes], list[int]] | None:
    return native_numeric_pass(mode=EVERY_TOKEN)


def mention_ends(data: bytes) -> list[int] | None:
    """The gate of :func:`could_mention_bytes` over many records at once: end offsets in `data` of every strong
    pattern match and of every numeric token that names metadata (the C pass, reading each token as the gate does),
    ascending per kind. A record of `data` that ends with a newline and that the gate would pass holds the byte just
    before one of them (a token at its end has that newline as its boundary). None when the C pass is not built.
    """
    numbers = _every_numeric_pass()
    if numbers is None:
        return None
    return [end for _, end in _strong_gate().matches(data)] + numbers(data)


def could_mention_bytes(data: bytes) -> bool:
    """`could_mention_metadata` for UTF-8 bytes.

    With the C extension, the strong patterns are searched and the C pass reads the numeric tokens (see
    ``native/numeric_tokens.c``, bare mode). Else :func:`could_mention_patterns`.
    """
    numbers = _bare_numeric_pass()
    if numbers is None:
        return could_mention_patterns(data)
    return _strong_gate().search(data) or bool(numbers(data + b"\n"))


def could_mention_patterns(data: bytes) -> bool:
    """:func:`could_mention_bytes` with patterns only (the reference the C pass is tested against).

    With Hyperscan, one pass finds strong patterns and numeric shapes; only the tokens around shape matches
    are read as addresses (text full of other numbers, such as a CSV row, costs one scan). Without it, the
    strong patterns are searched, then every numeric token is read.
    """
    gate = _shape_gate()
    if gate.engine != "hyperscan":
        return _strong_gate().search(data) or numbers_name_metadata(data)
    probe = data + b"\n"  # a number at the very end has its boundary character too
    read_to = -1  # end of the last token read (Hyperscan reports matches in ascending end order)
    for group, end in gate.matches(probe):
        if group == 0:
            return True
        token, read_to = numeric_token(probe, end, read_to)
        if token is not None and token[:1].isdigit() and token_names_metadata(token):
            return True
    return False


if __name__ == "__main__":  # pragma: no cover - a look at the derived set
    sys.stdout.write(f"{len(literal_needles())} literals, {len(numeric_patterns())} numeric shapes, "
                     f"{len(folding_characters())} folding characters\n")
