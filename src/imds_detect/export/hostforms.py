"""Host spellings a SIEM query can express, enumerated from the knowledge base's metadata addresses.

A SIEM matches strings; it cannot canonicalise a host. What can be listed is listed here: every inet_aton
spelling of each metadata IPv4 address with one to four parts, each part decimal, octal (one leading zero)
or hex (`0x`); IPv4-mapped and IPv4-compatible IPv6 texts; the usual IPv6 texts of the IPv6 addresses;
percent-encoded forms (each character, or only the dots, once or twice). Sigma string matching is
case-insensitive, so one case of each hex spelling is enough.

What cannot be listed (the engine still sees it): extra leading zeros (`00251`, `0x00a9`), values wrapped
modulo 2^32 or 256, Unicode compatibility characters (full-width digits, ideographic full stops), escapes
other than percent-encoding, base64, mixed partial percent-encoding, and hosts held in variables.
"""

from __future__ import annotations

import ipaddress
import itertools
from functools import cache, lru_cache
from typing import Any

from ..knowledge.endpoints import ADDRESSES, ARC_PORT, NAMES, REBINDING_SUFFIXES, WILDCARD_DNS_SUFFIXES

# Short all-decimal spellings (fewer than four parts) are too generic to list as substrings.
MIN_DECIMAL_FORM = 10


def _address_alone(version: int) -> tuple[Any, ...]:
    """The metadata addresses of IP `version` that identify the API on their own."""
    addresses = (ipaddress.ip_address(info.address) for info in ADDRESSES if info.address_alone)
    return tuple(address for address in addresses if address.version == version)


def _address_alone_ipv4() -> tuple[ipaddress.IPv4Address, ...]:
    return _address_alone(4)


def _address_alone_ipv6() -> tuple[ipaddress.IPv6Address, ...]:
    return _address_alone(6)


def metadata_ipv4() -> tuple[str, ...]:
    """Metadata IPv4 addresses that identify the API on their own (dotted decimal)."""
    return tuple(str(a) for a in _address_alone_ipv4())


def metadata_ipv6() -> tuple[str, ...]:
    """Metadata IPv6 addresses that identify the API on their own (compressed)."""
    return tuple(a.compressed for a in _address_alone_ipv6())


def _parts(value: int, count: int) -> list[int]:
    parts = [(value >> (24 - 8 * index)) & 0xFF for index in range(count - 1)]
    parts.append(value & ((1 << (8 * (5 - count))) - 1))
    return parts


def _render(part: int, base: str) -> str:
    if base == "dec":
        return str(part)
    if base == "oct":
        return "0" + format(part, "o") if part else "0"
    return "0x" + format(part, "x")


@cache
def numeric_forms(address: str) -> tuple[str, ...]:
    """Every inet_aton spelling of `address` (1-4 parts; decimal, octal, hex per part), dotted decimal first."""
    value = int(ipaddress.IPv4Address(address))
    forms: list[str] = [address]
    for count in (4, 3, 2, 1):
        parts = _parts(value, count)
        for bases in itertools.product(("dec", "oct", "hex"), repeat=count):
            text = ".".join(_render(part, base) for part, base in zip(parts, bases, strict=True))
            if text in forms or (set(bases) == {"dec"} and len(text) < MIN_DECIMAL_FORM):
                continue  # `192.192` (192.0.0.192 in two parts) would match ordinary text everywhere
            forms.append(text)
    return tuple(forms)


@cache
def ipv6_embeddings(address: str) -> tuple[str, ...]:
    """IPv4-mapped and IPv4-compatible IPv6 texts of an IPv4 address (without brackets)."""
    value = int(ipaddress.IPv4Address(address))
    high, low = f"{value >> 16:x}", f"{value & 0xFFFF:x}"
    forms = []
    for prefix in ("::ffff:", "0:0:0:0:0:ffff:", "0000:0000:0000:0000:0000:ffff:", "::"):
        forms += [prefix + address, f"{prefix}{high}:{low}"]
    return tuple(forms)


@cache
def ipv6_forms(address: str) -> tuple[str, ...]:
    """Common texts of an IPv6 address: compressed, without compression, fully exploded."""
    parsed = ipaddress.IPv6Address(address)
    uncompressed = ":".join(f"{int(group, 16):x}" for group in parsed.exploded.split(":"))
    return tuple(dict.fromkeys((parsed.compressed, uncompressed, parsed.exploded)))


def percent_forms(text: str) -> tuple[str, ...]:
    """Percent-encoded spellings: every character, or only the dots; once and twice."""
    every = "".join(f"%{ord(char):02x}" for char in text)
    dots = text.replace(".", "%2e")
    forms = [every, dots, every.replace("%", "%25"), dots.replace("%", "%25")]
    if ":" in text:
        forms.append(text.replace(":", "%3a"))
    return tuple(dict.fromkeys(f for f in forms if f != text))


