"""What the user tells about their cloud workloads: own addresses, shared egress, host names, identities.

Sources: the ``[cloud]`` tables of the tuning file, and inventory files as the providers' CLIs print them,
recognised by content: ``aws ec2 describe-instances`` (JSON), ``gcloud compute instances list
--format=json`` and ``az vm list -d`` (JSON).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..knowledge.cloud import INSTANCE_ID
from .ipranges import check_regular_file

__all__ = ["Inventory", "Workload", "load_inventory"]


@dataclass
class Workload:
    """One instance, VM or task the user described."""

    provider: str
    id: str  # instance id (lower case), VM resource id or name
    names: set[str] = field(default_factory=set)  # host names (lower case)
    addresses: set[str] = field(default_factory=set)
    identities: set[str] = field(default_factory=set)  # GCP service accounts, Azure managed-identity ids


@dataclass
class Inventory:
    """Every workload the user described, plus addresses several workloads share (NAT, proxies)."""

    workloads: dict[str, Workload] = field(default_factory=dict)  # by lower-case id
    egress: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def workload(self, provider: str, workload_id: str) -> Workload:
        key = workload_id.lower()
        found = self.workloads.get(key)
        if found is None:
            found = self.workloads[key] = Workload(provider, key)
        return found

    def addresses(self, workload_id: str) -> set[str]:
        found = self.workloads.get(workload_id.lower())
        return found.addresses if found else set()

    def is_egress(self, address: str) -> bool:
        """Whether `address` is a shared egress (NAT gateway, proxy) the user listed."""
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip.version == network.version and ip in network for network in self.egress)

    def add_egress(self, text: str) -> None:
        self.egress.append(ipaddress.ip_network(text.strip(), strict=False))

    def hosts(self) -> dict[str, str]:
        """Host name (lower case) -> workload id, for names given to exactly one workload."""
        owners: dict[str, set[str]] = {}
        for workload in self.workloads.values():
            for name in workload.names:
                owners.setdefault(name, set()).add(workload.id)
        return {name: next(iter(ids)) for name, ids in owners.items() if len(ids) == 1}

    def with_identity(self, identity: str) -> list[Workload]:
        lowered = identity.lower()
        return [w for w in self.workloads.values() if lowered in w.identities]


def load_inventory(path: str, inventory: Inventory) -> None:
    """Add an inventory file's workloads; raises ValueError with a one-line reason when it is not one."""
    check_regular_file(path)
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or error}") from None
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("Reservations"), list):
        count = _aws(data, inventory)
    elif isinstance(data, list) and data and isinstance(data[0], dict) and "networkInterfaces" in data[0]:
        count = _gcp(data, inventory)
    elif isinstance(data, list) and data and isinstance(data[0], dict) and "privateIps" in data[0]:
        count = _azure(data, inventory)
    else:
        raise ValueError(f"{path}: not the JSON of 'aws ec2 describe-instances', 'gcloud compute instances list "
                         "--format=json' or 'az vm list -d'")
    if count == 0:
        raise ValueError(f"{path}: describes no instance")
    inventory.sources.append(path)


def _texts(*values: Any) -> list[str]:
    return [value.strip() for value in values if isinstance(value, str) and value.strip()]


def _aws(data: dict[str, Any], inventory: Inventory) -> int:
    count = 0
    for reservation in data["Reservations"]:
        for instance in (reservation or {}).get("Instances") or []:
            instance_id = instance.get("InstanceId") if isinstance(instance, dict) else None
            if not isinstance(instance_id, str) or not INSTANCE_ID.fullmatch(instance_id):
                continue
            workload = inventory.workload("aws", instance_id)
            workload.addresses.update(_texts(instance.get("PrivateIpAddress"), instance.get("PublicIpAddress"),
                                             instance.get("Ipv6Address")))
            workload.names.update(name.lower() for name in _texts(instance.get("PrivateDnsName"),
                                                                  instance.get("PublicDnsName")))
            workload.names.update(name.split(".", 1)[0].lower() for name in _texts(instance.get("PrivateDnsName")))
            for tag in instance.get("Tags") or []:
                if isinstance(tag, dict) and tag.get("Key") == "Name":
                    workload.names.update(name.lower() for name in _texts(tag.get("Value")))
            for interface in instance.get("NetworkInterfaces") or []:
                for private in interface.get("PrivateIpAddresses") or []:
                    workload.addresses.update(_texts(private.get("PrivateIpAddress"),
                                                     (private.get("Association") or {}).get("PublicIp")))
                for ipv6 in interface.get("Ipv6Addresses") or []:
                    workload.addresses.update(_texts(ipv6.get("Ipv6Address")))
                workload.addresses.update(_texts((interface.get("Association") or {}).get("PublicIp")))
            count += 1
    return count


def _gcp(data: list[Any], inventory: Inventory) -> int:
    count = 0
    for instance in data:
        if not isinstance(instance, dict) or not isinstance(instance.get("name"), str):
            continue
        workload = inventory.workload("gcp", instance["name"])
        workload.names.add(instance["name"].lower())
        for interface in instance.get("networkInterfaces") or []:
            workload.addresses.update(_texts(interface.get("networkIP"), interface.get("ipv6Address")))
            for config in (interface.get("accessConfigs") or []) + (interface.get("ipv6AccessConfigs") or []):
                workload.addresses.update(_texts(config.get("natIP"), config.get("externalIpv6")))
        for account in instance.get("serviceAccounts") or []:
            workload.identities.update(email.lower() for email in _texts(account.get("email")))
        count += 1
    return count


def _azure(data: list[Any], inventory: Inventory) -> int:
    count = 0
    for vm in data:
        if not isinstance(vm, dict) or not isinstance(vm.get("name"), str):
            continue
        workload = inventory.workload("azure", vm["name"])
        workload.names.add(vm["name"].lower())
        for field_name in ("privateIps", "publicIps"):
            workload.addresses.update(part for text in _texts(vm.get(field_name)) for part in _texts(*text.split(",")))
        identity = vm.get("identity") or {}
        workload.identities.update(value.lower() for value in _texts(identity.get("principalId"), vm.get("id")))
        for resource_id, details in (identity.get("userAssignedIdentities") or {}).items():
            workload.identities.update(value.lower() for value in _texts(resource_id,
                                                                        (details or {}).get("principalId")))
        count += 1
    return count
