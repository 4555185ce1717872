"""The ``[cloud]`` table of the tuning file: published ranges, inventory, shared egress, hosts, window.

```toml
[cloud]
ip_ranges = ["ip-ranges.json", "cloud.json"]     # AWS ip-ranges.json, Google cloud.json, Azure Service Tags
inventory = ["describe-instances.json"]           # aws ec2 describe-instances / gcloud ... list / az vm list -d
egress_addresses = ["203.0.113.7", "198.51.100.0/28"]   # NAT gateways and proxies workloads share
correlation_window = "6h"                         # host read -> cloud use, at most this long after
gcp_vm_service_accounts = ["app@proj.iam.gserviceaccount.com"]

[cloud.instances]                                 # a workload's own addresses
"i-0123456789abcdef0" = ["54.1.2.3", "10.0.1.5"]

[cloud.hosts]                                     # host name (as host logs write it) -> workload
"web-1" = "i-0123456789abcdef0"
```

Relative file names are taken from the tuning file's folder and must stay inside it (no ``..`` or symlink
out of it); an absolute name is what the user wrote and is taken as it is. Either must be a regular file.
Problems raise ValueError naming the key.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from .inventory import load_inventory
from .ipranges import load_ranges
from .settings import CloudSettings, parse_duration

_KEYS = {"ip_ranges", "inventory", "egress_addresses", "correlation_window", "gcp_vm_service_accounts",
         "instances", "hosts"}


def _strings(value: Any, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
        raise ValueError(f"cloud.{key} must be a string or a list of non-empty strings")
    return [item.strip() for item in items]


def _address(text: str, key: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"cloud.{key}: {text!r} is not an IP address") from None


def _keyed(key: str, error: ValueError) -> str:
    text = str(error)
    return text if text.startswith("cloud.") else f"cloud.{key}: {text}"


def named_file(base: Path, name: str, key: str) -> str:
    """The path of a file the config names: an absolute name as written; a relative one inside `base` (the
    config's folder) once resolved, so that neither ``..`` nor a symlink leads out of it."""
    path = Path(name)
    if path.is_absolute():
        return name
    folder = base.resolve()
    if not (folder / path).resolve().is_relative_to(folder):
        raise ValueError(f"cloud.{key}: {name!r} leads outside the config file's folder {folder} (through '..' or "
                         "a symlink); name it by its absolute path if that file is meant")
    return str(base / path)


def load_cloud(table: dict[str, Any], base: Path, settings: CloudSettings | None = None) -> CloudSettings:
    """CloudSettings from the ``[cloud]`` table (files relative to `base`)."""
    settings = settings or CloudSettings()
    for key in table:
        if key not in _KEYS:
            raise ValueError(f"unknown key cloud.{key} (expected one of {', '.join(sorted(_KEYS))})")
    try:
        for name in _strings(table.get("ip_ranges", []), "ip_ranges"):
            load_ranges(named_file(base, name, "ip_ranges"), settings.ranges)
    except ValueError as error:
        raise ValueError(_keyed("ip_ranges", error)) from None
    try:
        for name in _strings(table.get("inventory", []), "inventory"):
            load_inventory(named_file(base, name, "inventory"), settings.inventory)
    except ValueError as error:
        raise ValueError(_keyed("inventory", error)) from None
    for text in _strings(table.get("egress_addresses", []), "egress_addresses"):
        try:
            settings.inventory.add_egress(text)
        except ValueError:
            raise ValueError(f"cloud.egress_addresses: {text!r} is not an address or network") from None
    if "correlation_window" in table:
        settings.window = parse_duration(str(table["correlation_window"]))
    settings.gcp_vm_service_accounts = frozenset(
        item.lower() for item in _strings(table.get("gcp_vm_service_accounts", []), "gcp_vm_service_accounts"))
    instances = table.get("instances", {})
    if not isinstance(instances, dict):
        raise ValueError("cloud.instances must be a table of workload = [addresses]")
    for workload, addresses in instances.items():
        found = settings.inventory.workload("aws" if workload.lower().startswith("i-") else "", workload)
        found.addresses.update(_address(text, f"instances.{workload}") for text in _strings(addresses, "instances"))
    hosts = table.get("hosts", {})
    if not isinstance(hosts, dict) or not all(isinstance(value, str) and value for value in hosts.values()):
        raise ValueError("cloud.hosts must be a table of host name = workload id")
    for host, workload in hosts.items():
        settings.inventory.workload("aws" if workload.lower().startswith("i-") else "", workload).names.add(
            host.lower())
    return settings
