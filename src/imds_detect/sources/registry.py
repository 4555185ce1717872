"""The formats imds-detect reads, and content-based format detection."""

from __future__ import annotations

from .access import ACCESS_ADAPTER
from .auditd import AUDITD_ADAPTER
from .awslb import AWS_LB_ADAPTER
from .azure_logs import AZURE_ADAPTER
from .base import SourceAdapter
from .cloudtrail import CLOUDTRAIL_ADAPTER
from .gcp_audit import GCP_AUDIT_ADAPTER
from .iis import IIS_ADAPTER
from .jsonweb import AZURE_WEB_ADAPTER, JSON_WEB_ADAPTER
from .mde import MDE_ADAPTER
from .parquet import PARQUET_ADAPTER
from .squid import SQUID_ADAPTER
from .sysmon import SYSMON_ADAPTER
from .winsec import WINSEC_ADAPTER
from .zeek import ZEEK_ADAPTER

# Specific formats first: Parquet by its magic, Sysmon and Security logs by their provider, Defender by its columns.
# Cloud logs (CloudTrail, GCP audit, Azure) by their own keys, before Defender's JSON.
ADAPTERS: tuple[SourceAdapter, ...] = (PARQUET_ADAPTER, SYSMON_ADAPTER, WINSEC_ADAPTER, CLOUDTRAIL_ADAPTER,
                                       GCP_AUDIT_ADAPTER, AZURE_ADAPTER, MDE_ADAPTER, AUDITD_ADAPTER,
                                       # Web, proxy and network logs: headers and JSON keys first, then line shapes.
                                       ZEEK_ADAPTER, AZURE_WEB_ADAPTER, IIS_ADAPTER, AWS_LB_ADAPTER, SQUID_ADAPTER,
                                       ACCESS_ADAPTER, JSON_WEB_ADAPTER)
BY_NAME: dict[str, SourceAdapter] = {adapter.name: adapter for adapter in ADAPTERS}


def register(adapter: SourceAdapter) -> SourceAdapter | None:
    """Use `adapter` for its format name from now on, in place of the built-in one (an access-log adapter with
    a custom LogFormat, a JSON web adapter with other field names): `--format NAME` and auto-detection pick
    it. Returns the adapter it replaced, if any. Process-wide (worker processes forked later inherit it)."""
    global ADAPTERS
    previous = BY_NAME.get(adapter.name)
    BY_NAME[adapter.name] = adapter
    if previous is None:
        ADAPTERS = (*ADAPTERS, adapter)
    else:
        ADAPTERS = tuple(adapter if known.name == adapter.name else known for known in ADAPTERS)
    return previous


def format_names() -> tuple[str, ...]:
    """Values accepted by --format besides 'auto'."""
    return tuple(BY_NAME)


def detect_format(head: bytes) -> SourceAdapter | None:
    """The adapter that recognises a file from its first bytes (decompressed), if any."""
    for adapter in ADAPTERS:
        if adapter.sniff(head):
            return adapter
    return None
