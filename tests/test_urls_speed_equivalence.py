"""The fast paths of urls.py / hosts.py against plain reference readings, caches, and linear work.

The references below are the straightforward character-by-character readings that the regular
expressions and lazy span maps of `urls` replace; hypothesis checks that both give the same text and the
same original span for every character. Caches must be invisible, and the work on adversarial inputs
must grow linearly with their length.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imds_detect.knowledge import hosts, urls

# --------------------------------------------------------------------------------------------------
# Reference readings
# --------------------------------------------------------------------------------------------------

_HEX = "0123456789abcdefABCDEF"
Spans = list[tuple[int, int]]


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEX for c in text)


def _reference_escape(text: str, index: int) -> tuple[str, int] | None:
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


def _reference_decode(text: str) -> tuple[str, Spans] | None:
    """One decoding round, a character at a time; each output character with its (first, last) input span."""
    chars: list[str] = []
    spans: Spans = []
    pending: list[int] = []
    pending_spans: Spans = []

    def flush() -> None:
        index = 0
        while index < len(pending):
            lead = pending[index]
            size = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4 if lead < 0xF8 else 1
            chunk = bytes(pending[index : index + size])
            try:
                char = chunk.decode("utf-8") if len(chunk) == size else ""
            except UnicodeDecodeError:
                char = ""
            if not char:
                char, size = chr(lead), 1
            chars.append(char)
            spans.append((pending_spans[index][0], pending_spans[index + size - 1][1]))
            index += size
        pending.clear()
        pending_spans.clear()

    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char == "%" and index + 2 < size and _is_hex(text[index + 1 : index + 3]):
            pending.append(int(text[index + 1 : index + 3], 16))
            pending_spans.append((index, index + 2))
            index += 3
            continue
        if char == "\\" and index + 1 < size:
            if text[index + 1] in "xX" and index + 3 < size and _is_hex(text[index + 2 : index + 4]):
                pending.append(int(text[index + 2 : index + 4], 16))
                pending_spans.append((index, index + 3))
                index += 4
                continue
            octal = text[index + 1 : index + 4]
            if len(octal) == 3 and octal[0] in "0123" and all(c in "01234567" for c in octal):
                pending.append(int(octal, 8))
                pending_spans.append((index, index + 3))
                index += 4
                continue
        flush()
        decoded = _reference_escape(text, index)
        if decoded is not None:
            chars.extend(decoded[0])
            spans.extend([(index, index + decoded[1] - 1)] * len(decoded[0]))
            index += decoded[1]
            continue
        chars.append(char)
        spans.append((index, index))
        index += 1
    flush()
    out = "".join(chars)
    return None if out == text else (out, spans)


def _reference_shell(text: str) -> tuple[str, list[int]] | None:
    kept = [index for index, char in enumerate(text)
            if not (char in "'\"^" and 0 < index < len(text) - 1
                    and not text[index - 1].isspace() and not text[index + 1].isspace())]
    return None if len(kept) == len(text) else ("".join(text[i] for i in kept), kept)


_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


def _reference_base64(text: str) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    attempts = 0
    index, size = 0, len(text)
    while index < size and attempts < urls.MAX_BASE64_ATTEMPTS:
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
            padded = body + "=" * (-len(body) % 4)
            try:
                data = (base64.urlsafe_b64decode(padded) if "-" in body or "_" in body
                        else base64.b64decode(padded, validate=True))
            except (binascii.Error, ValueError):
                data = None
            for encoding in ("utf-16-le", "utf-8") if data is not None and data[1:2] == b"\x00" else ("utf-8",):
                try:
                    decoded = data.decode(encoding) if data is not None else ""
                except UnicodeDecodeError:
                    continue
                if decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
                    found.append((decoded, index, run_end))
                    break
        index = run_end
    return found


_SEPARATORS = frozenset(" \t\r\n\v\f\"'`<>(){}|;&")


def _reference_words(text: str) -> list[tuple[int, int, bool]]:
    words: list[tuple[int, int, bool]] = []
    index, size = 0, len(text)
    boundary = True
    while index < size:
        char = text[index]
        if char in _SEPARATORS or char.isspace():
            if char in "\r\n;|&":
                boundary = True
            index += 1
            continue
        end = index + 1
        while end < size and not (text[end] in _SEPARATORS or text[end].isspace()):
            end += 1
        stop = end - 1 if end < size and text[end] in "\"'" and text[end - 1] == "\\" and end - 1 > index else end
        words.append((index, stop, boundary))
        boundary = False
        index = end
    return words


def _reference_pieces(text: str) -> list[tuple[int, str]]:
    """The (start, piece) runs between delimiters that `_may_be_host` lets through."""
    pieces: list[tuple[int, str]] = []
    index, size = 0, len(text)
    while index < size:
        if text[index] in "/\\=@,;?#&+*!$|":
            index += 1
            continue
        end = index
        while end < size and text[end] not in "/\\=@,;?#&+*!$|":
            end += 1
        piece = text[index:end]
        if not piece.isascii() or any(c in ".:%[" or c.isdigit() for c in piece):
            pieces.append((index, piece))
        index = end
    return pieces


def _reference_urls(reader: urls._WordReader, start: int, word: str, tool: str | None) -> bool:
    """`_WordReader._urls` trying every colon of the word."""
    form = "powershell" if tool == "ps" else "url"
    recognised = False
    colon = word.find(":")
    attempts = 0
    while colon != -1 and attempts < urls.MAX_URLS_PER_WORD:
        scheme_start = colon
        while scheme_start > 0 and colon - scheme_start < 32 and word[scheme_start - 1] in urls._SCHEME_CHARS:
            scheme_start -= 1
        before = word[max(0, scheme_start - 12) : scheme_start]
        escaped = before[-1:] in ("\\", "%") or (before.endswith(";") and "&#" in before)
        while scheme_start < colon and not word[scheme_start].isalpha():
            scheme_start += 1
            escaped = True
        scheme = word[scheme_start:colon].lower()
        if escaped and word[colon + 1 : colon + 2] in ("/", "\\"):
            recognised = True
        elif len(scheme) >= 2:
            after = colon + 1
            while after < len(word) and word[after] in "/\\":
                after += 1
            slashes = word[colon + 1 : after]
            attempts += 1
            if scheme in urls._SPECIAL_SCHEMES:
                recognised |= reader._url(start, word, scheme_start, after, True, not slashes, form)
            elif slashes.startswith("//"):
                recognised |= reader._url(start, word, scheme_start, colon + 3, False, False, form)
        colon = word.find(":", colon + 1)
    deferred, reader._deferred = reader._deferred, []
    for path_start, path in deferred:
        reader._pieces(path_start, path)
    return recognised


def _spans(layer: urls._Layer) -> Spans:
    return [(layer.start_of(i), layer.end_of(i)) for i in range(len(layer.text))]


# --------------------------------------------------------------------------------------------------
# The fast readings give what the references give
# --------------------------------------------------------------------------------------------------

_ESCAPE_ALPHABET = [*"%\\&#;xXuU{}01234567890abcdefABCDEFgz/\\'\" amp", "%2", "%25", "%e2%82%ac", "%ed%a0%80",
                    "%c3", "%f0%9f%98", "\\x4", "\\u00", "\\U0010ffff", "\\U00110000", "\\u{1F600}", "&#x",
                    "&#0;", "&#1114112;", "&#x41;", "&amp;", "é", "\u20ac", "\\\\"]
_texts = st.lists(st.sampled_from(_ESCAPE_ALPHABET), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(text=_texts)
def test_decode_round_matches_the_character_reading(text: str) -> None:
    expected = _reference_decode(text)
    layer = urls._decode_layer(urls._Layer(text))
    if expected is None:
        assert layer is None
        return
    assert layer is not None
    assert layer.text == expected[0]
    assert _spans(layer) == [(first, last + 1) for first, last in expected[1]]


@settings(max_examples=300, deadline=None)
@given(text=_texts)
def test_decode_rounds_compose_spans(text: str) -> None:
    layer = urls._Layer(text)
    spans = [(i, i + 1) for i in range(len(text))]
    for _ in range(urls.MAX_DECODE_ROUNDS):
        expected = _reference_decode(layer.text)
        decoded = urls._decode_layer(layer)
        assert (decoded is None) == (expected is None)
        if decoded is None or expected is None:
            break
        spans = [(spans[first][0], spans[last][1]) for first, last in expected[1]]
        assert decoded.text == expected[0]
        assert _spans(decoded) == spans
        layer = decoded


_SHELL_ALPHABET = [*"ab1.'\"^ \t\n\u3000\x1c", "''", "\"'"]


@settings(max_examples=800, deadline=None)
@given(text=st.lists(st.sampled_from(_SHELL_ALPHABET), max_size=30).map("".join))
def test_shell_layer_matches_the_character_reading(text: str) -> None:
    expected = _reference_shell(text)
    layer = urls._shell_layer(urls._Layer(text))
    if expected is None:
        assert layer is None
        return
    assert layer is not None
    assert layer.text == expected[0]
    assert _spans(layer) == [(i, i + 1) for i in expected[1]]


_WORD_ALPHABET = [*"ab1.:/\\@#?%[]-x0'\"` =&;|<>(){}\r\n\t\v\f\x1c\u2028\u3000é", "\\\"", "\\'"]


@settings(max_examples=1000, deadline=None)
@given(text=st.lists(st.sampled_from(_WORD_ALPHABET), max_size=40).map("".join))
def test_words_match_the_character_reading(text: str) -> None:
    assert urls._words(text) == _reference_words(text)


@settings(max_examples=1000, deadline=None)
@given(text=st.lists(st.sampled_from([*"/\\=@,;?#&+*!$|.:%[ab09xZ-_]é", "\uff0e", "１", "\U0001f600"]),
                     max_size=40).map("".join))
def test_hinted_pieces_are_the_pieces_a_host_can_be(text: str) -> None:
    assert [(m.start(), m.group()) for m in urls._HINTED_PIECE.finditer(text)] == _reference_pieces(text)


_URL_ALPHABET = [*":/\\%;&#@?.1", "http", "gopher", "x", "\\u0068", "%68", "&#104;", "169.254.169.254",
                 "0xa9fea9fe", "[::1]", "user@", ":80"]


@settings(max_examples=1500, deadline=None)
@given(word=st.lists(st.sampled_from(_URL_ALPHABET), max_size=16).map("".join),
       tool=st.sampled_from([None, "ps", "fetch"]))
def test_url_colons_skipped_are_the_ones_without_effect(word: str, tool: str | None) -> None:
    fast, reference = urls._WordReader(), urls._WordReader()
    assert fast._urls(3, word, tool) == _reference_urls(reference, 3, word, tool)
    assert fast.calls == reference.calls


@pytest.mark.parametrize("filler", ["ab.:", "a+:", "a-:", "a1:", "1:", ".:", "a:", "\\:", "%:", "&#1;:", ":"])
def test_url_attempts_cap_counts_the_same_colons(filler: str) -> None:
    for count in (urls.MAX_URLS_PER_WORD - 1, urls.MAX_URLS_PER_WORD):
        word = filler * count + "http://169.254.169.254/x"
        fast, reference = urls._WordReader(), urls._WordReader()
        assert fast._urls(0, word, None) == _reference_urls(reference, 0, word, None)
        assert fast.calls == reference.calls


_B64_ALPHABET = [base64.b64encode(b"http://169.254.169.254/latest").decode(),
                 base64.b64encode("iwr http://169.254.169.254/".encode("utf-16-le")).decode(),
                 base64.urlsafe_b64encode(b"\xfb\xff curl 10.0.0.1 \xfe").decode(), "QUJD", "/usr/lib/x86_64",
                 "aHR0cDovL2EvYmIv", "aHR0cDovL2EvYmI", "-_", "=", "==", " ", "é", "A" * 15, "AAAA", "\x00"]


@settings(max_examples=600, deadline=None)
@given(text=st.lists(st.sampled_from(_B64_ALPHABET), max_size=12).map("".join))
def test_base64_layers_match_the_character_reading(text: str) -> None:
    found = [(layer.text, layer.start_of(0), layer.end_of(0)) for layer in urls._base64_layers(text)]
    assert found == _reference_base64(text)


def test_base64_attempts_stay_capped() -> None:
    tried = " ".join(["/" * 20] * urls.MAX_BASE64_ATTEMPTS)  # runs that decode to no text
    last = base64.b64encode(b"http://169.254.169.254/x").decode()
    assert urls._base64_layers(tried + " " + last) == [] == _reference_base64(tried + " " + last)
    assert [layer.text for layer in urls._base64_layers(tried[20:] + " " + last)] == ["http://169.254.169.254/x"]


@settings(max_examples=1000, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([*"0123456789abcdefxXgz.-_", "A", "Z"]), max_size=20))
def test_host_parsing_shortcuts(text: str) -> None:
    if not hosts._IPV4_CHARS.fullmatch(text):
        assert hosts._parse_ipv4(text, hosts._Notes()) is None
    labels = text.lower().split(".")
    valid = len(text) <= 253 and all(
        label and len(label) <= 63 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-_" for c in label)
        for label in labels)
    assert (hosts._NAME.fullmatch(text.lower()) is not None) == valid


@settings(max_examples=500, deadline=None)
@given(value=st.integers(0, 2**32 - 1))
def test_ipv4_text(value: int) -> None:
    assert hosts._ipv4_text(value) == str(ipaddress.IPv4Address(value))


# --------------------------------------------------------------------------------------------------
# Caches are invisible
# --------------------------------------------------------------------------------------------------


def _clear_caches() -> None:
    urls._PLAIN_WORDS.clear()
    urls._TOOL_WORDS.clear()
    urls._PIECES.clear()
    urls._MATCHES.clear()
    urls._cached_references.cache_clear()
    hosts._canonical_host.cache_clear()


CASES = [
    "curl -s http://169.254.169.254/latest/meta-data/ && nc 169.254.169.254 80",
    "nc 10.0.0.5 4444; telnet metadata 80; dig @169.254.169.254 example.com",
    "Invoke-RestMethod -Uri metadata/computeMetadata/v1/ -Headers @{'Metadata-Flavor'='Google'}",
    "curl --url=169.254.169.254/latest; iwr -UseBasicParsing metadata",
    "GET /fetch?url=http%3A%2F%2F169.254.169.254%2Flatest HTTP/1.1",
    "powershell -enc " + base64.b64encode("iwr http://169.254.169.254/latest".encode("utf-16-le")).decode(),
]


def test_results_do_not_depend_on_the_caches() -> None:
    _clear_caches()
    cold = [(urls.extract_host_references(text), urls.find_metadata_references(text)) for text in CASES]
    warm = [(urls.extract_host_references(text), urls.find_metadata_references(text)) for text in reversed(CASES)]
    assert cold == warm[::-1]
    long_text = " ".join(CASES) + " x" * urls.MAX_CACHED_TEXT_CHARS  # past the text cache
    assert urls.find_metadata_references(long_text) == urls.find_metadata_references(long_text)
    assert [ref.raw for ref, _ in urls.find_metadata_references(long_text)][:2] == [
        "http://169.254.169.254/latest/meta-data/", "169.254.169.254"]


def test_returned_lists_are_fresh() -> None:
    first = urls.find_metadata_references(CASES[0])
    first.clear()
    assert urls.find_metadata_references(CASES[0])
    refs = urls.extract_host_references(CASES[1])
    refs.append(refs[0])
    assert len(urls.extract_host_references(CASES[1])) == len(refs) - 1


def test_word_context_is_part_of_the_cache_key() -> None:
    # The same word read after different tools, options and next words gives different references.
    assert [r.form for r in urls.extract_host_references("nc metadata 80")] == ["nc"]
    assert urls.extract_host_references("echo metadata 80") == []
    assert [r.port for r in urls.extract_host_references("telnet 10.0.0.1 23")] == [23]
    assert [r.port for r in urls.extract_host_references("telnet 10.0.0.1 24")] == [24]
    assert urls.extract_host_references("curl -o metadata https://example.com/")[0].host.value == "example.com"
    assert urls.find_metadata_references("curl -o metadata https://example.com/") == []
    assert urls.find_metadata_references("curl -s metadata")


# --------------------------------------------------------------------------------------------------
# Work grows linearly
# --------------------------------------------------------------------------------------------------


@contextmanager
def _counting(names: list[str]) -> Iterator[Counter[str]]:
    """Count the calls of module functions of urls / hosts (and of _WordReader methods) meanwhile."""
    counts: Counter[str] = Counter()
    saved: list[tuple[object, str, object]] = []

    def wrap(owner: object, name: str) -> None:
        original = getattr(owner, name)

        def counted(*args: object, **kwargs: object) -> object:
            counts[name] += 1
            return original(*args, **kwargs)

        saved.append((owner, name, original))
        setattr(owner, name, counted)

    for name in names:
        owner: object = urls._WordReader if hasattr(urls._WordReader, name) else urls
        wrap(owner, name)
    try:
        yield counts
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


_SOUP = "ab1.:/\\@#?%[]-x0'\" =&;|\uff0e１\u3002"
ADVERSARIAL: list[Callable[[int], str]] = [
    lambda n: ":" * n,
    lambda n: "http:" * (n // 5),
    lambda n: "%25" * (n // 3),
    lambda n: "a'" * (n // 2),
    lambda n: "1." * (n // 2),
    lambda n: "http://a/?u=" * (n // 12),
    lambda n: "\\u0041" * (n // 6),
    lambda n: "a/" * (n // 2),
    lambda n: "a b " * (n // 4),
    lambda n: "1 " * (n // 2),
    lambda n: ("x" * 15 + " ") * (n // 16),
    lambda n: "QUJD" * (n // 4),
    lambda n: "&#" * (n // 2),
    lambda n: "[" * n,
    lambda n: "curl 169.254.169.254/x " * (n // 23),
    lambda n: "".join(_SOUP[(i * 7919) % len(_SOUP)] for i in range(n)),
]
COUNTED = ["_read_word_uncached", "_read_piece", "_decode_layer", "_words", "_piece", "_candidate", "_urls", "_url"]


@pytest.mark.parametrize("make", ADVERSARIAL)
def test_work_on_adversarial_inputs_is_linear(make: Callable[[int], str]) -> None:
    totals = []
    for size in (8192, 32768):
        _clear_caches()
        with _counting(COUNTED) as counts:
            urls._extract(make(size))
        totals.append(sum(counts.values()))
    assert totals[1] <= 4 * totals[0] + 64, totals


@pytest.mark.parametrize("make", ADVERSARIAL)
def test_time_on_adversarial_inputs_is_linear(make: Callable[[int], str]) -> None:
    # Regular expressions do their work out of sight of call counts: time them too (generous bound; quadratic
    # work would take 16 times as long for 4 times the length).
    timings = []
    for size in (16384, 65536):
        text = make(size)
        best = float("inf")
        for _ in range(3):
            _clear_caches()
            start = time.perf_counter()
            urls._extract(text)
            best = min(best, time.perf_counter() - start)
        timings.append(best)
    assert timings[1] <= 10 * timings[0] + 0.05, timings