@lru_cache(maxsize=1)
def address_values() -> tuple[str, ...]:
    """Machine-written address values (RemoteIP, DestinationIp): standard texts and IPv6 embeddings."""
    values: list[str] = []
    for address in metadata_ipv4():
        values += [address, *ipv6_embeddings(address)]
    for address in metadata_ipv6():
        values += ipv6_forms(address)
    return tuple(dict.fromkeys(values))


def loopback_api_values() -> tuple[str, ...]:
    """Hosts of the loopback-only metadata API (Azure Arc HIMDS), which only its port identifies."""
    hosts = [info.address for info in ADDRESSES if not info.address_alone]
    return tuple(dict.fromkeys(hosts))


def arc_port() -> int:
    return ARC_PORT


@lru_cache(maxsize=1)
def embedded_dns_forms() -> tuple[str, ...]:
    """Wildcard-DNS and rebinding name parts embedding a metadata address: `169-254-169-254.nip.io`, hex."""
    suffixes = sorted(set(WILDCARD_DNS_SUFFIXES) | set(REBINDING_SUFFIXES))
    forms: list[str] = []
    for address in metadata_ipv4():
        hexed = f"{int(ipaddress.IPv4Address(address)):08x}"
        for embedded in (address, address.replace(".", "-"), hexed):
            forms += [f"{embedded}.{suffix}" for suffix in suffixes]
    for v6 in metadata_ipv6():
        forms += [f"{v6.replace(':', '-')}.{suffix}" for suffix in suffixes]
    return tuple(forms)


def dns_suffixes() -> tuple[str, ...]:
    return tuple(sorted(set(WILDCARD_DNS_SUFFIXES) | set(REBINDING_SUFFIXES)))


def embedded_labels() -> tuple[str, ...]:
    """The embedded-address label texts (dotted, dashed, hex; dashed IPv6) looked for in wildcard names."""
    labels: list[str] = []
    for address in metadata_ipv4():
        labels += [address, address.replace(".", "-"), f"{int(ipaddress.IPv4Address(address)):08x}"]
    labels += [v6.replace(":", "-") for v6 in metadata_ipv6()]
    return tuple(labels)


def metadata_names() -> tuple[str, ...]:
    """Metadata DNS names that are names in any text (not the one-label ones)."""
    return tuple(n.name for n in NAMES if not n.url_only)


def url_only_names() -> tuple[str, ...]:
    return tuple(n.name for n in NAMES if n.url_only)


@lru_cache(maxsize=1)
def text_host_values() -> tuple[str, ...]:
    """Substrings of free text (command lines, URLs) that name a metadata host, in every listed spelling."""
    values: list[str] = []
    for address in metadata_ipv4():
        numeric = numeric_forms(address)
        values += numeric
        values += ipv6_embeddings(address)[:-2]  # the '::a.b.c.d' forms are contained in the mapped ones' text
        values += [f"[::{address}]", f"[::{numeric_hex_words(address)}]"]
        values += percent_forms(address)
    for address in metadata_ipv6():
        values += ipv6_forms(address)
        values += percent_forms(address)
    for name in metadata_names():
        values += [name, *percent_forms(name)]
    for name in url_only_names():
        values += [f"://{name}/", f"://{name}:"]
    for host in loopback_api_values():
        bracketed = f"[{host}]" if ":" in host else host
        values.append(f"{bracketed}:{ARC_PORT}")
    values.append(f"localhost:{ARC_PORT}")
    values += embedded_dns_forms()
    return _minimal(values)


def numeric_hex_words(address: str) -> str:
    value = int(ipaddress.IPv4Address(address))
    return f"{value >> 16:x}:{value & 0xFFFF:x}"


def _minimal(values: list[str]) -> tuple[str, ...]:
    """Drop values that contain another value (`contains` of the shorter one already matches), keep order."""
    lowered = list(dict.fromkeys(v.lower() for v in values))
    kept = [v for v in lowered if not any(o != v and o in v for o in lowered)]
    return tuple(kept)


def _is_plain(value: str) -> bool:
    """Whether a text host value is a standard spelling (kept as a substring value, not in the regex)."""
    standard = set(metadata_ipv4()) | set(metadata_ipv6()) | set(metadata_names())
    return any(value == s for s in standard) or value.startswith(("://", "localhost:", "127.0.0.1:", "[::1]:"))


@lru_cache(maxsize=1)
def plain_host_values() -> tuple[str, ...]:
    """Standard spellings of metadata hosts (as substrings)."""
    return tuple(v for v in text_host_values() if _is_plain(v))


@lru_cache(maxsize=1)
def encoded_host_values() -> tuple[str, ...]:
    """Encoded spellings (numeric, IPv6-embedded, percent-encoded, wildcard DNS), listed for one regex."""
    return tuple(v for v in text_host_values() if not _is_plain(v))


def encoded_host_regex() -> str:
    """One regular expression (no inline flags; match case-insensitively) for every encoded spelling."""
    from .globs import regex_escape

    return "|".join(regex_escape(v) for v in encoded_host_values())
