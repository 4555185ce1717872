"""The cloud side of a scan: CLOUD events go in while the scan reads, alerts come out when it ends.

Cloud detections are stateful (an instance's own addresses must be learned before its credentials' uses are
judged), so events are summarised per provider as they arrive (:mod:`.aws`, :mod:`.gcp`, :mod:`.azure`) and
judged once, in :meth:`CloudCollector.finish`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Alert, Event
from .aws import AwsCollector
from .azure import AzureCollector
from .gcp import GcpCollector
from .settings import CloudSettings


@dataclass
class CloudCollector:
    """Summaries of every CLOUD event of a scan."""

    settings: CloudSettings = field(default_factory=CloudSettings)
    events: int = 0
    _aws: AwsCollector | None = None
    _gcp: GcpCollector | None = None
    _azure: AzureCollector | None = None

    @property
    def aws(self) -> AwsCollector:
        if self._aws is None:
            self._aws = AwsCollector(self.settings)
        return self._aws

    @property
    def aws_seen(self) -> AwsCollector | None:
        """The AWS summaries, when the scan read AWS records (for the host-cloud joins)."""
        return self._aws

    def observe(self, event: Event) -> None:
        """Take one CLOUD event into the summaries."""
        call = event.cloud
        if call is None:
            return
        self.events += 1
        if call.provider == "aws":
            self.aws.observe(event)
        elif call.provider == "gcp":
            if self._gcp is None:
                self._gcp = GcpCollector(self.settings)
            self._gcp.observe(event)
        elif call.provider == "azure":
            if self._azure is None:
                self._azure = AzureCollector(self.settings)
            self._azure.observe(event)

    def merge(self, other: CloudCollector) -> None:
        """Add the summaries of another scan of other files (a worker process of a parallel scan): finishing
        the merged collector judges as if one scan had read every file."""
        self.events += other.events
        if other._aws is not None:
            self.aws.merge(other._aws)
        if other._gcp is not None:
            if self._gcp is None:
                self._gcp = GcpCollector(self.settings)
            self._gcp.merge(other._gcp)
        if other._azure is not None:
            if self._azure is None:
                self._azure = AzureCollector(self.settings)
            self._azure.merge(other._azure)

    def finish(self) -> list[Alert]:
        """Judge everything collected: the cloud alerts of the scan."""
        alerts: list[Alert] = []
        for collector in (self._aws, self._gcp, self._azure):
            if collector is not None:
                alerts.extend(collector.finish())
        return alerts
