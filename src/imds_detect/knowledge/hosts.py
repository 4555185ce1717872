"""Host canonicalisation (as URL parsers and resolvers read a host) and metadata endpoint matching.

`canonical_host` folds every spelling attackers use to hide an address: inet_aton numbers (1 to 4
parts, octal, hex, overflow), IPv6 forms that embed an IPv4 address, Unicode compatibility
characters, percent-encoding and trailing dots. `metadata_host` then asks `endpoints` whether the
result is a metadata service, directly, by name, or through a wildcard / rebinding DNS name.

Wrap rule (documented choice): a part other than the last that exceeds 255 is reduced modulo 256
(the `425.510.425.510` payload, note "wrapped-part"); the last part is reduced modulo the size of the
field it fills (note "wrapped-mod-2^32" for the one-number form, "wrapped-part" otherwise).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from .. import limits as _limits
from . import endpoints

MAX_HOST_CHARS = 4096
MAX_PART_CHARS = 256

# Code points that UTS #46 (the WHATWG host parser) drops ("ignored"), plus the joiners.
IGNORED_CODEPOINTS: tuple[int, ...] = (
    0x00AD, 0x034F, 0x200B, 0x200C, 0x200D, 0x2060, 0x2064, 0xFEFF,
    *range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0x1BCA0, 0x1BCA4), *range(0xE0100, 0xE01F0),
)
_IGNORED_TABLE: dict[int, None] = dict.fromkeys(IGNORED_CODEPOINTS)
# Full stops that WHATWG/UTS #46 treat as label separators (NFKC folds U+FF0E and U+FF61 to U+3002/.)
UNICODE_DOTS: tuple[int, ...] = (0x3002, 0xFF0E, 0xFF61)
_DOT_TABLE = dict.fromkeys(UNICODE_DOTS, ".")
# Every inet_aton spelling is made of these (`_parse_ipv4` is None for any other text).
_IPV4_CHARS = re.compile(r"[0-9a-fA-FxX.]*")
# Labels of 1-63 characters of a-z, 0-9, '-' and '_' (the '.' between them is not a label character).
_NAME = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")
# RFC 6874 zone ids: unreserved characters ('%' for a percent-encoded zone).
_ZONE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%")
# Generic DNS fact (RFC 6761), not metadata knowledge: these names are the loopback addresses.
_LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class CanonicalHost:
    """A host in canonical text and the decodings that were needed to get there."""

    kind: str  # "ipv4" | "ipv6" | "name"
    value: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetadataHit:
    """A host that is (or resolves to) a metadata service."""

    provider: str
    canonical: str
    via: str  # "address" | "name" | "wildcard-dns" | "rebinding-dns"
    notes: tuple[str, ...]


class _Notes:
    """An ordered set of decoding notes."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, note: str) -> None:
        if note not in self.items:
            self.items.append(note)

    def tuple(self) -> tuple[str, ...]:
        return tuple(self.items)


def _fold_unicode(text: str, notes: _Notes) -> str:
    """Drop ignored code points, apply NFKC, map Unicode full stops to '.'."""
    out = text.translate(_IGNORED_TABLE)
    if out != text:
        notes.add("ignored-chars")
    if out.isascii():
        return out
    if any(ord(c) in _DOT_TABLE for c in out):
        notes.add("unicode-dot")
    folded = unicodedata.normalize("NFKC", out).translate(_DOT_TABLE)
    if folded != out:
        notes.add("unicode-nfkc")
    return folded


def canonical_host(text: str) -> CanonicalHost | None:
    """Canonicalise a host as written in a URL authority or as a bare host; None if not a plausible host."""
    return _canonical_host(text)


