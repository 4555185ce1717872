"""Find host references in free text: URLs, fetch-tool arguments, /dev/tcp, nc, socat, telnet, PowerShell.

The text is split into words, pieces and escapes by regular expressions made of character classes
without nested quantifiers (linear time). Each word is tried, in order, as a /dev/tcp path, as one or
more URLs (WHATWG-style: special schemes skip any run of slashes and backslashes, the last '@' ends
the userinfo, '#', '?' and '\\' end the authority), as a socat address and as a scheme-less
`host[:port][/path]`. Words are also read again after shell de-obfuscation (glued quotes, carets),
after up to four rounds of percent / backslash / HTML-entity decoding and, for base64 runs, after
base64 decoding; a reference found in a decoded layer is reported at the span of the original text it
was decoded from (`raw`), with `host_raw` and `path` as they read once decoded.

What counts as a host outside a URL: in running text only literal addresses (dotted quad, IPv6) and
metadata hosts (a wrapped number such as 7147006462 only when a fetch tool names it); after a fetch
tool (curl, wget, PowerShell web cmdlets, .NET web classes) also other dotted names and numeric forms;
after nc / telnet the host followed by its port; after a DNS tool (dig, nslookup) the address is a
resolver and gets port 53. A one-label metadata name (`metadata`) counts only as a URL authority or
as the host argument of a fetch form, never as a word. Work is bounded: the first 64 KiB of text,
4 decoding rounds (both configurable: ``max_text_chars`` and ``max_decode_depth`` in
:mod:`imds_detect.limits`; a text still decodable after the last round is judged as decoded so far and the
hit counted), 64 base64 runs, 32 URLs per word, 512 metadata and 512 other references.

Command lines recur, and so do their words: what a word gives in its context, what a path piece gives,
which hosts are metadata services and the results of recent short texts are kept in bounded caches
(pure functions of their keys, so the results never depend on what was read before).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

from .. import limits as _limits
from . import endpoints
from .hosts import CanonicalHost, MetadataHit, canonical_host, match_host, split_host_port

MAX_TEXT_CHARS = _limits.Limits().max_text_chars  # defaults: the scan's limits decide (imds_detect.limits)
MAX_DECODE_ROUNDS = _limits.Limits().max_decode_depth
MAX_REFERENCES = 512  # of metadata references, and separately of other references
MAX_BASE64_ATTEMPTS = 64
MAX_HOST_CHARS = 1024
MAX_URLS_PER_WORD = 32
MAX_PIECES_CHARS = 4096  # of one path / word searched for embedded hosts
MAX_CACHED_WORD_CHARS = 256  # longer words are read again each time they are seen
MAX_CACHED_TEXT_CHARS = 4096  # the results of the last MAX_CACHED_TEXTS texts this short are kept
MAX_CACHED_TEXTS = 512


@dataclass(frozen=True)
class HostReference:
    """A host named in free text, where it is and how it was written."""

    raw: str
    host_raw: str
    host: CanonicalHost
    port: int | None
    path: str
    start: int
    end: int
    form: str  # "url" | "scheme-less" | "dev-tcp" | "nc" | "socat" | "telnet" | "powershell" | "bare"


_BOUNDARIES = frozenset("\r\n;|&")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_PATH_START = re.compile("[/?#\uff0f\uff1f\uff03]")
# A piece (a run between the delimiters) with a character `_may_be_host` looks for: a dot, colon, digit,
# '%', '[' or a non-ASCII character. The look-behind starts it only where a piece starts.
_PIECE_DELIMITERS = r"/\\=@,;?#&+*!$|"
_HOST_HINTS = r".:%\[0-9\x80-\U0010ffff"
_HINTED_PIECE = re.compile(
    rf"(?<![^{_PIECE_DELIMITERS}])[^{_PIECE_DELIMITERS}{_HOST_HINTS}]*[{_HOST_HINTS}][^{_PIECE_DELIMITERS}]*"
)
# The colons `_urls` reads: after a scheme character, or before a slash. At any other colon the scheme is
# empty and no slash follows: nothing to do.
_URL_COLON = re.compile(r"(?<=[a-zA-Z0-9+\-.]):|:(?=[/\\])")
_AUTHORITY_END = re.compile("[/?#]")
_SPECIAL_AUTHORITY_END = re.compile(r"[/\\?#]")
_TRAILING_PUNCTUATION = ",;!?"
_SOCAT_PREFIXES = (
    "tcp:", "tcp4:", "tcp6:", "tcp-connect:", "tcp4-connect:", "tcp6-connect:", "openssl:",
    "openssl-connect:", "ssl:", "udp:", "udp4:", "udp6:", "udp-connect:", "udp4-connect:",
    "udp6-connect:", "udp-sendto:",
)
# Command words that make their arguments hosts: fetch tools, PowerShell / .NET web calls, raw sockets.
_TOOLS: dict[str, str] = {
    **dict.fromkeys(("curl", "wget", "wget2", "httpie", "xh", "aria2c", "lynx", "w3m", "lwp-request",
                     "lwp-download", "bitsadmin", "certutil"), "fetch"),
    **dict.fromkeys(("invoke-webrequest", "invoke-restmethod", "iwr", "irm", "start-bitstransfer",
                     "webclient", "downloadstring", "downloaddata", "downloadfile", "openread",
                     "uploadstring", "webrequest", "httpwebrequest", "httpclient", "getasync",
                     "getstringasync", "getbytearrayasync", "getstreamasync"), "ps"),
    **dict.fromkeys(("nc", "ncat", "netcat"), "nc"),
    "telnet": "telnet",
    "socat": "socat",
    # DNS tools: an address they name is a resolver, reached on port 53 (GCP's 169.254.169.254 resolver).
    **dict.fromkeys(("dig", "kdig", "nslookup", "drill", "delv"), "dns"),
}
DNS_PORT = 53
_WHOLE_WORD_TOOLS = {"http": "fetch", "https": "fetch"}  # httpie; too common as a sub-word
_URL_OPTIONS = frozenset({"-uri", "-url", "--url", "-source"})
_BOOL_LONG_OPTIONS = frozenset({
    "--silent", "--insecure", "--location", "--verbose", "--fail", "--show-error", "--compressed",
    "--globoff", "--include", "--head", "--quiet", "--no-check-certificate", "-usebasicparsing",
})
_BOOL_SHORT_OPTIONS = frozenset("sSvkLiIfgGnq46NJR")
_NUMBER_NOTES = frozenset({"integer", "short-form", "hex", "octal", "wrapped-part", "wrapped-mod-2^32"})
_WRAP_NOTES = frozenset({"wrapped-part", "wrapped-mod-2^32"})
_URL_ONLY_NAMES = frozenset(n.name for n in endpoints.NAMES if n.url_only)


class _Layer:
    """A version of the text and, per character, the span of the original text it came from.

    The original text maps each character to itself. A decoded layer keeps, per segment of its text,
    where the segment came from in its source layer: a copied run maps character by character, a
    decoded run maps every character to the span of the escape it was decoded from. A base64 layer maps
    every character to the whole run. Spans are worked out only when a reference is recorded.
    """

    def __init__(self, text: str, source: _Layer | None = None, outs: list[int] | None = None,
                 segments: list[tuple[int, int, bool]] | None = None,
                 fixed: tuple[int, int] | None = None) -> None:
        self.text = text
        self.source = source  # the layer this one was decoded from (None: the original text or base64)
        self.outs = outs or []  # where each segment starts in `text`, ascending
        self.segments = segments or []  # per segment: (first, last, copied) source indices
        self.fixed = fixed  # (start, end) of every character of a base64 layer

    def start_of(self, index: int) -> int:
        source = self.source
        if source is None:
            return index if self.fixed is None else self.fixed[0]
        segment = bisect_right(self.outs, index) - 1
        first, _, copied = self.segments[segment]
        return source.start_of(first + index - self.outs[segment] if copied else first)

    def end_of(self, index: int) -> int:
        source = self.source
        if source is None:
            return index + 1 if self.fixed is None else self.fixed[1]
        segment = bisect_right(self.outs, index) - 1
        first, last, copied = self.segments[segment]
        return source.end_of(first + index - self.outs[segment] if copied else last)

    def span(self, start: int, end: int) -> tuple[int, int]:
        if end <= start:
            return self.start_of(start), self.start_of(start)
        return self.start_of(start), self.end_of(end - 1)


class _Builder:
    """Collects the pieces of a new layer and where each came from in the source layer."""

    def __init__(self, source: _Layer) -> None:
        self.source = source
        self.pieces: list[str] = []
        self.outs: list[int] = []
        self.segments: list[tuple[int, int, bool]] = []
        self.size = 0

    def copy(self, first: int, stop: int) -> None:
        """Append source characters first..stop-1 unchanged."""
        if stop > first:
            self.pieces.append(self.source.text[first:stop])
            self.outs.append(self.size)
            self.segments.append((first, stop - 1, True))
            self.size += stop - first

    def add(self, text: str, first: int, last: int) -> None:
        """Append `text` decoded from source characters first..last (inclusive)."""
        if text:
            self.pieces.append(text)
            self.outs.append(self.size)
            self.segments.append((first, last, False))
            self.size += len(text)

    def add_bytes(self, data: list[int], spans: list[tuple[int, int]]) -> None:
        """Append bytes decoded as UTF-8 where valid, Latin-1 otherwise."""
        if data and max(data) < 0x80:  # ASCII: a character per byte
            self.pieces.append(bytes(data).decode("ascii"))
            self.outs.extend(range(self.size, self.size + len(data)))
            self.segments.extend([(first, last, False) for first, last in spans])
            self.size += len(data)
            data.clear()
            spans.clear()
            return
        index = 0
        while index < len(data):
            lead = data[index]
            size = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4 if lead < 0xF8 else 1
            if size == 1:  # ASCII, or a byte that cannot start a UTF-8 sequence: Latin-1
                char = chr(lead)
            else:
                chunk = bytes(data[index : index + size])
                try:
                    char = chunk.decode("utf-8") if len(chunk) == size else ""
                except UnicodeDecodeError:
                    char = ""
            if not char:
                char, size = chr(lead), 1
            self.add(char, spans[index][0], spans[index + size - 1][1])
            index += size
        data.clear()
        spans.clear()

    def layer(self) -> _Layer:
        return _Layer("".join(self.pieces), self.source, self.outs, self.segments)


# The escapes one decoding round reads, as they are tried at each position: a percent, \x or octal escape
# is a byte (consecutive bytes are read as UTF-8 together); \/, \\, \u{X..}, \uXXXX, \UXXXXXXXX, &amp;,
# &#xH; and &#N; are characters. The alternatives start differently, so at most one matches at a position.
# A code point above U+10FFFF (or 0 in an entity) leaves the escape as it is; nothing inside such an
# escape can start another one.
_ESCAPE = re.compile(
    r"%(?P<pct>[0-9A-Fa-f]{2})"
    r"|\\(?:[xX](?P<hex>[0-9A-Fa-f]{2})|(?P<oct>[0-3][0-7]{2})|(?P<char>[/\\])|u\{(?P<brace>[0-9A-Fa-f]{1,7})\}"
    r"|u(?P<u4>[0-9A-Fa-f]{4})|U(?P<u8>[0-9A-Fa-f]{8}))"
    r"|&(?:(?P<amp>amp;)|#[xX](?P<entity_hex>[0-9A-Fa-f]{1,8});|#(?P<entity>[0-9]{1,9});)"
)
_BYTE_ESCAPES = {"pct": 16, "hex": 16, "oct": 8}


def _decode_layer(source: _Layer) -> _Layer | None:
    """One round of percent, backslash-escape and numeric HTML-entity decoding; None if nothing changed."""
    text = source.text
    if "%" not in text and "\\" not in text and "&" not in text:
        return None
    out = _Builder(source)
    pending: list[int] = []  # bytes of consecutive byte escapes
    spans: list[tuple[int, int]] = []
    copied = 0  # text[copied:] is not in `out` yet
    changed = False
    for match in _ESCAPE.finditer(text):
        kind = match.lastgroup
        if kind is None:  # not reached: every alternative has a group
            continue
        digits = match.group(kind)
        index, stop = match.span()
        if kind in _BYTE_ESCAPES:
            if index > copied:
                out.add_bytes(pending, spans)
                out.copy(copied, index)
            pending.append(int(digits, _BYTE_ESCAPES[kind]))
            spans.append((index, stop - 1))
        else:
            if kind == "char":
                char = digits
            elif kind == "amp":
                char = "&"
            else:
                value = int(digits, 10 if kind == "entity" else 16)
                if value > 0x10FFFF or (value == 0 and kind.startswith("entity")):
                    continue
                char = chr(value)
            out.add_bytes(pending, spans)
            out.copy(copied, index)
            out.add(char, index, stop - 1)
        copied = stop
        changed = True
    if not changed:
        return None
    out.add_bytes(pending, spans)
    out.copy(copied, len(text))
    return out.layer()


# A quote or caret with a non-space character on both sides (`\S` is exactly `not str.isspace()`).
_GLUED = re.compile(r"""['"^](?<=\S.)(?=\S)""")


def _shell_layer(source: _Layer) -> _Layer | None:
    """Drop quotes glued inside a word (`169.254.'169'.254`) and cmd.exe carets; None if nothing changed."""
    text = source.text
    match = _GLUED.search(text)
    if match is None:
        return None
    out = _Builder(source)
    copied = 0
    while match is not None:
        index = match.start()
        if index > copied:
            out.copy(copied, index)
        copied = index + 1
        match = _GLUED.search(text, copied)
    if copied < len(text):
        out.copy(copied, len(text))
    return out.layer()


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/\-_]{16,}")  # the base64 runs long enough to be tried
_TAB_CR_LF = str.maketrans("", "", "\t\r\n")


