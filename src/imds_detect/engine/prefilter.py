"""A raw-bytes prefilter derived from the knowledge base: only lines that could alert are parsed.

The literal set is generated from the endpoints, names, paths, variables and agents of the knowledge
base, plus markers for every encoding class the canonicaliser decodes (percent signs, escapes, `0x`,
non-ASCII bytes, runs of ten or more digits for whole-number and wrapped IPv4 forms, the first-part
prefixes of dotted forms, IPv6 hex words). Matching is case-insensitive. Hyperscan is used when it is
installed; otherwise a pure-Python path does the same with `bytes.find`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ..knowledge.agents import distinctive_agent_names
from ..knowledge.endpoints import (
    ADDRESSES,
    ARC_PORT,
    NAMES,
    REBINDING_SUFFIXES,
    WILDCARD_DNS_SUFFIXES,
)
from ..knowledge.paths import CREDENTIAL_VARIABLES, specific_markers

ENCODING_MARKERS = ("%", "\\u", "\\x", "0x", "ffff:", "&#")
INSPECTED_ACTIONS = ("httpconnectioninspected", "dnsconnectioninspected")
DIGIT_RUN = 10
_DIGITS_TO_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))


def _ipv4_prefixes(address: ipaddress.IPv4Address) -> set[str]:
    """Literals that every dotted (2-4 part) spelling of the address contains, whatever the radix."""
    first, second, third, fourth = address.packed
    seconds = (second, (second << 8) | third, (second << 16) | (third << 8) | fourth)
    prefixes: set[str] = set()
    for head in (str(first), "0" + format(first, "o")):
        for value in seconds:
            for form in (str(value), "0" + format(value, "o"), "0x"):
                prefixes.add(f"{head}.{form[0]}")
    words = int(address) >> 16, int(address) & 0xFFFF
    prefixes.add(f":{words[0]:x}:")
    return prefixes


@lru_cache(maxsize=1)
def literal_needles() -> tuple[str, ...]:
    """Every lower-case literal the prefilter looks for."""
    needles: set[str] = set(ENCODING_MARKERS) | set(INSPECTED_ACTIONS)
    for info in ADDRESSES:
        address = ipaddress.ip_address(info.address)
        needles.add(info.address)
        if isinstance(address, ipaddress.IPv4Address):
            if info.address_alone:
                needles |= _ipv4_prefixes(address)
        else:
            needles.add(address.exploded.split(":")[0] + ":")
    needles.add(str(ARC_PORT))
    needles |= {name.name for name in NAMES}
    needles |= set(WILDCARD_DNS_SUFFIXES) | set(REBINDING_SUFFIXES)
    for marker in specific_markers():
        core = marker.strip("/")
        needles |= {core, core.replace("/", "\\"), core.replace("/", "\\\\")}
    needles |= set(CREDENTIAL_VARIABLES)
    needles |= {name.removesuffix(".exe") for name in distinctive_agent_names()}
    return tuple(sorted(_minimal(needles)))


def _minimal(needles: Iterable[str]) -> set[str]:
    """Drop needles that contain a shorter needle: the shorter one already selects those lines."""
    ordered = sorted(set(needles), key=len)
    kept: list[str] = []
    for needle in ordered:
        if not any(shorter in needle for shorter in kept):
            kept.append(needle)
    return set(kept)


class Prefilter:
    """Finds the lines of a block of bytes that could carry a metadata indicator."""

    def __init__(self, use_hyperscan: bool = True) -> None:
        self.needles = tuple(n.encode() for n in literal_needles())
        self._lowered_needles = self.needles
        self._database: Any = _hyperscan_database(self.needles) if use_hyperscan else None
        self.engine = "hyperscan" if self._database is not None else "python"

    def candidate_lines(self, block: bytes) -> list[tuple[int, int]]:
        """(start, end) of every candidate line in `block` (end excludes the newline), in order."""
        offsets = self._hits_hyperscan(block) if self._database is not None else self._hits_python(block)
        return _line_spans(block, offsets)

    def _hits_hyperscan(self, block: bytes) -> list[int]:
        hits: list[int] = []

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            hits.append(end - 1)

        self._database.scan(block, match_event_handler=on_match)
        return hits

    def _hits_python(self, block: bytes) -> list[int]:
        lowered = block.lower()
        hits: list[int] = []
        for needle in self._lowered_needles:
            _find_all(lowered, needle, hits)
        if not block.isascii():
            hits.extend(i for i, byte in enumerate(block) if byte >= 0x80)
        _find_all(block.translate(_DIGITS_TO_ZERO), b"0" * DIGIT_RUN, hits)
        return hits


def _find_all(haystack: bytes, needle: bytes, hits: list[int]) -> None:
    """Append one offset per line holding `needle` (jumping to the next line after each hit)."""
    position = haystack.find(needle)
    while position != -1:
        hits.append(position)
        line_end = haystack.find(b"\n", position)
        if line_end == -1:
            return
        position = haystack.find(needle, line_end + 1)


def _line_spans(block: bytes, offsets: list[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    current_end = -1
    for offset in sorted(offsets):
        if offset <= current_end:
            continue
        start = block.rfind(b"\n", 0, offset) + 1
        end = block.find(b"\n", offset)
        if end == -1:
            end = len(block)
        spans.append((start, end))
        current_end = end
    return spans


def _hyperscan_database(needles: tuple[bytes, ...]) -> Any:
    try:
        import hyperscan
    except ImportError:
        return None
    patterns = [_hs_literal(n) for n in needles]
    patterns += [rb"[\x80-\xff]", b"[0-9]{%d}" % DIGIT_RUN]
    database = hyperscan.Database()
    flags = [hyperscan.HS_FLAG_CASELESS] * len(needles) + [0, 0]
    database.compile(expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns), flags=flags)
    return database


def _hs_literal(needle: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in needle)
