"""Find host references in free text: URLs, fetch-tool arguments, /dev/tcp, nc, socat, telnet, PowerShell.

The text is split into words by a hand-written scanner (no backtracking regular expressions). Each
word is tried, in order, as a /dev/tcp path, as one or more URLs (WHATWG-style: special schemes skip
any run of slashes and backslashes, the last '@' ends the userinfo, '#', '?' and '\\' end the
authority), as a socat address and as a scheme-less `host[:port][/path]`. Words are also read again
after shell de-obfuscation (glued quotes, carets), after up to four rounds of percent / backslash /
HTML-entity decoding and, for base64 runs, after base64 decoding; a reference found in a decoded
layer is reported at the span of the original text it was decoded from (`raw`), with `host_raw` and
`path` as they read once decoded.

What counts as a host outside a URL: in running text only literal addresses (dotted quad, IPv6) and
metadata hosts (a wrapped number such as 7147006462 only when a fetch tool names it); after a fetch
tool (curl, wget, PowerShell web cmdlets, .NET web classes) also other dotted names and numeric forms;
after nc / telnet the host followed by its port; after a DNS tool (dig, nslookup) the address is a
resolver and gets port 53. A one-label metadata name (`metadata`) counts only as a URL authority or
as the host argument of a fetch form, never as a word. Work is bounded: the first 64 KiB of text,
4 decoding rounds, 64 base64 runs, 32 URLs per word, 512 metadata and 512 other references.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from . import endpoints
from .hosts import CanonicalHost, MetadataHit, canonical_host, match_host, split_host_port

MAX_TEXT_CHARS = 65536
MAX_DECODE_ROUNDS = 4
MAX_REFERENCES = 512  # of metadata references, and separately of other references
MAX_BASE64_ATTEMPTS = 64
MAX_HOST_CHARS = 1024
MAX_URLS_PER_WORD = 32
MAX_PIECES_CHARS = 4096  # of one path / word searched for embedded hosts


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


_SEPARATORS = frozenset(" \t\r\n\v\f\"'`<>(){}|;&")
_BOUNDARIES = frozenset("\r\n;|&")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_PATH_STARTS = frozenset("/?#\uff0f\uff1f\uff03")
_PIECE_DELIMITERS = frozenset("/\\=@,;?#&+*!$|")
_TRAILING_PUNCTUATION = ",;!?"
_HEX = frozenset("0123456789abcdefABCDEF")
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
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
    """A version of the text and, per character, the span of the original text it came from."""

    def __init__(self, text: str, starts: list[int] | None = None, ends: list[int] | None = None) -> None:
        self.text = text
        self.starts = starts
        self.ends = ends

    def start_of(self, index: int) -> int:
        return index if self.starts is None else self.starts[index]

    def end_of(self, index: int) -> int:
        return index + 1 if self.ends is None else self.ends[index]

    def span(self, start: int, end: int) -> tuple[int, int]:
        if end <= start:
            return self.start_of(start), self.start_of(start)
        return self.start_of(start), self.end_of(end - 1)


class _Builder:
    """Collects characters of a new layer with their original spans."""

    def __init__(self, source: _Layer) -> None:
        self.source = source
        self.chars: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, text: str, first: int, last: int) -> None:
        """Append `text` decoded from source characters first..last (inclusive)."""
        start, end = self.source.start_of(first), self.source.end_of(last)
        for char in text:
            self.chars.append(char)
            self.starts.append(start)
            self.ends.append(end)

    def add_bytes(self, data: list[int], spans: list[tuple[int, int]]) -> None:
        """Append bytes decoded as UTF-8 where valid, Latin-1 otherwise."""
        index = 0
        while index < len(data):
            lead = data[index]
            size = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4 if lead < 0xF8 else 1
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
        return _Layer("".join(self.chars), self.starts, self.ends)


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEX for c in text)


def _decode_layer(source: _Layer) -> _Layer | None:
    """One round of percent, backslash-escape and numeric HTML-entity decoding; None if nothing changed."""
    text = source.text
    if "%" not in text and "\\" not in text and "&" not in text:
        return None
    out = _Builder(source)
    pending: list[int] = []
    spans: list[tuple[int, int]] = []
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char == "%" and index + 2 < size and _is_hex(text[index + 1 : index + 3]):
            pending.append(int(text[index + 1 : index + 3], 16))
            spans.append((index, index + 2))
            index += 3
            continue
        if char == "\\" and index + 1 < size:
            nxt = text[index + 1]
            if nxt in "xX" and index + 3 < size and _is_hex(text[index + 2 : index + 4]):
                pending.append(int(text[index + 2 : index + 4], 16))
                spans.append((index, index + 3))
                index += 4
                continue
            octal = text[index + 1 : index + 4]
            if len(octal) == 3 and octal[0] in "0123" and all(c in "01234567" for c in octal):
                pending.append(int(text[index + 1 : index + 4], 8))
                spans.append((index, index + 3))
                index += 4
                continue
        out.add_bytes(pending, spans)
        decoded = _decode_escape(text, index)
        if decoded is not None:
            value, length = decoded
            out.add(value, index, index + length - 1)
            index += length
            continue
        out.add(char, index, index)
        index += 1
    out.add_bytes(pending, spans)
    layer = out.layer()
    return layer if layer.text != text else None


def _decode_escape(text: str, index: int) -> tuple[str, int] | None:
    """A non-byte escape at `index`: \\uXXXX, \\u{X..}, \\UXXXXXXXX, \\/, \\\\, &#N; &#xH; &amp;."""
    char = text[index]
    if char == "\\" and index + 1 < len(text):
        nxt = text[index + 1]
        if nxt in "/\\":
            return nxt, 2
        if nxt == "u" and text[index + 2 : index + 3] == "{":
            close = text.find("}", index + 3, index + 11)
            digits = text[index + 3 : close] if close != -1 else ""
            if _is_hex(digits) and int(digits, 16) <= 0x10FFFF:
                return chr(int(digits, 16)), close - index + 1
            return None
        width = 4 if nxt == "u" else 8 if nxt == "U" else 0
        digits = text[index + 2 : index + 2 + width]
        if width and len(digits) == width and _is_hex(digits) and int(digits, 16) <= 0x10FFFF:
            return chr(int(digits, 16)), width + 2
        return None
    if char == "&":
        if text.startswith("&amp;", index):
            return "&", 5
        if text[index + 1 : index + 2] != "#":
            return None
        close = text.find(";", index + 2, index + 12)
        if close == -1:
            return None
        body = text[index + 2 : close]
        if body[:1] in ("x", "X") and _is_hex(body[1:]):
            value = int(body[1:], 16)
        elif body.isascii() and body.isdigit():
            value = int(body)
        else:
            return None
        return (chr(value), close - index + 1) if 0 < value <= 0x10FFFF else None
    return None