def _base64_layers(text: str) -> list[_Layer]:
    """Printable text hidden in base64 runs (UTF-8 or UTF-16LE as in PowerShell -EncodedCommand)."""
    layers: list[_Layer] = []
    attempts = 0
    size = len(text)
    for match in _BASE64_RUN.finditer(text):
        if attempts >= MAX_BASE64_ATTEMPTS:
            break
        index, end = match.span()
        if end - index > 16384 or (end - index) % 4 == 1:
            continue
        run_end = end
        while run_end < size and run_end - end < 2 and text[run_end] == "=":
            run_end += 1
        attempts += 1
        decoded = _decode_base64(match.group())
        if decoded is not None:
            layers.append(_Layer(decoded, fixed=(index, run_end)))
    return layers


def _decode_base64(body: str) -> str | None:
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            data = base64.urlsafe_b64decode(padded)
        else:
            data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    for encoding in ("utf-16-le", "utf-8") if data[1:2] == b"\x00" else ("utf-8",):
        try:
            decoded = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if decoded and (decoded.isprintable() or decoded.translate(_TAB_CR_LF).isprintable()):
            return decoded
    return None


# A word: a run of characters that are neither white space nor shell punctuation.
_WORD = re.compile(r"""[^\s"'`<>(){}|;&]+""")