@lru_cache(maxsize=16384)
def _canonical_host(text: str) -> CanonicalHost | None:
    s = text.strip()
    if not s or len(s) > MAX_HOST_CHARS:
        return None
    notes = _Notes()
    if s.isascii() and "%" not in s:  # the loop below in short: nothing to decode or fold
        return _parse(s, notes)
    # Percent-decoding works on bytes, as a server does: a UTF-8 sequence may be completed by a later round.
    data = s.encode("utf-8", "surrogatepass")
    rounds = _limits.active().max_decode_depth
    for round_no in range(rounds + 1):
        current = data.decode("utf-8", "replace")
        folded = _fold_unicode(current, notes)
        host = _parse(folded, notes)
        if host is not None:
            return host
        if "%" not in folded or round_no == rounds:
            break
        if "\ufffd" not in current:  # keep the folding (a full-width '％' becomes an escape)
            data = folded.encode("utf-8", "surrogatepass")
        decoded = unquote_to_bytes(data)
        if decoded == data:
            break
        notes.add("percent-decoded")
        data = decoded
    # Last resort: a numeric zone id that looks like a percent escape (`fe80::1%12`, Windows style).
    fallback = _Notes()
    return _parse(_fold_unicode(s, fallback), fallback, hex_zone=True) if "%" in s else None


def _parse(s: str, notes: _Notes, hex_zone: bool = False) -> CanonicalHost | None:
    if s.startswith("["):
        if not s.endswith("]") or len(s) < 3:
            return None
        inner = s[1:-1]
        attempt = _Notes()
        attempt.items = [*notes.items, "bracketed"]
        host = _parse_ipv6(inner, attempt, hex_zone) if ":" in inner else _parse_ipv4_host(inner, attempt)
        if host is not None:
            notes.items = attempt.items
        return host
    if ":" in s:
        return _parse_ipv6(s, notes, hex_zone)
    if "%" in s:
        return None
    body = s
    if body.endswith("."):
        body = body[:-1]
        if not body:
            return None
        trailing = True
    else:
        trailing = False
    value = _parse_ipv4(body, notes) if _IPV4_CHARS.fullmatch(body) else None
    if value is not None:
        if trailing:
            notes.add("trailing-dot")
        return CanonicalHost("ipv4", _ipv4_text(value), notes.tuple())
    name = _parse_name(body, notes)
    if name is None:
        return None
    if trailing:
        notes.add("trailing-dot")
    return CanonicalHost("name", name, notes.tuple())


def _ipv4_text(value: int) -> str:
    """Dotted-decimal text of a 32-bit value (what str(ipaddress.IPv4Address(value)) gives)."""
    return f"{value >> 24}.{value >> 16 & 0xFF}.{value >> 8 & 0xFF}.{value & 0xFF}"


def _parse_ipv4_host(s: str, notes: _Notes) -> CanonicalHost | None:
    """An IPv4 written inside brackets (lenient: not valid in WHATWG, harmless for detection)."""
    value = _parse_ipv4(s[:-1] if s.endswith(".") else s, notes)
    if value is None:
        return None
    return CanonicalHost("ipv4", _ipv4_text(value), notes.tuple())


def _parse_part(part: str, notes: list[str]) -> int | None:
    """One inet_aton part: decimal, octal (leading 0) or hex (0x); None if it is not a number."""
    if not part or len(part) > MAX_PART_CHARS or not part.isascii():
        return None
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        if any(c not in _HEX for c in digits):
            return None
        notes.append("hex")
        if len(digits) > 1 and digits.startswith("0"):
            notes.append("leading-zeros")
        if digits != digits.lower():
            notes.append("upper-case")
        return int(digits, 16) if digits else 0
    if len(part) > 1 and part.startswith("0"):
        if any(c not in _OCT for c in part):
            return None
        notes.append("octal")
        if part.startswith("00"):
            notes.append("leading-zeros")
        return int(part, 8)
    if part.isdigit():
        return int(part)
    return None


def ipv4_value(text: str) -> int | None:
    """The 32-bit value of an ASCII inet_aton spelling (same rules as `canonical_host`), else None."""
    return _parse_ipv4(text, _Notes())


