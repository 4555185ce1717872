"""Published cloud address ranges, from files the user supplies (never downloaded at run time).

Recognised by content: AWS ``ip-ranges.json`` (``prefixes[].ip_prefix``, ``ipv6_prefixes[].ipv6_prefix``),
Google ``cloud.json`` / ``goog.json`` (``prefixes[].ipv4Prefix`` / ``ipv6Prefix``) and Azure Service Tags
(``values[].properties.addressPrefixes``). Lookups are longest-prefix matches.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["IpRanges", "RangeInfo", "load_ranges"]


@dataclass(frozen=True)
class RangeInfo:
    """Who a published range belongs to."""

    provider: str  # aws | gcp | azure
    service: str = ""
    region: str = ""
    prefix: str = ""

    def describe(self) -> str:
        parts = [part for part in (self.service, self.region) if part]
        return f"{self.provider} {self.prefix}" + (f" ({', '.join(parts)})" if parts else "")


_CACHE_SIZE = 65536
# AWS lists supersets (AMAZON) next to the specific service; the specific one is the better description.
_GENERIC_SERVICES = frozenset(("AMAZON", ""))


@dataclass
class IpRanges:
    """Published ranges of one or more providers."""

    providers: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)
    # family -> prefix length -> network address (int) -> info
    _tables: dict[int, dict[int, dict[int, RangeInfo]]] = field(default_factory=lambda: {4: {}, 6: {}})
    _cache: dict[str, tuple[RangeInfo, ...]] = field(default_factory=dict)

    def covers(self, provider: str) -> bool:
        """Whether ranges of `provider` were loaded (only then can an address be called outside it)."""
        return provider in self.providers

    def add(self, prefix: str, info: RangeInfo) -> None:
        network = ipaddress.ip_network(prefix.strip(), strict=False)
        table = self._tables[network.version].setdefault(network.prefixlen, {})
        key = int(network.network_address)
        known = table.get(key)
        if known is None or (known.service in _GENERIC_SERVICES and info.service not in _GENERIC_SERVICES):
            table[key] = RangeInfo(info.provider, info.service, info.region, str(network))
        self._cache.clear()

    def lookup(self, address: str, provider: str | None = None) -> RangeInfo | None:
        """The most specific published range holding `address` (of `provider` when given)."""
        text = address.strip().strip("[]")
        found = self._cache.get(text)
        if found is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            found = self._cache[text] = self._find(text)
        if provider is None:
            return found[0] if found else None
        return next((info for info in found if info.provider == provider), None)

    def _find(self, address: str) -> tuple[RangeInfo, ...]:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return ()
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        bits = 32 if ip.version == 4 else 128
        value = int(ip)
        tables = self._tables[ip.version]
        found: list[RangeInfo] = []
        for length in sorted(tables, reverse=True):
            info = tables[length].get(value >> (bits - length) << (bits - length) if length else 0)
            if info is not None and all(info.provider != seen.provider for seen in found):
                found.append(info)
        return tuple(found)


def check_regular_file(path: str) -> None:
    """ValueError (one line) unless `path` is a regular file (a FIFO would block, a device never end)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise ValueError(f"{path}: {kind}, not a regular file")


def load_ranges(path: str, into: IpRanges | None = None) -> IpRanges:
    """Load a published-ranges file; raises ValueError with a one-line reason when it is not one."""
    ranges = into if into is not None else IpRanges()
    check_regular_file(path)
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or error}") from None
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON: {error}") from None
    provider, count = _load(data, ranges)
    if provider is None:
        raise ValueError(f"{path}: not an AWS ip-ranges.json, Google cloud.json/goog.json or Azure Service Tags file")
    if count == 0:
        raise ValueError(f"{path}: holds no address prefixes")
    ranges.providers.add(provider)
    ranges.sources.append(path)
    return ranges


def _load(data: Any, ranges: IpRanges) -> tuple[str | None, int]:
    if not isinstance(data, dict):
        return None, 0
    prefixes = data.get("prefixes")
    if isinstance(prefixes, list) and ((prefixes and isinstance(prefixes[0], dict) and "ip_prefix" in prefixes[0])
                                       or "ipv6_prefixes" in data):
        count = _entries(ranges, prefixes, "aws", ("ip_prefix",), "service", "region")
        count += _entries(ranges, data.get("ipv6_prefixes") or [], "aws", ("ipv6_prefix",), "service", "region")
        return "aws", count
    if isinstance(prefixes, list):
        count = _entries(ranges, prefixes, "gcp", ("ipv4Prefix", "ipv6Prefix"), "service", "scope")
        return ("gcp", count) if count else (None, 0)
    values = data.get("values")
    if isinstance(values, list):
        count = 0
        for value in values:
            if not isinstance(value, dict):
                continue
            properties = value.get("properties") or {}
            name = str(value.get("name") or "")
            region = str(properties.get("region") or "")
            for prefix in properties.get("addressPrefixes") or []:
                count += _add(ranges, prefix, RangeInfo("azure", name, region))
        return ("azure", count) if count else (None, 0)
    return None, 0


def _entries(ranges: IpRanges, entries: Any, provider: str, keys: tuple[str, ...], service_key: str,
             region_key: str) -> int:
    count = 0
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        info = RangeInfo(provider, str(entry.get(service_key) or ""), str(entry.get(region_key) or ""))
        for key in keys:
            if key in entry:
                count += _add(ranges, entry[key], info)
    return count


def _add(ranges: IpRanges, prefix: Any, info: RangeInfo) -> int:
    if not isinstance(prefix, str):
        return 0
    try:
        ranges.add(prefix, info)
    except ValueError:
        return 0
    return 1
