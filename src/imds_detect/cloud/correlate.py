"""Host-side metadata alerts + cloud-side off-instance use of the same workload = one incident.

Host alerts carry a host name, cloud alerts a workload (an instance id, a VM name). A host is tied to a
workload only by one of these rules, in this order, and only when the answer is unique:

1. the host name (or its first label) is an instance id (``i-0abc...``, EC2 resource-name host names);
2. the user's inventory or ``[cloud.hosts]`` names the host (``describe-instances`` gives private DNS names
   and Name tags);
3. an EC2 IP-based host name ``ip-10-0-1-5[.region.compute.internal]`` whose private address belongs to
   exactly one instance in the CloudTrail launch records or the inventory (private addresses repeat across
   VPCs: an address two instances had ties nothing);
4. an Azure VM name equal to the host name (the VM of the managed identity's ``xms_mirid``).

A host alert joins when it happened at most the correlation window before the cloud use (default 6 h, the
life of instance credentials) or at most 5 minutes after it (clock skew).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from ..detect.rules import CREDENTIAL_OFF_INSTANCE
from ..knowledge.cloud import INSTANCE_ID
from ..model import Alert, Severity
from ..sources.timeparse import parse_timestamp
from .aws import AwsCollector
from .incident import Incident, TimelineEntry
from .settings import CLOCK_SKEW, CloudSettings

_IP_HOST = re.compile(r"ip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})")


@dataclass
class HostResolver:
    """Host name -> (workload, join rule)."""

    settings: CloudSettings
    aws: AwsCollector | None
    vm_names: set[str]

    def resolve(self, host: str) -> tuple[str, str] | None:
        name = host.strip().lower()
        if not name:
            return None
        label = name.split(".", 1)[0]
        if INSTANCE_ID.fullmatch(label):
            return label, f"host name {host} is the instance id"
        hosts = self.settings.inventory.hosts()
        for candidate in (name, label):
            if candidate in hosts:
                return hosts[candidate], f"inventory names host {host} as {hosts[candidate]}"
        if self.aws is not None and name in self.aws.dns_names:
            return self.aws.dns_names[name], f"RunInstances gave {self.aws.dns_names[name]} the DNS name {host}"
        match = _IP_HOST.fullmatch(label)
        if match:
            address = ".".join(match.groups())
            owners = self._private_owners(address)
            if len(owners) == 1:
                owner = next(iter(owners))
                return owner, f"host name {host} is private address {address}, which only {owner} had"
        if label in self.vm_names:
            return label, f"host name {host} is the VM's name"
        return None

    def _private_owners(self, address: str) -> set[str]:
        owners = {workload.id for workload in self.settings.inventory.workloads.values()
                  if address in workload.addresses}
        if self.aws is not None:
            owners |= {instance for instance, addresses in self.aws.private.items() if address in addresses}
        return owners


def correlate(alerts: list[Alert], settings: CloudSettings, aws: AwsCollector | None) -> list[Incident]:
    """The incidents among a scan's alerts (host and cloud), oldest first."""
    cloud = [alert for alert in alerts if alert.rule_id == CREDENTIAL_OFF_INSTANCE.id and alert.cloud
             and alert.cloud.get("workload_kind") in ("ec2-instance", "azure-vm")]
    if not cloud:
        return []
    by_workload: dict[str, list[Alert]] = {}
    for alert in cloud:
        by_workload.setdefault(alert.host.lower(), []).append(alert)
    resolver = HostResolver(settings, aws, {name for name, found in by_workload.items()
                                            if found[0].cloud and found[0].cloud.get("workload_kind") == "azure-vm"})
    joined: dict[str, list[tuple[Alert, str]]] = {}
    resolved: dict[str, tuple[str, str] | None] = {}
    for alert in alerts:
        if alert.cloud is not None or not alert.host:
            continue
        if alert.host not in resolved:
            resolved[alert.host] = resolver.resolve(alert.host)
        target = resolved[alert.host]
        if target is not None and target[0] in by_workload:
            joined.setdefault(target[0], []).append((alert, target[1]))
    incidents = []
    for workload, uses in by_workload.items():
        host_alerts = [(alert, how) for alert, how in joined.get(workload, []) if _in_window(alert, uses, settings)]
        if host_alerts:
            incidents.append(_incident(workload, host_alerts, uses))
    return sorted(incidents, key=lambda incident: incident.first_host_read)


def _in_window(host: Alert, uses: list[Alert], settings: CloudSettings) -> bool:
    return any(use.timestamp - settings.window <= host.timestamp <= use.timestamp + CLOCK_SKEW for use in uses)


def _incident(workload: str, host_alerts: list[tuple[Alert, str]], uses: list[Alert]) -> Incident:
    timeline: list[TimelineEntry] = []
    for alert, _ in host_alerts:
        process = alert.process
        endpoint = alert.endpoint
        shown = (endpoint.canonical or endpoint.raw) + endpoint.path
        timeline.append(TimelineEntry(alert.timestamp, "host", f"{alert.host}: {process.name or process.path or '?'} "
                                      f"-> {shown} ({endpoint.path_class})", {
                                          "host": alert.host, "rule_id": alert.rule_id, "user": alert.user,
                                          "process": process.as_dict(), "endpoint_path": endpoint.path,
                                          "endpoint": endpoint.canonical or endpoint.raw,
                                          "path_class": endpoint.path_class,
                                          "source": f"{alert.source.file}:{alert.source.line}"}))
    for use in uses:
        assert use.cloud is not None
        for call in use.cloud.get("first_calls", []):
            timeline.append(TimelineEntry(_time(call["time"], use), "cloud",
                                          f"{call['operation']} ({call['service']}) from {call['source_ip']}",
                                          {"principal": use.user, **call}))
    timeline.sort(key=lambda entry: (entry.time, entry.side != "host"))
    hosts = sorted({alert.host for alert, _ in host_alerts})
    ips = sorted({str(use.cloud["foreign_ip"]) for use in uses if use.cloud})
    first_read = min(alert.timestamp for alert, _ in host_alerts)
    first_use = min(use.timestamp for use in uses)
    key = f"{workload}|{first_read.isoformat()}|{','.join(ips)}"
    return Incident(
        id="inc-" + hashlib.sha1(key.encode()).hexdigest()[:12],
        title=f"Credentials of {workload} read on {', '.join(hosts)} and used from {', '.join(ips)}",
        severity=Severity.CRITICAL,
        workload=workload,
        hosts=hosts,
        principals=sorted({use.user for use in uses}),
        foreign_ips=ips,
        join="; ".join(sorted({how for _, how in host_alerts})),
        first_host_read=first_read,
        first_cloud_use=first_use,
        timeline=timeline,
        alerts=[alert for alert, _ in host_alerts] + uses,
    )


def _time(text: str, alert: Alert) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError:
        return alert.timestamp