def _shell_layer(source: _Layer) -> _Layer | None:
    """Drop quotes glued inside a word (`169.254.'169'.254`) and cmd.exe carets; None if nothing changed."""
    text = source.text
    if "'" not in text and '"' not in text and "^" not in text:
        return None
    out = _Builder(source)
    changed = False
    last = len(text) - 1
    for index, char in enumerate(text):
        glued = 0 < index < last and not text[index - 1].isspace() and not text[index + 1].isspace()
        if char in "'\"^" and glued:
            changed = True
            continue
        out.add(char, index, index)
    return out.layer() if changed else None


def _base64_layers(text: str) -> list[_Layer]:
    """Printable text hidden in base64 runs (UTF-8 or UTF-16LE as in PowerShell -EncodedCommand)."""
    layers: list[_Layer] = []
    attempts = 0
    index, size = 0, len(text)
    while index < size and attempts < MAX_BASE64_ATTEMPTS:
        if text[index] not in _BASE64_CHARS:
            index += 1
            continue
        end = index
        while end < size and text[end] in _BASE64_CHARS:
            end += 1
        run_end = end
        while run_end < size and run_end - end < 2 and text[run_end] == "=":
            run_end += 1
        body = text[index:end]
        if 16 <= len(body) <= 16384 and len(body) % 4 != 1:
            attempts += 1
            decoded = _decode_base64(body)
            if decoded is not None:
                layers.append(_Layer(decoded, [index] * len(decoded), [run_end] * len(decoded)))
        index = run_end
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
        if decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
            return decoded
    return None