def _words(text: str) -> list[tuple[int, int, bool]]:
    """Words (start, end, starts-a-new-command) split at whitespace, quotes and shell punctuation."""
    spans = [match.span() for match in _WORD.finditer(text)]
    if not spans:
        return []
    if _BOUNDARIES.isdisjoint(text) and "\\\"" not in text and "\\'" not in text:
        # Only the first word starts a command and no quote is escaped.
        words: list[tuple[int, int, bool]] = [(start, end, False) for start, end in spans]
        words[0] = (*spans[0], True)
        return words
    words = []
    size = len(text)
    previous_end = 0
    for index, end in spans:
        boundary = not words or not _BOUNDARIES.isdisjoint(text[previous_end:index])
        # An escaped quote (`\"http://...\"`) closes the word before its backslash.
        stop = end - 1 if end < size and text[end] in "\"'" and text[end - 1] == "\\" and end - 1 > index else end
        words.append((index, stop, boundary))
        previous_end = end
    return words


_TOOL_PART = re.compile(r"[\w-]+")  # `\w` is exactly str.isalnum() or '_'


def _tool_family(word: str) -> str | None:
    if "://" in word:
        return None
    lowered = word.lower()
    if lowered in _WHOLE_WORD_TOOLS:
        return _WHOLE_WORD_TOOLS[lowered]
    parts = _TOOL_PART.findall(lowered)
    if _TOOLS.keys().isdisjoint(parts):
        return None
    for part in reversed(parts):
        family = _TOOLS.get(part)
        if family is not None:
            return family
    return None