def _parse_ipv4(s: str, notes: _Notes) -> int | None:
    """inet_aton semantics with wrapping; the 32-bit value, or None if `s` is not all-numeric."""
    parts = s.split(".")
    if len(parts) > 4:
        return None
    part_notes: list[str] = []
    values: list[int] = []
    for part in parts:
        value = _parse_part(part, part_notes)
        if value is None:
            return None
        values.append(value)
    count = len(values)
    if count == 1:
        part_notes.append("integer")
    elif count < 4:
        part_notes.append("short-form")
    result = 0
    for index, value in enumerate(values[:-1]):
        if value > 255:
            value %= 256
            part_notes.append("wrapped-part")
        result |= value << (24 - 8 * index)
    last_bits = 8 * (5 - count)
    last = values[-1]
    if last >= 1 << last_bits:
        last %= 1 << last_bits
        part_notes.append("wrapped-mod-2^32" if count == 1 else "wrapped-part")
    for note in part_notes:
        notes.add(note)
    return result | last


def _strict_dotted(s: str) -> int | None:
    """A dotted-decimal IPv4 of four parts (leading zeros read as decimal), as inside IPv6."""
    parts = s.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part or len(part) > 3 or not (part.isascii() and part.isdigit()) or int(part) > 255:
            return None
        value = value << 8 | int(part)
    return value


def _parse_ipv6(s: str, notes: _Notes, hex_zone: bool = False) -> CanonicalHost | None:
    """IPv6 with optional zone (`%25zone`, or `%zone` when not a percent escape); IPv4 embeddings unwrapped."""
    addr_text = s
    zone = ""
    cut = s.find("%")
    if cut != -1:
        addr_text, escape = s[:cut], s[cut + 1 : cut + 3]
        if escape == "25":
            zone = s[cut + 3 :]
        elif len(escape) == 2 and all(c in _HEX for c in escape) and not hex_zone:
            return None  # a percent escape: decode first
        else:
            zone = s[cut + 1 :]
        if not zone or any(c not in _ZONE_CHARS for c in zone) or ("%" in zone and not hex_zone):
            return None
    if not addr_text or len(addr_text) > 64:
        return None
    try:
        address = ipaddress.IPv6Address(addr_text)
    except ValueError:
        head, _, tail = addr_text.rpartition(":")
        embedded = _strict_dotted(tail) if head and "." in tail else None
        if embedded is None:
            return None
        try:
            address = ipaddress.IPv6Address(f"{head}:{embedded >> 16:x}:{embedded & 0xFFFF:x}")
        except ValueError:
            return None
        notes.add("leading-zeros")
    if zone:
        notes.add("zone-id")
    if addr_text != addr_text.lower():
        notes.add("upper-case")
    mapped = address.ipv4_mapped
    if mapped is not None:
        notes.add("ipv4-mapped")
        return CanonicalHost("ipv4", str(mapped), notes.tuple())
    number = int(address)
    if number >> 32 == 0 and number > 1:
        notes.add("ipv4-compatible")
        return CanonicalHost("ipv4", _ipv4_text(number), notes.tuple())
    return CanonicalHost("ipv6", address.compressed, notes.tuple())


def _parse_name(s: str, notes: _Notes) -> str | None:
    """A DNS name, lower-case ASCII (IDNA for Unicode labels); None if not a valid name."""
    name = s.lower()
    idna = not name.isascii()
    if idna:
        try:
            name = name.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    if len(name) > 253:
        return None
    if _NAME.fullmatch(name) is None:
        return None
    if s.lower() != s:
        notes.add("upper-case")
    if idna:
        notes.add("idna")
    return name