def _words(text: str) -> list[tuple[int, int, bool]]:
    """Words (start, end, starts-a-new-command) split at whitespace, quotes and shell punctuation."""
    words: list[tuple[int, int, bool]] = []
    index, size = 0, len(text)
    boundary = True
    while index < size:
        char = text[index]
        if char in _SEPARATORS or char.isspace():
            if char in _BOUNDARIES:
                boundary = True
            index += 1
            continue
        end = index + 1
        while end < size and not (text[end] in _SEPARATORS or text[end].isspace()):
            end += 1
        # An escaped quote (`\"http://...\"`) closes the word before its backslash.
        stop = end - 1 if end < size and text[end] in "\"'" and text[end - 1] == "\\" and end - 1 > index else end
        words.append((index, stop, boundary))
        boundary = False
        index = end
    return words


def _tool_family(word: str) -> str | None:
    if "://" in word:
        return None
    lowered = word.lower()
    if lowered in _WHOLE_WORD_TOOLS:
        return _WHOLE_WORD_TOOLS[lowered]
    parts: list[str] = []
    current: list[str] = []
    for char in lowered:
        if char.isalnum() or char in "-_":
            current.append(char)
        elif current:
            parts.append("".join(current))
            current = []
    if current:
        parts.append("".join(current))
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


def _literal_ip(host: CanonicalHost) -> bool:
    """An IPv6 literal or a four-part dotted-decimal IPv4 (how addresses are normally written)."""
    if host.kind == "ipv6":
        return True
    return host.kind == "ipv4" and not _NUMBER_NOTES.intersection(host.notes)


def _may_be_host(piece: str) -> bool:
    """Cheap filter: a literal IP or a metadata name has a dot, colon, digit, '%' or non-ASCII."""
    return not piece.isascii() or any(c in ".:%[" or c.isdigit() for c in piece)


def _port_word(word: str) -> int | None:
    digits = word if word.isascii() else unicodedata.normalize("NFKC", word)
    if digits.isascii() and digits.isdigit() and len(digits) <= 5 and int(digits) <= 65535:
        return int(digits)
    return None