def _option_kind(word: str) -> str:
    if len(word) < 2 or not word.startswith("-"):
        return "word"
    lowered = word.lower()
    if lowered.split("=", 1)[0].rstrip(":") in _URL_OPTIONS:
        return "url-option"
    if lowered in _BOOL_LONG_OPTIONS:
        return "bool-option"
    if not word.startswith("--") and all(c in _BOOL_SHORT_OPTIONS for c in word[1:]):
        return "bool-option"
    return "option"


# `match_host` results by (value, kind, notes, port): it reads only them and the fixed endpoint tables.
_MATCHES: dict[tuple[str, str, tuple[str, ...], int | None], MetadataHit | None] = {}
MAX_CACHED_MATCHES = 8192


def _match(host: CanonicalHost, port: int | None) -> MetadataHit | None:
    """`match_host`, cached."""
    key = (host.value, host.kind, host.notes, port)
    if key in _MATCHES:
        return _MATCHES[key]
    if len(_MATCHES) >= MAX_CACHED_MATCHES:
        _MATCHES.clear()
    hit = _MATCHES[key] = match_host(host, port)
    return hit


def _literal_ip(host: CanonicalHost) -> bool:
    """An IPv6 literal or a four-part dotted-decimal IPv4 (how addresses are normally written)."""
    if host.kind == "ipv6":
        return True
    return host.kind == "ipv4" and not _NUMBER_NOTES.intersection(host.notes)


_HOST_HINT = re.compile(r"[.:%\[0-9]")


def _may_be_host(piece: str) -> bool:
    """Cheap filter: a literal IP or a metadata name has a dot, colon, digit, '%' or non-ASCII."""
    return not piece.isascii() or _HOST_HINT.search(piece) is not None


def _port_word(word: str) -> int | None:
    digits = word if word.isascii() else unicodedata.normalize("NFKC", word)
    if digits.isascii() and digits.isdigit() and len(digits) <= 5 and int(digits) <= 65535:
        return int(digits)
    return None


