"""Judging where a workload's metadata-service credentials were used from, after every record was read.

An address a workload's credentials were used from is **foreign** on any of these grounds (strong):

- the workload's own public addresses are known (the user's inventory, addresses the logs assign to it,
  addresses its own cloud agents call from) in the same IP family, and this address is not one of them;
- published ranges of the provider were supplied and the address is outside them (a workload calls from
  its provider's addresses, or from private ones through an endpoint);
- a person's identity (IAM user, root, federated or SSO user, console session) calls from the same address,
  and no workload's agent does (an address where only people work is not a workload's egress).

Weak ground (medium): the same credentials were used from several public addresses and nothing else is known;
the first one is presumed the workload's own (not applied to an address inside the provider's supplied
ranges). Never foreign: addresses the user lists as the workload's or as shared egress (NAT, proxy),
private addresses, VPC endpoints and the provider acting itself. Without any ground a use is not judged
(the workload's addresses are unknown): no alert.

Severity: high on a strong ground, medium on the weak one, one step higher (up to critical) when the
credentials were fetched with IMDSv1, the user agent is unusual for a workload (attack or audit tool, browser,
macOS, or a family the workload itself never used), or reconnaissance calls follow the first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ..detect.rules import CREDENTIAL_OFF_INSTANCE
from ..knowledge.cloud import address_family, address_kind, classify_user_agent, is_recon
from ..model import Alert, Endpoint, ProcessInfo, Severity, iso_utc
from .evidence import IpUse, WorkloadUse
from .settings import CloudSettings

RECON_WINDOW = timedelta(minutes=15)
PROVIDER_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}
# Where each kind of workload got its credentials: the endpoint the alert names.
CREDENTIAL_ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "ec2-instance": ("aws", "169.254.169.254", "/latest/meta-data/iam/security-credentials/{role}"),
    "ecs-task": ("aws", "169.254.170.2", "/v2/credentials/"),
    "eks-pod": ("aws", "169.254.170.23", "/v1/credentials"),
    "gce-vm": ("gcp", "169.254.169.254", "/computeMetadata/v1/instance/service-accounts/{role}/token"),
    "azure-vm": ("azure", "169.254.169.254", "/metadata/identity/oauth2/token"),
}


@dataclass
class Grounds:
    """What the rest of the logs say about addresses, for every workload of one provider."""

    people: dict[str, set[str]] = field(default_factory=dict)  # address -> person identities calling from it
    agent_addresses: set[str] = field(default_factory=set)  # addresses some workload's agent called from
    # extra reasons about a workload and an address (e.g. "this address ran SendCommand on the instance")
    context: Callable[[WorkloadUse, str], list[str]] = lambda use, address: []


def judge(use: WorkloadUse, home: set[str], home_sources: str, grounds: Grounds,
          settings: CloudSettings) -> list[Alert]:
    """Alerts for the foreign addresses `use` was used from; `home` are the workload's own addresses."""
    alerts: list[Alert] = []
    first_address = min(use.uses.values(), key=lambda item: item.first).address if use.uses else ""
    for address, ip_use in sorted(use.uses.items(), key=lambda item: item[1].first):
        if address in home or settings.inventory.is_egress(address) or address_kind(address) != "public":
            continue
        strong, notes, ip_class = _strong_grounds(use, address, home, home_sources, grounds, settings)
        weak = ""
        if not strong and not ip_class.startswith("inside-"):
            weak = _weak_ground(use, address, first_address)
        if not strong and not weak:
            continue
        raisers = _raisers(use, ip_use)
        severity = Severity.HIGH if strong else Severity.MEDIUM
        if raisers:
            severity = Severity(min(severity + 1, Severity.CRITICAL))
        reasons = [*strong, *([weak] if weak else []), *notes, *raisers, *grounds.context(use, address)]
        alerts.append(_alert(use, ip_use, severity, reasons, ip_class, home))
    return alerts