class _Scanner:
    """Scans one layer and adds what it finds to the shared result list."""

    def __init__(self, original: str, layer: _Layer, found: list[HostReference],
                 counts: dict[bool, int]) -> None:
        self.original = original
        self.layer = layer
        self.text = layer.text
        self.found = found
        self.counts = counts  # references recorded, by whether they are metadata hits
        self._deferred: list[tuple[int, str]] = []

    def run(self) -> None:
        words = _words(self.text)
        tool: str | None = None
        previous = "word"
        for index, (start, end, boundary) in enumerate(words):
            if self.counts[True] >= MAX_REFERENCES:
                return
            if boundary:
                tool, previous = None, "word"
            word = self.text[start:end]
            following = None
            if index + 1 < len(words) and not words[index + 1][2]:
                following = self.text[words[index + 1][0] : words[index + 1][1]]
            self._word(start, word, tool, previous, following)
            family = _tool_family(word)
            if family is not None:
                tool, previous = family, "tool"
            else:
                previous = _option_kind(word)

    # -- recording --------------------------------------------------------------------------------

    def _add(self, start: int, end: int, host_raw: str, host: CanonicalHost, port: int | None, path: str,
             form: str) -> None:
        metadata = match_host(host, port) is not None
        if self.counts[metadata] >= MAX_REFERENCES:
            return
        first, last = self.layer.span(start, end)
        raw = self.original[first:last]
        ref = HostReference(raw, host_raw, host, port, path, first, last, form)
        for index, known in enumerate(self.found):
            overlaps = known.start < last and first < known.end
            if overlaps and known.host.value == host.value and known.port == port:
                # The same reference found again in another layer: keep the one whose span covers more
                # (`&#104;ttp://...` is only whole once decoded).
                if first <= known.start and known.end <= last and (first, last) != (known.start, known.end):
                    self.found[index] = ref
                return
        self.counts[metadata] += 1
        self.found.append(ref)

    # -- one word ---------------------------------------------------------------------------------

    def _word(self, start: int, word: str, tool: str | None, previous: str, following: str | None) -> None:
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
        colon = word.find(":")
        attempts = 0
        while colon != -1 and attempts < MAX_URLS_PER_WORD:
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
            colon = word.find(":", colon + 1)
        # Embedded hosts in the paths are looked for once every URL of the word is recorded.
        deferred, self._deferred = self._deferred, []
        for path_start, path in deferred:
            self._pieces(path_start, path)
        return recognised

    def _url(self, start: int, word: str, scheme_start: int, host_start: int, special: bool, no_slash: bool,
             form: str) -> bool:
        size = len(word)
        terminators = "/\\?#" if special else "/?#"
        end = host_start
        limit = min(size, host_start + MAX_HOST_CHARS + 1)
        while end < limit and word[end] not in terminators:
            end += 1
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
            if no_slash and not (match_host(host, port) or "." in host_raw or host_raw.startswith("[")):
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
        lowered = word.lower()
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
            first_path = min((i for i, c in enumerate(word) if c in _PATH_STARTS), default=len(word))
            if equals < first_path:
                offset = equals + 1
        candidate = word[offset:].rstrip(_TRAILING_PUNCTUATION)
        if candidate.startswith("["):
            close = candidate.find("]")
            if close == -1:
                return False
            host_end = close + 1
            if candidate[host_end : host_end + 1] in (":", "\uff1a") and host_end < len(candidate):
                host_end += 1
                while host_end < len(candidate) and candidate[host_end] not in _PATH_STARTS:
                    host_end += 1
        else:
            host_end = next((i for i, c in enumerate(candidate) if c in _PATH_STARTS), len(candidate))
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
        hit = match_host(host, port)
        url_only = hit is not None and host.kind == "name" and host.value in _URL_ONLY_NAMES
        dotted = host.kind == "ipv4" and "." in host_raw.replace("\u3002", ".").replace("\uff0e", ".")
        if tool == "dns" and port is None:
            port = DNS_PORT
            hit = match_host(host, port)
        if tool in ("nc", "telnet"):
            if port is None and following is not None:
                port = _port_word(following)
                hit = match_host(host, port)
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
        index, size = 0, len(text)
        while index < size:
            if text[index] in _PIECE_DELIMITERS:
                index += 1
                continue
            end = index + 1
            while end < size and text[end] not in _PIECE_DELIMITERS:
                end += 1
            piece = text[index:end].rstrip(".")
            if 2 <= len(piece) <= 300 and _may_be_host(piece) and not self._piece(start + index, piece):
                offset = 0
                for part in piece.split(":"):
                    if part:
                        self._piece(start + index + offset, part)
                    offset += len(part) + 1
            index = end

    def _piece(self, start: int, piece: str) -> bool:
        split = split_host_port(piece, allow_empty_port=False)
        if split is None:
            return False
        host_raw, port = split
        host = canonical_host(host_raw)
        if host is None:
            return False
        hit = match_host(host, port)
        dotted = host.kind == "ipv4" and "." in host_raw
        if hit is not None:
            wrapped_number = bool(_WRAP_NOTES.intersection(host.notes)) and not dotted
            accepted = host.value not in _URL_ONLY_NAMES and not wrapped_number
        else:
            accepted = _literal_ip(host) and (host.kind == "ipv4" or host_raw.count(":") >= 2)
        if accepted:
            self._add(start, start + len(piece), host_raw, host, port, "", "bare")
        return accepted


def _layers(text: str) -> list[_Layer]:
    """The original text and its de-obfuscated / decoded versions."""
    base = _Layer(text)
    layers = [base]
    shell = _shell_layer(base)
    if shell is not None:
        layers.append(shell)
        base = shell
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = _decode_layer(base)
        if decoded is None:
            break
        layers.append(decoded)
        base = decoded
    layers.extend(_base64_layers(text))
    return layers


def extract_host_references(text: str) -> list[HostReference]:
    """Every host reference in `text` (first 64 KiB), ordered by position."""
    text = text[:MAX_TEXT_CHARS]
    found: list[HostReference] = []
    counts = {True: 0, False: 0}
    for layer in _layers(text):
        _Scanner(text, layer, found, counts).run()
    return sorted(found, key=lambda ref: ref.start)


def find_metadata_references(text: str) -> list[tuple[HostReference, MetadataHit]]:
    """The host references in `text` that are metadata services, with what they hit."""
    return _with_hits(extract_host_references(text))


def _with_hits(refs: Sequence[HostReference]) -> list[tuple[HostReference, MetadataHit]]:
    result: list[tuple[HostReference, MetadataHit]] = []
    for ref in refs:
        hit = match_host(ref.host, ref.port)
        if hit is not None:
            result.append((ref, hit))
    return result