# One `_add` of a word's reference: start and end relative to the word, host_raw, host, port, path, form,
# and whether the host is a metadata service there.
_Call = tuple[int, int, str, CanonicalHost, int | None, str, str, bool]
# What a word gives: its references in the order they are recorded, the tool family it names, its option kind.
_WordResult = tuple[tuple[_Call, ...], str | None, str]

# Words already read; what a word gives depends on nothing but the word, the tool before it, `previous`
# (only after a fetch tool, "" otherwise) and `following` (only after nc / telnet, None otherwise). Words
# read with no tool before them are kept by the word alone. Each is cleared when full.
_PLAIN_WORDS: dict[str, _WordResult] = {}
_TOOL_WORDS: dict[tuple[str, str, str, str | None], _WordResult] = {}
MAX_CACHED_WORDS = 16384


def _read_word(word: str, tool: str | None, previous: str, following: str | None) -> _WordResult:
    if len(word) > MAX_CACHED_WORD_CHARS:
        return _read_word_uncached(word, tool, previous, following)
    if tool is None:
        result = _PLAIN_WORDS.get(word)
        if result is None:
            if len(_PLAIN_WORDS) >= MAX_CACHED_WORDS:
                _PLAIN_WORDS.clear()
            result = _PLAIN_WORDS[word] = _read_word_uncached(word, None, previous, following)
        return result
    key = (word, tool, previous, following)
    result = _TOOL_WORDS.get(key)
    if result is None:
        if len(_TOOL_WORDS) >= MAX_CACHED_WORDS:
            _TOOL_WORDS.clear()
        result = _TOOL_WORDS[key] = _read_word_uncached(word, tool, previous, following)
    return result


def _read_word_uncached(word: str, tool: str | None, previous: str, following: str | None) -> _WordResult:
    reader = _WordReader()
    reader.word(0, word, tool, previous, following)
    return tuple(reader.calls), _tool_family(word), _option_kind(word)


class _Scanner:
    """Scans one layer and adds what it finds to the shared result list."""

    def __init__(self, original: str, layer: _Layer, found: list[HostReference],
                 counts: dict[bool, int]) -> None:
        self.original = original
        self.layer = layer
        self.text = layer.text
        self.found = found
        self.counts = counts  # references recorded, by whether they are metadata hits

    def run(self) -> None:
        text = self.text
        words = _words(text)
        count = len(words)
        counts = self.counts
        plain = _PLAIN_WORDS
        tool: str | None = None
        previous = "word"
        for index, (start, end, boundary) in enumerate(words):
            if counts[True] >= MAX_REFERENCES:
                return
            if boundary:
                tool, previous = None, "word"
            word = text[start:end]
            if tool is None:
                result = plain.get(word) or _read_word(word, None, "", None)
            else:
                following = None
                if tool in ("nc", "telnet") and index + 1 < count and not words[index + 1][2]:
                    following = text[words[index + 1][0] : words[index + 1][1]]
                result = _read_word(word, tool, previous if tool in ("fetch", "ps") else "", following)
            calls, family, kind = result
            for call_start, call_end, host_raw, host, port, path, form, metadata in calls:
                self._add(start + call_start, start + call_end, host_raw, host, port, path, form, metadata)
            if family is not None:
                tool, previous = family, "tool"
            else:
                previous = kind

    def _add(self, start: int, end: int, host_raw: str, host: CanonicalHost, port: int | None, path: str,
             form: str, metadata: bool) -> None:
        if self.counts[metadata] >= MAX_REFERENCES:
            return
        first, last = self.layer.span(start, end)
        value = host.value
        for index, known in enumerate(self.found):
            if known.start < last and first < known.end and known.host.value == value and known.port == port:
                # The same reference found again in another layer: keep the one whose span covers more
                # (`&#104;ttp://...` is only whole once decoded).
                if first <= known.start and known.end <= last and (first, last) != (known.start, known.end):
                    self.found[index] = HostReference(self.original[first:last], host_raw, host, port, path,
                                                      first, last, form)
                return
        self.counts[metadata] += 1
        self.found.append(HostReference(self.original[first:last], host_raw, host, port, path, first, last, form))