def split_host_port(text: str, allow_empty_port: bool = True) -> tuple[str, int | None] | None:
    """Split `host[:port]` / `[v6][:port]`; an unbracketed IPv6 keeps its colons. None if the port is bad."""
    s = text.replace("\uff1a", ":")
    if s.startswith("["):
        close = s.find("]")
        if close == -1:
            return None
        host, rest = text[: close + 1], s[close + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None
        port = _parse_port(rest[1:], allow_empty_port)
        return None if port is False else (host, port)
    colons = s.count(":")
    if colons == 0:
        return text, None
    if colons > 1:
        return text, None
    index = s.index(":")
    port = _parse_port(s[index + 1 :], allow_empty_port)
    if port is False:
        return None
    return text[:index], port


def _parse_port(text: str, allow_empty: bool) -> int | bool | None:
    """A port number, None for an allowed empty port, False when invalid."""
    if not text:
        return None if allow_empty else False
    digits = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 8:
        return False
    port = int(digits)
    return port if port <= 65535 else False


def metadata_host(text: str, port: int | None = None) -> MetadataHit | None:
    """Whether the host `text` (any spelling) on `port` (None = unknown) is a metadata service."""
    host = canonical_host(text)
    if host is None:
        # A Host header or log field may carry "host:port".
        split = split_host_port(text.strip(), allow_empty_port=False) if ":" in text else None
        if split is None or split[1] is None:
            return None
        host = canonical_host(split[0])
        if host is None:
            return None
        port = split[1] if port is None else port
    return match_host(host, port)


def match_host(host: CanonicalHost, port: int | None = None) -> MetadataHit | None:
    """`metadata_host` for an already canonical host."""
    if host.kind != "name":
        return _address_hit(host.value, port, "address", host.notes)
    info = endpoints.name_info(host.value)
    if info is not None:
        served = endpoints.address_info(info.resolves_to)
        if served is not None and not endpoints.is_api_port(served, port):
            return None
        return MetadataHit(info.provider, info.name, "name", host.notes)
    if host.value == "localhost" or host.value.endswith(".localhost"):
        for loopback in _LOOPBACK_IPS:
            hit = _address_hit(loopback, port, "name", host.notes)
            if hit is not None:
                return hit
        return None
    for suffixes, via in ((endpoints.REBINDING_SUFFIXES, "rebinding-dns"),
                          (endpoints.WILDCARD_DNS_SUFFIXES, "wildcard-dns")):
        prefix = _strip_suffix(host.value, suffixes)
        if not prefix:
            continue
        for ip, how in _embedded_ips(prefix):
            hit = _address_hit(ip, port, via, (*host.notes, how))
            if hit is not None:
                return hit
    return None


def _address_hit(ip: str, port: int | None, via: str, notes: tuple[str, ...]) -> MetadataHit | None:
    info = endpoints.address_info(ip)
    if info is None or endpoints.neighbour_of(ip, port) is not None:
        return None
    if not endpoints.is_api_port(info, port):
        return None
    return MetadataHit(info.provider, info.address, via, notes)


def _strip_suffix(name: str, suffixes: tuple[str, ...]) -> str:
    """The labels before a matching suffix ('' if none matches or nothing precedes it)."""
    if not name.endswith(suffixes):  # cheap test first: no suffix ends the name, with or without its dot
        return ""
    for suffix in suffixes:
        if name.endswith("." + suffix):
            return name[: -len(suffix) - 1]
    return ""


def _is_octet(token: str) -> bool:
    return 0 < len(token) <= 3 and token.isdigit() and int(token) <= 255


def _embedded_ips(prefix: str) -> Iterator[tuple[str, str]]:
    """IP addresses embedded in wildcard-DNS labels: dotted, dashed, 8-digit hex, dashed IPv6."""
    tokens = prefix.replace("-", ".").split(".")
    for index in range(len(tokens) - 3):
        window = tokens[index : index + 4]
        if all(_is_octet(t) for t in window):
            how = "embedded-dotted" if ".".join(window) in prefix else "embedded-dashed"
            yield ".".join(str(int(t)) for t in window), how
    for token in tokens:
        if len(token) == 8 and all(c in _HEX for c in token):
            yield str(ipaddress.IPv4Address(int(token, 16))), "embedded-hex"
    for label in prefix.split("."):
        if label.count("-") < 2:
            continue
        for start in range(len(label)):
            if start and label[start - 1] != "-" and label[start] != "-":
                continue
            found = _parse_ipv6(label[start:].replace("-", ":"), _Notes())  # no '%' in a DNS label
            if found is not None:
                yield found.value, "embedded-ipv6"
                break


_limits.on_change(_canonical_host.cache_clear)  # its results depend on max_decode_depth
