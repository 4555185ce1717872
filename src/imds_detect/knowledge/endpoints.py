"""Metadata service endpoints of every provider: the one place that knows their addresses and names."""

from __future__ import annotations

from dataclasses import dataclass

MULTI_CLOUD = "multi-cloud"  # 169.254.169.254 with no path that tells the provider apart


@dataclass(frozen=True)
class MetadataAddress:
    """An IP address (canonical text) that serves a metadata or credential API."""

    address: str
    provider: str  # provider when the address alone tells it, else MULTI_CLOUD
    note: str
    # TCP ports that are the API; None means any port except those in `not_ports`.
    ports: frozenset[int] | None = None
    not_ports: frozenset[int] = frozenset()
    # Address-only matching is meaningful (False for loopback, where only the port identifies the API).
    address_alone: bool = True


@dataclass(frozen=True)
class MetadataName:
    """A DNS name that resolves to a metadata service."""

    name: str
    provider: str
    resolves_to: str
    # A one-label name ("metadata") is only taken as a host inside a URL, never in running text.
    url_only: bool = False


@dataclass(frozen=True)
class Neighbour:
    """An address next to the metadata service that is NOT the API (false-positive trap)."""

    address: str
    ports: frozenset[int] | None  # None: the whole address is a neighbour
    what: str


# GCP's resolver (53) and NTP (123) answer on the metadata IP; only the HTTP API counts.
_LINK_LOCAL_NOT_API = frozenset({53, 123, 67, 68})

ADDRESSES: tuple[MetadataAddress, ...] = (
    MetadataAddress(
        "169.254.169.254",
        MULTI_CLOUD,
        "AWS, Azure, GCP, DigitalOcean, Oracle, IBM, OpenStack, Hetzner instance metadata",
        not_ports=_LINK_LOCAL_NOT_API,
    ),
    MetadataAddress("fd00:ec2::254", "aws", "AWS EC2 IMDS over IPv6 (Nitro)", not_ports=_LINK_LOCAL_NOT_API),
    MetadataAddress("169.254.170.2", "aws-ecs", "AWS ECS task metadata and task-role credentials"),
    MetadataAddress("169.254.170.23", "aws-eks", "AWS EKS Pod Identity agent"),
    MetadataAddress("fd00:ec2::23", "aws-eks", "AWS EKS Pod Identity agent over IPv6"),
    MetadataAddress("100.100.100.200", "alibaba", "Alibaba Cloud ECS metadata"),
    MetadataAddress("192.0.0.192", "oracle", "Oracle Cloud legacy metadata address"),
    MetadataAddress(
        "127.0.0.1",
        "azure-arc",
        "Azure Arc hybrid instance metadata service (HIMDS)",
        ports=frozenset({40342}),
        address_alone=False,
    ),
    MetadataAddress(
        "::1",
        "azure-arc",
        "Azure Arc HIMDS over IPv6 loopback",
        ports=frozenset({40342}),
        address_alone=False,
    ),
)

NAMES: tuple[MetadataName, ...] = (
    MetadataName("metadata.google.internal", "gcp", "169.254.169.254"),
    MetadataName("metadata.goog", "gcp", "169.254.169.254"),
    MetadataName("metadata", "gcp", "169.254.169.254", url_only=True),
    MetadataName("instance-data", "aws", "169.254.169.254", url_only=True),
    MetadataName("instance-data.ec2.internal", "aws", "169.254.169.254"),
    MetadataName("metadata.tencentyun.com", "tencent", "169.254.0.23"),
    MetadataName("api.metadata.cloud.ibm.com", "ibm", "169.254.169.254"),
)

# Wildcard DNS services that answer any name embedding an IP (dotted, dashed or hex label).
WILDCARD_DNS_SUFFIXES: tuple[str, ...] = (
    "nip.io",
    "sslip.io",
    "xip.io",
    "traefik.me",
    "localtest.me",
    "lvh.me",
    "nip.direct",
    "ip.addr.tools",
    "backname.io",
    "1u.ms",
    "rbndr.us",
)

# Names used by DNS-rebinding services: they alternate between a public IP and an embedded one.
REBINDING_SUFFIXES: tuple[str, ...] = ("rbndr.us", "1u.ms", "rebind.network", "rebind.it")

NEIGHBOURS: tuple[Neighbour, ...] = (
    Neighbour("169.254.169.254", frozenset({53}), "GCP VPC DNS resolver"),
    Neighbour("169.254.169.254", frozenset({123}), "GCP NTP"),
    Neighbour("169.254.169.253", None, "AWS Route 53 Resolver"),
    Neighbour("fd00:ec2::253", None, "AWS Route 53 Resolver (IPv6)"),
    Neighbour("169.254.169.123", None, "AWS Time Sync Service"),
    Neighbour("fd00:ec2::123", None, "AWS Time Sync Service (IPv6)"),
    Neighbour("168.63.129.16", None, "Azure WireServer (agent, DNS, health probes)"),
)

ARC_PORT = 40342

_BY_ADDRESS: dict[str, MetadataAddress] = {a.address: a for a in ADDRESSES}
_BY_NAME: dict[str, MetadataName] = {n.name: n for n in NAMES}


def address_info(canonical_ip: str) -> MetadataAddress | None:
    """The metadata address record for a canonical IP text, if it is one."""
    return _BY_ADDRESS.get(canonical_ip)


def name_info(canonical_name: str) -> MetadataName | None:
    """The metadata name record for a lower-case DNS name without trailing dot, if it is one."""
    return _BY_NAME.get(canonical_name)


def neighbour_of(canonical_ip: str, port: int | None) -> Neighbour | None:
    """The false-positive neighbour this address/port is, if any."""
    for neighbour in NEIGHBOURS:
        if neighbour.address != canonical_ip:
            continue
        if neighbour.ports is None or (port is not None and port in neighbour.ports):
            return neighbour
    return None


def is_api_port(info: MetadataAddress, port: int | None) -> bool:
    """Whether a connection to `info` on `port` can be the metadata API (None = port unknown)."""
    if info.ports is not None:
        return port in info.ports
    return port is None or port not in info.not_ports


def metadata_ips() -> tuple[str, ...]:
    """Every metadata IP in canonical text."""
    return tuple(a.address for a in ADDRESSES)


def metadata_names() -> tuple[str, ...]:
    """Every metadata DNS name."""
    return tuple(n.name for n in NAMES)


# Request headers that only metadata clients send: evidence of intent, never an excuse.
METADATA_HEADERS: dict[str, str] = {
    "metadata: true": "azure",
    "metadata:true": "azure",
    "metadata-flavor: google": "gcp",
    "metadata-flavor:google": "gcp",
    "metadata-flavor: ibm": "ibm",
    "x-aws-ec2-metadata-token-ttl-seconds": "aws",
    "x-aws-ec2-metadata-token": "aws",
    "x-aliyun-ecs-metadata-token": "alibaba",
    "authorization: bearer oracle": "oracle",
    "x-identity-header": "azure-appservice",
}