class _WordReader:
    """Reads the references of one word; records each `_add` as a `_Call` (relative to `start`, here 0)."""

    def __init__(self) -> None:
        self.calls: list[_Call] = []
        self._deferred: list[tuple[int, str]] = []

    def _add(self, start: int, end: int, host_raw: str, host: CanonicalHost, port: int | None, path: str,
             form: str) -> None:
        self.calls.append((start, end, host_raw, host, port, path, form, _match(host, port) is not None))

    # -- one word ---------------------------------------------------------------------------------

    def word(self, start: int, word: str, tool: str | None, previous: str, following: str | None) -> None:
        if self._dev_tcp(start, word):
            return
        if self._urls(start, word, tool):
            return
        if self._socat(start, word):
            return
        if self._candidate(start, word, tool, previous, following):
            return
        self._pieces(start, word)

    def _dev_tcp(self, start: int, word: str) -> bool:
        if "/dev/" not in word:
            return False
        marker = word.find("/dev/tcp/")
        if marker == -1:
            marker = word.find("/dev/udp/")
        if marker == -1:
            return False
        body_start = marker + len("/dev/tcp/")
        slash = word.find("/", body_start)
        host_end = slash if slash != -1 else len(word)
        host_raw = word[body_start:host_end]
        host = canonical_host(host_raw) if 0 < len(host_raw) <= MAX_HOST_CHARS else None
        if host is None:
            return False
        end = host_end
        port = None
        if slash != -1:
            end = slash + 1
            while end < len(word) and word[end].isdigit() and end - slash <= 5:
                end += 1
            port = _port_word(word[slash + 1 : end])
        self._add(start + marker, start + end, host_raw, host, port, "", "dev-tcp")
        return True

    def _urls(self, start: int, word: str, tool: str | None) -> bool:
        form = "powershell" if tool == "ps" else "url"
        recognised = False
        match = _URL_COLON.search(word)
        if match is None:  # no URL, nothing deferred
            return False
        attempts = 0
        while match is not None and attempts < MAX_URLS_PER_WORD:
            colon = match.start()
            scheme_start = colon
            while scheme_start > 0 and colon - scheme_start < 32 and word[scheme_start - 1] in _SCHEME_CHARS:
                scheme_start -= 1
            before = word[max(0, scheme_start - 12) : scheme_start]
            escaped = before[-1:] in ("\\", "%") or (before.endswith(";") and "&#" in before)
            while scheme_start < colon and not word[scheme_start].isalpha():
                scheme_start += 1
                escaped = True
            scheme = word[scheme_start:colon].lower()
            if escaped and word[colon + 1 : colon + 2] in ("/", "\\"):
                recognised = True  # `\u0068ttp://`, `%68ttp://`: read in a decoded layer
            elif len(scheme) >= 2:
                after = colon + 1
                while after < len(word) and word[after] in "/\\":
                    after += 1
                slashes = word[colon + 1 : after]
                attempts += 1
                if scheme in _SPECIAL_SCHEMES:
                    recognised |= self._url(start, word, scheme_start, after, True, not slashes, form)
                elif slashes.startswith("//"):
                    recognised |= self._url(start, word, scheme_start, colon + 3, False, False, form)
            match = _URL_COLON.search(word, colon + 1)
        # Embedded hosts in the paths are looked for once every URL of the word is recorded.
        deferred, self._deferred = self._deferred, []
        for path_start, path in deferred:
            self._pieces(path_start, path)
        return recognised

    def _url(self, start: int, word: str, scheme_start: int, host_start: int, special: bool, no_slash: bool,
             form: str) -> bool:
        size = len(word)
        limit = min(size, host_start + MAX_HOST_CHARS + 1)
        stop = (_SPECIAL_AUTHORITY_END if special else _AUTHORITY_END).search(word, host_start, limit)
        end = stop.start() if stop is not None else max(host_start, limit)
        authority = word[host_start:end]
        if not authority or len(authority) > MAX_HOST_CHARS:
            return False
        host_port = authority[authority.rfind("@") + 1 :]
        split = split_host_port(host_port)
        if split is None:
            split = (host_port.rsplit(":", 1)[0], None)
        host_raw, port = split
        host = canonical_host(host_raw) if host_raw else None
        path = word[end:]
        if host is not None:
            if no_slash and not (_match(host, port) or "." in host_raw or host_raw.startswith("[")):
                return False
            self._add(start + scheme_start, start + size, host_raw, host, port, path, form)
        elif no_slash:
            return False
        if end < size and word[end] in "#?\\":
            self._alternate(start, word, scheme_start, end, host, form)
        self._deferred.append((start + end, path[:MAX_PIECES_CHARS]))
        return True

    def _alternate(self, start: int, word: str, scheme_start: int, end: int, primary: CanonicalHost | None,
                   form: str) -> None:
        """The host a naive parser reads after an '@' hidden behind '#', '?' or '\\' (parser confusion)."""
        region_end = word.find("/", end)
        if region_end == -1:
            region_end = len(word)
        at = word.rfind("@", end, region_end)
        if at == -1:
            return
        alt_end = at + 1
        while alt_end < region_end and word[alt_end] not in "?#\\":
            alt_end += 1
        split = split_host_port(word[at + 1 : alt_end])
        host = canonical_host(split[0]) if split is not None and split[0] else None
        if split is None or host is None or (primary is not None and host.value == primary.value):
            return
        self._add(start + scheme_start, start + len(word), split[0], host, split[1], word[alt_end:], form)

    def _socat(self, start: int, word: str) -> bool:
        if ":" not in word:  # every prefix ends with ':' (and lower() makes no ':')
            return False
        lowered = word.lower()
        if not lowered.startswith(_SOCAT_PREFIXES):
            return False
        prefix = next((p for p in _SOCAT_PREFIXES if lowered.startswith(p)), None)
        if prefix is None:
            return False
        comma = word.find(",")
        end = comma if comma != -1 else len(word)
        split = split_host_port(word[len(prefix) : end], allow_empty_port=False)
        if split is None or split[1] is None or not split[0]:
            return False
        host = canonical_host(split[0])
        if host is None:
            return False
        self._add(start, start + end, split[0], host, split[1], "", "socat")
        return True

    def _candidate(self, start: int, word: str, tool: str | None, previous: str,
                   following: str | None) -> bool:
        """The word (or its value after '=') as `[user@]host[:port][/path]`."""
        offset = 0
        equals = word.find("=")
        if word.startswith("-"):
            if equals == -1:
                return False
            offset = equals + 1
        elif equals != -1:
            path_start = _PATH_START.search(word)
            first_path = path_start.start() if path_start is not None else len(word)
            if equals < first_path:
                offset = equals + 1
        candidate = word[offset:].rstrip(_TRAILING_PUNCTUATION)
        if candidate.startswith("["):
            close = candidate.find("]")
            if close == -1:
                return False
            host_end = close + 1
            if candidate[host_end : host_end + 1] in (":", "\uff1a") and host_end < len(candidate):
                path_start = _PATH_START.search(candidate, host_end + 1)
                host_end = path_start.start() if path_start is not None else len(candidate)
        else:
            path_start = _PATH_START.search(candidate)
            host_end = path_start.start() if path_start is not None else len(candidate)
        if host_end == len(candidate):
            candidate = candidate.rstrip(".")
            host_end = len(candidate)
        authority = candidate[:host_end]
        path = candidate[host_end:]
        host_offset = authority.rfind("@") + 1
        if not authority[host_offset:] or len(authority) > MAX_HOST_CHARS:
            return False
        split = split_host_port(authority[host_offset:], allow_empty_port=False)
        if split is None:
            return False
        host_raw, port = split
        host = canonical_host(host_raw)
        if host is None:
            return False
        hit = _match(host, port)
        url_only = hit is not None and host.kind == "name" and host.value in _URL_ONLY_NAMES
        dotted = host.kind == "ipv4" and "." in host_raw.replace("\u3002", ".").replace("\uff0e", ".")
        if tool == "dns" and port is None:
            port = DNS_PORT
            hit = _match(host, port)
        if tool in ("nc", "telnet"):
            if port is None and following is not None:
                port = _port_word(following)
                hit = _match(host, port)
            accepted = (
                (hit is not None and (not url_only or port is not None))
                or _literal_ip(host)
                or dotted
                or (host.kind == "name" and "." in host.value and port is not None)
            )
            if accepted:
                form = "nc" if tool == "nc" else "telnet"
                self._add(start + offset, start + offset + len(candidate), host_raw, host, port, "", form)
            return accepted
        if tool in ("fetch", "ps"):
            form = "powershell" if tool == "ps" else "scheme-less"
            if hit is not None:
                accepted = not url_only or bool(path) or port is not None or previous in (
                    "tool", "url-option", "bool-option")
            else:
                accepted = _literal_ip(host) or dotted or (
                    host.kind == "name" and ("." in host.value or bool(path) or port is not None)
                    and previous != "option")
        else:
            form = "scheme-less" if path else "bare"
            if hit is not None:
                accepted = not url_only and not (_WRAP_NOTES.intersection(host.notes) and not dotted)
            else:
                accepted = _literal_ip(host)
        if not accepted:
            return False
        self._add(start + offset, start + offset + len(candidate), host_raw, host, port, path, form)
        self._pieces(start + offset + host_end, path[:MAX_PIECES_CHARS])
        return True

    def _pieces(self, start: int, text: str) -> None:
        """Metadata hosts and literal IPs embedded in a path, query or unparsed word (e.g. `/proxy/<ip>/`)."""
        for match in _HINTED_PIECE.finditer(text):  # the pieces without such a character are no hosts
            piece = match.group().rstrip(".")
            if 2 <= len(piece) <= 300:
                calls = _PIECES.get(piece)
                if calls is None:
                    if len(_PIECES) >= MAX_CACHED_PIECES:
                        _PIECES.clear()
                    calls = _PIECES[piece] = _read_piece(piece)
                offset = start + match.start()
                for call_start, call_end, host_raw, host, port, path, form, metadata in calls:
                    self.calls.append((offset + call_start, offset + call_end, host_raw, host, port, path, form,
                                       metadata))

    def _piece(self, start: int, piece: str) -> bool:
        split = split_host_port(piece, allow_empty_port=False)
        if split is None:
            return False
        host_raw, port = split
        host = canonical_host(host_raw)
        if host is None:
            return False
        hit = _match(host, port)
        dotted = host.kind == "ipv4" and "." in host_raw
        if hit is not None:
            wrapped_number = bool(_WRAP_NOTES.intersection(host.notes)) and not dotted
            accepted = host.value not in _URL_ONLY_NAMES and not wrapped_number
        else:
            accepted = _literal_ip(host) and (host.kind == "ipv4" or host_raw.count(":") >= 2)
        if accepted:
            self._add(start, start + len(piece), host_raw, host, port, "", "bare")
        return accepted


