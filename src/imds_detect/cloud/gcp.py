"""GCP: a VM's service-account token used from an address that is not the VM's.

A service account counts as a VM's when it is the Compute Engine default account, when the logs attach it
to an instance (``compute.instances.insert`` / ``setServiceAccount`` requests), when the inventory lists it on
a VM, or when the tuning file names it (``cloud.gcp_vm_service_accounts``). Its calls from ``gce-internal-ip``,
private addresses or the VM's own addresses are the VM's; calls from elsewhere are judged as in
:mod:`.offinstance` (outside the supplied Google ranges, an address people use, several addresses).
A named user-managed key (``serviceAccountKeyName``) is reported: such a call may come from a key file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..knowledge.cloud import (
    GCP_ATTACH_METHODS,
    GCP_DEFAULT_COMPUTE_SA,
    GCP_INTERNAL_CALLERS,
    address_kind,
    classify_user_agent,
)
from ..model import Alert, Event
from .evidence import WorkloadUse, add_bounded, merge_sets, merge_workloads, room_for
from .offinstance import Grounds, judge
from .settings import CloudSettings


def _emails(request: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(request, Mapping):
        for account in request.get("serviceAccounts") or []:
            if isinstance(account, Mapping) and isinstance(account.get("email"), str):
                found.add(account["email"].lower())
        if isinstance(request.get("email"), str):
            found.add(request["email"].lower())
    return found


@dataclass
class GcpCollector:
    """Per-service-account summaries of GCP audit logs."""

    settings: CloudSettings
    accounts: dict[str, WorkloadUse] = field(default_factory=dict)  # lower-case e-mail
    attached: dict[str, set[str]] = field(default_factory=dict)  # service account -> VM names seen in the logs
    people: dict[str, set[str]] = field(default_factory=dict)
    agent_addresses: set[str] = field(default_factory=set)
    key_names: dict[str, set[str]] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        call = event.cloud
        assert call is not None
        payload = call.record.get("protoPayload") or {}
        if call.operation.endswith(GCP_ATTACH_METHODS) and not call.error:
            vm = str(payload.get("resourceName", "")).rsplit("/", 1)[-1]
            for email in _emails(payload.get("request")):
                add_bounded(self.attached.setdefault(email, set()), vm, 64)
        email = call.principal.lower()
        source = call.source_ip
        if call.principal_type != "serviceAccount":
            if address_kind(source) == "public" and email:
                add_bounded(self.people.setdefault(source, set()), call.principal)
            return
        use = self.accounts.get(email)
        if use is None:
            if not room_for(self.accounts, event):
                return
            use = self.accounts[email] = WorkloadUse("gcp", "gce-vm", email, email, call.account)
        key = str((payload.get("authenticationInfo") or {}).get("serviceAccountKeyName") or "")
        if key:
            add_bounded(self.key_names.setdefault(email, set()), key, 4)
        agent = classify_user_agent(call.user_agent)
        if source.lower() in GCP_INTERNAL_CALLERS or address_kind(source) != "public":
            use.internal += 1
            add_bounded(use.own_families, agent.family, 16)
        elif agent.kind == "agent":
            use.own.add(source)
            self.agent_addresses.add(source)
        else:
            use.use(event, key=key)

    def merge(self, other: GcpCollector) -> None:
        """Add another scan's summaries (a worker process that read other files)."""
        merge_workloads(self.accounts, other.accounts)
        merge_sets(self.attached, other.attached)
        merge_sets(self.people, other.people)
        merge_sets(self.key_names, other.key_names)
        self.agent_addresses |= other.agent_addresses

    def vm_account(self, email: str) -> bool:
        return bool(GCP_DEFAULT_COMPUTE_SA.fullmatch(email) or email in self.settings.gcp_vm_service_accounts
                    or email in self.attached or self.settings.inventory.with_identity(email))

    def finish(self) -> list[Alert]:
        grounds = Grounds(self.people, self.agent_addresses, self._context)
        alerts: list[Alert] = []
        for email, use in sorted(self.accounts.items()):
            if not self.vm_account(email):
                continue
            vms = self.settings.inventory.with_identity(email)
            home = set().union(*(vm.addresses for vm in vms)) | use.own if vms else set(use.own)
            names = sorted({vm.id for vm in vms} | self.attached.get(email, set()))
            if names:
                use.detail["vms"] = ", ".join(names[:10])
            sources = "; ".join(label for label, present in (("inventory", vms), ("its agents call from there",
                                                                                   use.own)) if present)
            alerts.extend(judge(use, home, sources, grounds, self.settings))
        return alerts

    def _context(self, use: WorkloadUse, address: str) -> list[str]:
        reasons = []
        if GCP_DEFAULT_COMPUTE_SA.fullmatch(use.workload):
            reasons.append("the Compute Engine default service account: VMs get its token from the metadata server")
        if use.workload in self.attached:
            reasons.append("attached to VM(s) " + ", ".join(sorted(self.attached[use.workload])[:5]) + " in the logs")
        keys = self.key_names.get(use.workload)
        if keys:
            reasons.append("a service-account key was named (" + ", ".join(sorted(keys)) + "): these calls may "
                           "come from a key file rather than a metadata token")
        return reasons
