"""Metadata API paths, what they hand out (path class) and how severe reading them is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from .. import limits as _limits
from ..model import Severity

PATH_CLASSES = ("credential", "token", "userdata", "identity", "metadata", "unknown")


@dataclass(frozen=True)
class PathRule:
    """One family of metadata paths.

    `pattern` is matched (case-insensitive, anchored at the start) against the normalized path,
    query string included. `marker` is set when the path is specific to a metadata service, so that
    seeing it in free text counts even when the host is hidden (a variable, a proxy parameter).
    """

    id: str
    provider: str
    pattern: str
    path_class: str
    severity: Severity
    description: str
    marker: str | None = None


H, M, L = Severity.HIGH, Severity.MEDIUM, Severity.LOW

# Order matters: the first matching rule wins, so specific rules come before their parents.
RULES: tuple[PathRule, ...] = (
    # AWS EC2 (Alibaba and Tencent share the /latest/meta-data layout).
    PathRule("aws-role-credentials", "aws", r"/latest/meta-data/iam/security-credentials/[^/?#\s]+",
             "credential", H, "IAM role credentials", "/latest/meta-data/iam/security-credentials"),
    PathRule("aws-role-listing", "aws", r"/latest/meta-data/iam/security-credentials/?(?:[?#]|$)",
             "identity", M, "IAM role name listing", "/latest/meta-data/iam/security-credentials"),
    PathRule("aws-instance-identity-credentials", "aws",
             r"/latest/meta-data/identity-credentials/ec2/security-credentials/",
             "credential", H, "EC2 instance identity credentials", "/latest/meta-data/identity-credentials"),
    PathRule("aws-iam-info", "aws", r"/latest/meta-data/iam/", "identity", M, "IAM instance profile info",
             "/latest/meta-data/iam/"),
    PathRule("alibaba-ram-credentials", "alibaba", r"/latest/meta-data/ram/security-credentials/[^/?#\s]+",
             "credential", H, "Alibaba RAM role credentials", "/latest/meta-data/ram/security-credentials"),
    PathRule("alibaba-ram-listing", "alibaba", r"/latest/meta-data/ram/security-credentials/?(?:[?#]|$)",
             "identity", M, "Alibaba RAM role listing", "/latest/meta-data/ram/security-credentials"),
    PathRule("tencent-cam-credentials", "tencent", r"/latest/meta-data/cam/security-credentials/[^/?#\s]+",
             "credential", H, "Tencent CAM role credentials", "/latest/meta-data/cam/security-credentials"),
    PathRule("tencent-cam-listing", "tencent", r"/latest/meta-data/cam/security-credentials/?(?:[?#]|$)",
             "identity", M, "Tencent CAM role listing", "/latest/meta-data/cam/security-credentials"),
    PathRule("aws-user-data", "aws", r"/latest/user-data", "userdata", H, "instance user-data",
             "/latest/user-data"),
    PathRule("aws-identity-document", "aws", r"/latest/dynamic/instance-identity/", "identity", M,
             "instance identity document", "/latest/dynamic/instance-identity"),
    PathRule("aws-imdsv2-token", "aws", r"/latest/api/token", "metadata", M, "IMDSv2 session token request",
             "/latest/api/token"),
    PathRule("aws-metadata", "aws", r"/latest/(?:meta-data|dynamic)(?:/|$|[?#])", "metadata", L,
             "instance metadata", "/latest/meta-data"),
    PathRule("aws-latest", "aws", r"/latest/?(?:[?#]|$)", "metadata", L, "metadata version root"),
    # AWS ECS task credentials and metadata, EKS Pod Identity.
    PathRule("aws-ecs-credentials", "aws-ecs", r"/v2/credentials/[0-9a-f-]{8,}", "credential", H,
             "ECS task-role credentials", "/v2/credentials/"),
    PathRule("aws-ecs-metadata", "aws-ecs", r"/v[234]/(?:metadata|task|stats)", "metadata", L,
             "ECS task metadata"),
    PathRule("aws-eks-credentials", "aws-eks", r"/v1/credentials", "credential", H,
             "EKS Pod Identity credentials"),
    # Azure IMDS, Arc, App Service.
    PathRule("azure-managed-identity-token", "azure", r"/metadata/identity/oauth2/token", "token", H,
             "managed identity access token", "/metadata/identity/oauth2/token"),
    PathRule("azure-identity", "azure", r"/metadata/identity", "identity", M, "managed identity info",
             "/metadata/identity"),
    PathRule("azure-attested", "azure", r"/metadata/attested/", "identity", M, "attested document",
             "/metadata/attested"),
    PathRule("azure-user-data", "azure", r"/metadata/instance/compute/userdata", "userdata", H,
             "instance user data", "/metadata/instance/compute/userdata"),
    PathRule("azure-custom-data", "azure", r"/metadata/instance/compute/customdata", "userdata", H,
             "instance custom data", "/metadata/instance/compute/customdata"),
    PathRule("azure-instance", "azure", r"/metadata/instance", "metadata", L, "instance metadata",
             "/metadata/instance"),
    PathRule("azure-scheduled-events", "azure", r"/metadata/scheduledevents", "metadata", L,
             "scheduled events", "/metadata/scheduledevents"),
    PathRule("azure-maintenance", "azure", r"/metadata/v1/maintenance", "metadata", L, "maintenance events"),
    PathRule("azure-appservice-token", "azure-appservice", r"/msi/token", "token", H,
             "App Service / Functions managed identity token", "/msi/token"),
    # GCP.
    PathRule("gcp-sa-token", "gcp",
             r"/computemetadata/v1(?:beta1)?/instance/service-accounts/[^/?#\s]+/(?:token|identity)",
             "token", H, "service account access or identity token", "/computemetadata/"),
    PathRule("gcp-recursive", "gcp", r"/computemetadata/v1(?:beta1)?/(?:[^?#\s]*)\?(?:[^#\s]*&)?recursive=true",
             "userdata", H, "recursive metadata dump (attributes, kube-env, scripts)", "/computemetadata/"),
    PathRule("gcp-secret-attributes", "gcp",
             r"/computemetadata/v1(?:beta1)?/instance/attributes/"
             r"(?:kube-env|startup-script|user-data|kubeconfig|windows-startup-script)",
             "userdata", H, "instance attributes that carry secrets", "/computemetadata/"),
    PathRule("gcp-sa-listing", "gcp", r"/computemetadata/v1(?:beta1)?/instance/service-accounts",
             "identity", M, "service account listing", "/computemetadata/"),
    PathRule("gcp-ssh-keys", "gcp", r"/computemetadata/v1(?:beta1)?/project/attributes/(?:ssh-keys|sshkeys)",
             "identity", M, "project SSH keys", "/computemetadata/"),
    PathRule("gcp-metadata", "gcp", r"/computemetadata/", "metadata", L, "instance metadata",
             "/computemetadata/"),
    # DigitalOcean (generic-looking paths: only with a metadata host).
    PathRule("do-user-data", "digitalocean", r"/metadata/v1/user-data", "userdata", H, "droplet user-data"),
    PathRule("do-metadata", "digitalocean", r"/metadata/v1(?:\.json|/|$|[?#])", "metadata", L,
             "droplet metadata"),
    # Oracle OCI.
    PathRule("oracle-identity", "oracle", r"/opc/v[12]/identity", "token", H, "instance principal identity",
             "/opc/v2/identity"),
    PathRule("oracle-metadata", "oracle", r"/opc/v[12]/", "metadata", L, "instance metadata", "/opc/v2/"),
    PathRule("oracle-metadata-v1", "oracle", r"/opc/v1/", "metadata", L, "instance metadata", "/opc/v1/"),
    # IBM Cloud.
    PathRule("ibm-identity-token", "ibm", r"/instance_identity/v1/token", "token", H, "instance identity token",
             "/instance_identity/v1/"),
    PathRule("ibm-iam-token", "ibm", r"/identity/v1/token", "token", H, "IAM token"),
    PathRule("ibm-metadata", "ibm", r"/metadata/v1/instance", "metadata", L, "instance metadata"),
    # OpenStack and Hetzner.
    PathRule("openstack-user-data", "openstack", r"/openstack/latest/user_data", "userdata", H, "user data",
             "/openstack/latest/"),
    PathRule("openstack-metadata", "openstack", r"/openstack/", "metadata", L, "metadata", "/openstack/latest/"),
    PathRule("hetzner-user-data", "hetzner", r"/hetzner/v1/userdata", "userdata", H, "user data",
             "/hetzner/v1/"),
    PathRule("hetzner-metadata", "hetzner", r"/hetzner/v1/", "metadata", L, "metadata", "/hetzner/v1/"),
)

# Environment variables that point at a credential endpoint: using one is as good as naming the host.
CREDENTIAL_VARIABLES: dict[str, tuple[str, str]] = {
    "aws_container_credentials_relative_uri": ("aws-ecs", "credential"),
    "aws_container_credentials_full_uri": ("aws-ecs", "credential"),
    "ecs_container_metadata_uri": ("aws-ecs", "metadata"),
    "ecs_container_metadata_uri_v4": ("aws-ecs", "metadata"),
    "identity_endpoint": ("azure-appservice", "token"),
    "msi_endpoint": ("azure-appservice", "token"),
    "imds_endpoint": ("azure-arc", "token"),
}

_COMPILED: tuple[tuple[PathRule, re.Pattern[str]], ...] = tuple(
    (rule, re.compile(rule.pattern, re.IGNORECASE)) for rule in RULES
)
_MULTI_SLASH = re.compile(r"/{2,}")


def percent_decode(text: str) -> str:
    """Percent-decode repeatedly (at most ``max_decode_depth`` rounds, see imds_detect.limits)."""
    for _ in range(_limits.active().max_decode_depth):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def normalize_path(path: str) -> str:
    """Percent-decode (repeatedly), unify slashes, drop dot segments; the query string is kept."""
    path = percent_decode(path).replace("\\", "/")
    if not path.startswith("/"):
        path = "/" + path
    head, sep, tail = path.partition("?")
    head = _MULTI_SLASH.sub("/", head)
    parts: list[str] = []
    for segment in head.split("/")[1:]:
        if segment == ".":
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    normalized = "/" + "/".join(parts)
    return normalized + sep + tail


@lru_cache(maxsize=4096)
def classify_path(path: str, provider_hint: str | None = None) -> PathRule | None:
    """The first rule matching `path`; rules of `provider_hint`'s family win when several match.

    `provider_hint` is the provider the host alone implies (e.g. "alibaba" for 100.100.100.200);
    on a multi-cloud address any provider's rules apply.
    """
    if not path:
        return None
    normalized = normalize_path(path)
    first: PathRule | None = None
    for rule, compiled in _COMPILED:
        if not compiled.match(normalized):
            continue
        if provider_hint is None or rule.provider == provider_hint or _same_family(rule.provider, provider_hint):
            return rule
        if first is None:
            first = rule
    return first


def _same_family(a: str, b: str) -> bool:
    return a.split("-")[0] == b.split("-")[0]


def specific_markers() -> tuple[str, ...]:
    """The lower-case literals that identify a metadata-specific path in free text."""
    return tuple(sorted({rule.marker for rule in RULES if rule.marker}))


# What a successful (2xx) response body weighs, by path class, in bytes. Credential and token answers are small
# JSON documents: AWS and ECS role credentials about 1.2-1.6 KB, GCP access tokens 0.2-1.1 KB, Azure managed-
# identity tokens 1.5-3 KB. A 2xx of that size suggests the secret came back; an empty or page-sized one does not.
RESPONSE_SIZES: dict[str, tuple[int, int]] = {
    "credential": (200, 4096),
    "token": (200, 4096),
    "identity": (1, 4096),
    "userdata": (1, 16 * 1024 * 1024),
    "metadata": (1, 65536),
    "unknown": (1, 65536),
}


_limits.on_change(classify_path.cache_clear)  # its results depend on max_decode_depth