# What each piece gives, by piece (relative to its start); cleared when full.
_PIECES: dict[str, tuple[_Call, ...]] = {}
MAX_CACHED_PIECES = 16384


def _read_piece(piece: str) -> tuple[_Call, ...]:
    reader = _WordReader()
    if _may_be_host(piece) and not reader._piece(0, piece) and ":" in piece:
        # The parts between colons, unless there is none: then the one part is the piece, just rejected.
        offset = 0
        for part in piece.split(":"):
            if part:
                reader._piece(offset, part)
            offset += len(part) + 1
    return tuple(reader.calls)


def _layers(text: str) -> list[_Layer]:
    """The original text and its de-obfuscated / decoded versions."""
    base = _Layer(text)
    layers = [base]
    shell = _shell_layer(base)
    if shell is not None:
        layers.append(shell)
        base = shell
    global _depth_reached
    for _ in range(_limits.active().max_decode_depth):
        decoded = _decode_layer(base)
        if decoded is None:
            break
        layers.append(decoded)
        base = decoded
    else:
        if _decode_layer(base) is not None:
            _depth_reached = True  # judged at the depth reached; counted by the caller
    layers.extend(_base64_layers(text))
    return layers


_depth_reached = False  # set by `_layers` when the text could be decoded further than the limit allows