def _strong_grounds(use: WorkloadUse, address: str, home: set[str], home_sources: str, grounds: Grounds,
                    settings: CloudSettings) -> tuple[list[str], list[str], str]:
    strong: list[str] = []
    notes: list[str] = []
    family = address_family(address)
    own = sorted(item for item in home if address_family(item) == family and address_kind(item) == "public")
    label = use.kind.replace("-", " ")
    if own:
        strong.append(f"the {label}'s own public address{'es are' if len(own) > 1 else ' is'} "
                      f"{', '.join(own[:5])} ({home_sources}); {address} is not")
    ip_class = "unknown"
    name = PROVIDER_NAMES.get(use.provider, use.provider)
    if settings.ranges.covers(use.provider):
        found = settings.ranges.lookup(address, use.provider)
        if found is None:
            ip_class = f"outside-{use.provider}"
            strong.append(f"{address} is outside {name} (not in the supplied published ranges)")
        else:
            ip_class = f"inside-{use.provider}"
            notes.append(f"{address} is inside {name}: {found.describe()} (another account's workload or a "
                         "service of the provider)")
    people = grounds.people.get(address)
    if people and address not in grounds.agent_addresses:
        shown = ", ".join(sorted(people)[:3])
        strong.append(f"{address} is also used by {shown}: a person's address, not a workload's egress")
    return strong, notes, ip_class


def _weak_ground(use: WorkloadUse, address: str, first_address: str) -> str:
    family = address_family(address)
    public = [item for item in use.uses if address_family(item) == family and address_kind(item) == "public"]
    if len(public) < 2 or address == first_address:
        return ""
    return (f"the credentials were used from {len(public)} public addresses; the first, {first_address}, is "
            f"presumed the {use.kind.replace('-', ' ')}'s own (its addresses are not otherwise known)")


def _raisers(use: WorkloadUse, ip_use: IpUse) -> list[str]:
    raisers: list[str] = []
    if "1.0" in ip_use.deliveries:
        raisers.append("the credentials were fetched with IMDSv1 (ec2RoleDelivery 1.0): no token was needed")
    unusual = []
    for agent in ip_use.user_agents:
        kind = classify_user_agent(agent)
        if kind.unusual_for_workload:
            unusual.append(f"{agent!r} ({kind.family}{', ' + kind.os if kind.os else ''})")
        elif use.own_families and kind.family not in use.own_families:
            unusual.append(f"{agent!r} ({kind.family}, never used by the workload itself)")
    if unusual:
        raisers.append("user agent unusual for the workload: " + "; ".join(unusual[:3]))
    recon = [note for note in ip_use.calls
             if is_recon(note.service, note.operation) and note.time - ip_use.first <= RECON_WINDOW]
    if recon:
        shown = ", ".join(f"{note.operation} ({iso_utc(note.time)})" for note in recon[:4])
        raisers.append(f"reconnaissance right after first use: {shown}")
    return raisers


def _alert(use: WorkloadUse, ip_use: IpUse, severity: Severity, reasons: list[str], ip_class: str,
           home: set[str]) -> Alert:
    provider, canonical, path = CREDENTIAL_ENDPOINTS[use.kind]
    principal = sorted(use.principals)[0] if use.principals else use.workload
    recon = sorted({note.operation for note in ip_use.calls if is_recon(note.service, note.operation)})
    cloud = {
        "provider": use.provider,
        "workload_kind": use.kind,
        "workload": use.workload,
        "role": use.role,
        "account": use.account,
        "principals": sorted(use.principals),
        "foreign_ip": ip_use.address,
        "foreign_ip_class": ip_class,
        "first_use": iso_utc(ip_use.first),
        "last_use": iso_utc(ip_use.last),
        "calls": ip_use.count,
        "user_agents": [agent for agent, _ in ip_use.user_agents.most_common()],
        "recon_calls": recon,
        "own_addresses": sorted(home),
        "first_calls": [note.as_dict() for note in ip_use.calls],
        **({"ec2_role_delivery": sorted(ip_use.deliveries)} if ip_use.deliveries else {}),
        **use.detail,
    }
    assert ip_use.first_source is not None
    return Alert(
        rule_id=CREDENTIAL_OFF_INSTANCE.id,
        title=CREDENTIAL_OFF_INSTANCE.title,
        severity=severity,
        timestamp=ip_use.first,
        host=use.workload,
        user=principal,
        process=ProcessInfo(),
        endpoint=Endpoint(provider, principal, canonical, 80, path.format(role=use.role), "credential"),
        reasons=[f"{use.kind.replace('-', ' ')} {use.workload} credentials ({principal}) used from "
                 f"{ip_use.address}: {ip_use.count} call(s) from {iso_utc(ip_use.first)} to "
                 f"{iso_utc(ip_use.last)}", *reasons],
        source=ip_use.first_source,
        raw=ip_use.first_raw,
        cloud=cloud,
    )
