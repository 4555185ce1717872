"""A detector's raw finding, before allowlisting turns it into an alert."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Endpoint, Severity
from .rules import Rule


@dataclass(slots=True)
class Finding:
    rule: Rule
    severity: Severity
    endpoint: Endpoint
    reasons: list[str] = field(default_factory=list)
