"""Cloud-side settings: published ranges, the user's inventory and the correlation window."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from .inventory import Inventory
from .ipranges import IpRanges

DEFAULT_WINDOW = timedelta(hours=6)  # instance-profile credentials from IMDS live up to about six hours
CLOCK_SKEW = timedelta(minutes=5)  # a cloud call may be logged slightly before the host event that led to it
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class CloudSettings:
    """Everything the cloud detections and the host-cloud correlation read besides the logs."""

    ranges: IpRanges = field(default_factory=IpRanges)
    inventory: Inventory = field(default_factory=Inventory)
    window: timedelta = DEFAULT_WINDOW  # host read -> cloud use, at most this long after
    gcp_vm_service_accounts: frozenset[str] = frozenset()  # lower case


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '6h', '1d' -> timedelta; raises ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"invalid duration {text!r} (expected a number and s, m, h or d, e.g. 6h)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
