"""The formats imds-detect reads, and content-based format detection."""

from __future__ import annotations

from .auditd import AUDITD_ADAPTER
from .base import SourceAdapter
from .mde import MDE_ADAPTER
from .parquet import PARQUET_ADAPTER
from .sysmon import SYSMON_ADAPTER
from .winsec import WINSEC_ADAPTER

# Specific formats first: Parquet by its magic, Sysmon and Security logs by their provider, Defender by its columns.
ADAPTERS: tuple[SourceAdapter, ...] = (PARQUET_ADAPTER, SYSMON_ADAPTER, WINSEC_ADAPTER, MDE_ADAPTER, AUDITD_ADAPTER)
BY_NAME: dict[str, SourceAdapter] = {adapter.name: adapter for adapter in ADAPTERS}


def format_names() -> tuple[str, ...]:
    """Values accepted by --format besides 'auto'."""
    return tuple(BY_NAME)


def detect_format(head: bytes) -> SourceAdapter | None:
    """The adapter that recognises a file from its first bytes (decompressed), if any."""
    for adapter in ADAPTERS:
        if adapter.sniff(head):
            return adapter
    return None