def _deep_extract(text: str) -> tuple[list[HostReference], bool]:
    """`_extract`, and whether the decoding depth limit cut it short."""
    global _depth_reached
    _depth_reached = False
    refs = _extract(text)
    return refs, _depth_reached


def _depth_hit(text: str) -> None:
    depth = _limits.active().max_decode_depth
    _limits.hit("max_decode_depth", detail=f"text still encoded after {depth} decoding rounds, judged as decoded "
                f"so far: {text[:80]!r}")


def extract_host_references(text: str) -> list[HostReference]:
    """Every host reference in `text` (first 64 KiB), ordered by position."""
    text = _limits.cut_text(text, "text")
    if len(text) <= MAX_CACHED_TEXT_CHARS:
        refs, _, deep = _cached_references(text)
        found = list(refs)
    else:
        found, deep = _deep_extract(text)
    if deep:
        _depth_hit(text)
    return found


def find_metadata_references(text: str) -> list[tuple[HostReference, MetadataHit]]:
    """The host references in `text` that are metadata services, with what they hit."""
    text = _limits.cut_text(text, "text")
    if len(text) <= MAX_CACHED_TEXT_CHARS:
        _, hits, deep = _cached_references(text)
        found = list(hits)
    else:
        refs, deep = _deep_extract(text)
        found = _with_hits(refs)
    if deep:
        _depth_hit(text)
    return found


@lru_cache(maxsize=MAX_CACHED_TEXTS)
def _cached_references(text: str) -> tuple[tuple[HostReference, ...], tuple[tuple[HostReference, MetadataHit], ...],
                                           bool]:
    """The references of a short text and those that are metadata hits (the same command line recurs), and
    whether the decoding depth limit cut them short."""
    refs, deep = _deep_extract(text)
    return tuple(refs), tuple(_with_hits(refs)), deep


def _clear_caches() -> None:
    """Other limits are active: results that depend on them are computed again."""
    _cached_references.cache_clear()
    _PLAIN_WORDS.clear()
    _TOOL_WORDS.clear()
    _PIECES.clear()


_limits.on_change(_clear_caches)


def _extract(text: str) -> list[HostReference]:
    found: list[HostReference] = []
    counts = {True: 0, False: 0}
    for layer in _layers(text):
        _Scanner(text, layer, found, counts).run()
    return sorted(found, key=attrgetter("start"))


def _with_hits(refs: Sequence[HostReference]) -> list[tuple[HostReference, MetadataHit]]:
    result: list[tuple[HostReference, MetadataHit]] = []
    for ref in refs:
        hit = _match(ref.host, ref.port)
        if hit is not None:
            result.append((ref, hit))
    return result
