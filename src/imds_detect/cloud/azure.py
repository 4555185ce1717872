"""Azure: a VM's managed identity acting from an address that is not the VM's.

Managed identities are recognised in Activity logs by the ``xms_mirid`` claim (the identity's resource: a VM
or scale set for a system-assigned identity, a user-assigned identity otherwise) and in
``AADManagedIdentitySignInLogs`` by their service principal. Both are keyed by the identity's object id, so
the VM name learned from one names the other. Own addresses: the inventory (``az vm list -d``) of the VM
holding the identity; private addresses are the VM's. The rest is judged as in :mod:`.offinstance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..knowledge.cloud import AZURE_VM_RESOURCE, address_kind
from ..model import Alert, Event
from .evidence import WorkloadUse, add_bounded, merge_sets, merge_workloads, room_for
from .offinstance import Grounds, judge
from .settings import CloudSettings


@dataclass
class AzureCollector:
    """Per-managed-identity summaries of Azure logs."""

    settings: CloudSettings
    identities: dict[str, WorkloadUse] = field(default_factory=dict)  # object id (lower case)
    people: dict[str, set[str]] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        call = event.cloud
        assert call is not None
        extra = call.record.get("_imds") or {}
        source = call.source_ip
        if call.principal_type != "ManagedIdentity":
            if call.principal_type == "User" and address_kind(source) == "public":
                add_bounded(self.people.setdefault(source, set()), str(extra.get("caller") or call.principal))
            return
        key = call.principal.lower() or str(extra.get("mirid", "")).lower()
        use = self.identities.get(key)
        if use is None:
            if not room_for(self.identities, event):
                return
            use = self.identities[key] = WorkloadUse("azure", "azure-vm", key, "", call.account)
        mirid = str(extra.get("mirid") or "")
        name = str(extra.get("name") or "")
        if name and not use.role:
            use.role = name
        if mirid:
            use.detail["identity_resource"] = mirid
            vm = AZURE_VM_RESOURCE.search(mirid)
            if vm:
                use.detail["vm"] = vm.group(1)
        elif name and extra.get("kind") == "signin" and "vm" not in use.detail:
            use.detail["identity_name"] = name
        if address_kind(source) != "public":
            use.internal += 1
            return
        use.use(event)

    def merge(self, other: AzureCollector) -> None:
        """Add another scan's summaries (a worker process that read other files)."""
        merge_workloads(self.identities, other.identities)
        merge_sets(self.people, other.people)

    def finish(self) -> list[Alert]:
        grounds = Grounds(self.people, set())
        alerts: list[Alert] = []
        for key, use in sorted(self.identities.items()):
            vm_name = use.detail.get("vm", "")
            home: set[str] = set()
            vms = self.settings.inventory.with_identity(key)
            mirid = use.detail.get("identity_resource", "").lower()
            if mirid:
                vms += self.settings.inventory.with_identity(mirid)
            if vm_name and vm_name.lower() in self.settings.inventory.workloads:
                vms.append(self.settings.inventory.workloads[vm_name.lower()])
            for vm in vms:
                home |= vm.addresses
            if vm_name:
                use.workload = vm_name
            alerts.extend(judge(use, home, "inventory" if home else "", grounds, self.settings))
        return alerts
