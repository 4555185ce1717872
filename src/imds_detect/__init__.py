"""imds-detect: detect cloud instance metadata API abuse (MITRE ATT&CK T1552.005).

Library use::

    from imds_detect import scan, ScanOptions
    result = scan(["exports/"], ScanOptions(min_severity=Severity.MEDIUM))
    for alert in result.alerts:
        print(alert.as_dict())
"""

from .config import ConfigError, load_config
from .engine.scan import ScanOptions, ScanResult, scan, scan_events, scan_records
from .model import Alert, Endpoint, Event, EventKind, ProcessInfo, Severity, SourceRef

__all__ = [
    "Alert",
    "ConfigError",
    "Endpoint",
    "Event",
    "EventKind",
    "ProcessInfo",
    "ScanOptions",
    "ScanResult",
    "Severity",
    "SourceRef",
    "load_config",
    "scan",
    "scan_events",
    "scan_records",
]
