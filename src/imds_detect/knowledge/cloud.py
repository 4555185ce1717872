"""Cloud control-plane knowledge: how metadata-service credentials look in AWS, GCP and Azure logs.

The one place that knows session-name shapes (instance, ECS task, EKS pod), which CloudTrail source
addresses are AWS itself, which user agents are cloud agents, consoles or attack tools, which calls are
reconnaissance, and which calls weaken IMDS. Cloud detections read these; nothing else hard-codes them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

# --------------------------------------------------------------------------- AWS sessions

# Instance-profile sessions end in the instance id: assumed-role/<role>/i-0123456789abcdef0. Hex digits are
# matched in any case (anonymised samples mix cases).
INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{17}|[0-9a-f]{8})", re.IGNORECASE)
# ECS task-role sessions are named after the task id (32 hex digits; older tasks: a UUID).
ECS_TASK_ID = re.compile(r"(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
                         re.IGNORECASE)
# EKS Pod Identity sessions: eks-<cluster>-<pod>-<uuid> (cut at 64 characters).
EKS_POD_SESSION_PREFIX = "eks-"

EC2_SERVICE = "ec2.amazonaws.com"
ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"
EKS_POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
EKS_AUTH_SOURCE = "eks-auth.amazonaws.com"
EKS_POD_IDENTITY_CALL = "AssumeRoleForPodIdentity"
# Calls that run commands or sessions on an instance (their caller could read its metadata service).
INSTANCE_COMMAND_CALLS = frozenset(("SendCommand", "StartSession", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"))
# Calls whose request or response ties an address to an instance.
ADDRESS_CALLS = frozenset(("RunInstances", "AssociateAddress", "AllocateAddress"))


def instance_session(session: str) -> str | None:
    """The instance id a role session name is, if it is one (lower case)."""
    return session.lower() if INSTANCE_ID.fullmatch(session) else None


def ecs_task_session(session: str) -> bool:
    """Whether a role session name has the shape of an ECS task id."""
    return bool(ECS_TASK_ID.fullmatch(session))


def is_aws_source(source_ip: str) -> bool:
    """CloudTrail `sourceIPAddress` values that are AWS itself acting, not a network address."""
    value = source_ip.strip().lower()
    return value == "aws internal" or value.endswith(".amazonaws.com") or value == "amazonaws.com"


# Addresses a cloud API sees only from inside a network (through a VPC endpoint, Private Google Access, a
# private link): RFC 1918, carrier-grade NAT, loopback, link-local, IPv6 unique-local. Python's is_private
# would also take the documentation and reserved ranges, which are neither.
_INTERNAL_NETWORKS = tuple(ipaddress.ip_network(text) for text in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))


@lru_cache(maxsize=65536)
def address_kind(text: str) -> str:
    """'private' (RFC 1918, CGNAT, loopback, link-local, IPv6 ULA), 'public' (any other address) or 'none'."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return "none"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == network.version and address in network for network in _INTERNAL_NETWORKS):
        return "private"
    return "public"


def address_family(text: str) -> int:
    """4 or 6 (0 when not an address)."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return 0
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return 6
    return 4


# --------------------------------------------------------------------------- reconnaissance

RECON_OPERATIONS = frozenset(("GetCallerIdentity", "GetAccountAuthorizationDetails", "GetAccountSummary",
                              "DescribeInstances", "GetSessionToken"))
RECON_SERVICES = frozenset(("iam.amazonaws.com",))


def is_recon(service: str, operation: str) -> bool:
    """Discovery calls an intruder makes with fresh credentials: who am I, what is here, what may I do."""
    return operation in RECON_OPERATIONS or operation.startswith("List") or service in RECON_SERVICES


# --------------------------------------------------------------------------- user agents


@dataclass(frozen=True)
class UserAgentClass:
    """What a user agent says about the caller."""

    kind: str  # agent | sdk | cli | console | aws-service | tool | browser | none | other
    family: str  # e.g. "aws-cli", "boto3", "agent:amazon-ssm-agent", "tool:pacu"
    os: str = ""  # linux | windows | macos | ""

    @property
    def unusual_for_workload(self) -> bool:
        """A user agent a server workload does not send: attack or audit tools, browsers, macOS."""
        return self.kind in ("tool", "browser") or self.os == "macos"


# On-instance agents: a call with one of these user agents comes from the instance itself.
AGENT_USER_AGENTS: tuple[tuple[str, str], ...] = (
    ("amazon-ssm-agent", "amazon-ssm-agent"), ("ssm-agent", "amazon-ssm-agent"),
    ("amazon-cloudwatch-agent", "amazon-cloudwatch-agent"), ("cwagent", "amazon-cloudwatch-agent"),
    ("amazon-ecs-agent", "amazon-ecs-agent"), ("ecs-agent", "amazon-ecs-agent"),
    ("ec2launch", "ec2launch"), ("ec2config", "ec2config"), ("amazon-efs-utils", "amazon-efs-utils"),
    ("codedeploy-agent", "aws-codedeploy-agent"), ("aws-kinesis-agent", "aws-kinesis-agent"),
    ("eks-pod-identity-agent", "eks-pod-identity-agent"), ("amazon-vpc-cni", "amazon-vpc-cni"),
    ("aws-node", "amazon-vpc-cni"),
)
# Attack and cloud-audit tools (an instance's own workload does not run them).
TOOL_USER_AGENTS: tuple[str, ...] = (
    "pacu", "stratus-red-team", "cloudfox", "scoutsuite", "scout suite", "prowler", "enumerate-iam",
    "weirdaal", "cloudmapper", "trufflehog", "aws_consoler", "nimbostratus", "cloudsploit", "awspx",
    "cloudgoat", "peirates", "cloudbrute", "s3scanner", "kali", "parrot", "pentoo", "blackarch",
)
_SDK_FAMILIES: tuple[tuple[str, str], ...] = (
    ("aws-cli/", "aws-cli"), ("boto3/", "boto3"), ("botocore/", "botocore"), ("aws-sdk-go-v2/", "aws-sdk-go-v2"),
    ("aws-sdk-go/", "aws-sdk-go"), ("aws-sdk-java/", "aws-sdk-java"), ("aws-sdk-js/", "aws-sdk-js"),
    ("aws-sdk-nodejs/", "aws-sdk-js"), ("aws-sdk-dotnet", "aws-sdk-dotnet"), ("aws-sdk-ruby", "aws-sdk-ruby"),
    ("aws-sdk-php/", "aws-sdk-php"), ("aws-sdk-rust/", "aws-sdk-rust"), ("aws-sdk-cpp/", "aws-sdk-cpp"),
    ("aws-sdk-kotlin/", "aws-sdk-kotlin"), ("aws-sdk-swift/", "aws-sdk-swift"), ("aws-sdk-", "aws-sdk"),
    ("awspowershell", "aws-powershell"), ("aws-tools-for-powershell", "aws-powershell"),
    ("terraform", "terraform"), ("hashicorp", "terraform"), ("pulumi", "pulumi"), ("aws-cdk", "aws-cdk"),
    ("google-api-", "google-api-client"), ("gcloud", "gcloud"), ("google-cloud-sdk", "gcloud"),
    ("azure-sdk-for-", "azure-sdk"), ("azsdk-", "azure-sdk"), ("azure-cli", "azure-cli"),
    ("azurepowershell", "azure-powershell"),
)


@lru_cache(maxsize=4096)
def classify_user_agent(user_agent: str) -> UserAgentClass:
    """Classify a control-plane user agent (CloudTrail `userAgent`, GCP `callerSuppliedUserAgent`, ...)."""
    text = user_agent.strip()
    lowered = text.lower()
    os_name = _os_of(lowered)
    if not text:
        return UserAgentClass("none", "")
    for needle in TOOL_USER_AGENTS:
        if needle in lowered:
            return UserAgentClass("tool", f"tool:{needle}", os_name)
    for needle, family in AGENT_USER_AGENTS:
        if needle in lowered:
            return UserAgentClass("agent", f"agent:{family}", os_name)
    if lowered.startswith(("console.", "signin.amazonaws.com", "aws console", "awsconsole")) or \
            "console.amazonaws.com" in lowered or lowered.startswith("ec2consolefrontend"):
        return UserAgentClass("console", "console", os_name)
    if lowered == "aws internal" or "aws-internal/" in lowered or lowered.endswith(".amazonaws.com"):
        return UserAgentClass("aws-service", "aws-service", os_name)
    for needle, family in _SDK_FAMILIES:
        if needle in lowered:
            return UserAgentClass("cli" if family.endswith("cli") else "sdk", family, os_name)
    if lowered.startswith("mozilla/"):
        return UserAgentClass("browser", "browser", os_name)
    first = re.split(r"[\s/;(]", lowered, maxsplit=1)[0]
    return UserAgentClass("other", f"other:{first[:40]}", os_name)


def _os_of(lowered: str) -> str:
    if "darwin" in lowered or "macos" in lowered or "mac os" in lowered or "macintosh" in lowered:
        return "macos"
    if "windows" in lowered or "win32" in lowered or "win64" in lowered:
        return "windows"
    if "linux" in lowered:
        return "linux"
    return ""


# --------------------------------------------------------------------------- IMDS hardening (AWS)

HTTP_TOKENS = "httptokens"
HOP_LIMIT = "httpputresponsehoplimit"
HTTP_ENDPOINT = "httpendpoint"
METADATA_OPTIONS = "metadataoptions"
DEFAULT_HOP_LIMIT = 1  # AWS default for instances; 2 is the documented value for containers on the host
MODIFY_INSTANCE_OPTIONS = "ModifyInstanceMetadataOptions"
MODIFY_ACCOUNT_DEFAULTS = "ModifyInstanceMetadataDefaults"
LAUNCH_CALLS = frozenset(("RunInstances",))
TEMPLATE_CALLS = frozenset(("CreateLaunchTemplate", "CreateLaunchTemplateVersion", "CreateLaunchConfiguration"))
HARDENING_CALLS = frozenset((MODIFY_INSTANCE_OPTIONS, MODIFY_ACCOUNT_DEFAULTS)) | LAUNCH_CALLS | TEMPLATE_CALLS

# --------------------------------------------------------------------------- GCP

# The Compute Engine default service account, attached to VMs unless another one is chosen.
GCP_DEFAULT_COMPUTE_SA = re.compile(r"\d+-compute@developer\.gserviceaccount\.com", re.IGNORECASE)
# callerIp values that mean "inside Google Cloud" without an address: a VM without an external address
# calling a resource of another organisation, or a private address.
GCP_INTERNAL_CALLERS = frozenset(("gce-internal-ip", "private"))
GCP_ATTACH_METHODS = ("compute.instances.insert", "compute.instances.setServiceAccount")

# --------------------------------------------------------------------------- Azure

# xms_mirid of a system-assigned managed identity: the resource it belongs to (a VM or a scale set).
AZURE_VM_RESOURCE = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
    r"(?:virtualmachines|virtualmachinescalesets)/([^/]+)", re.IGNORECASE)
AZURE_USER_ASSIGNED = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.managedidentity/userassignedidentities/([^/]+)",
    re.IGNORECASE)
AZURE_MIRID_CLAIM = "xms_mirid"
AZURE_APPID_CLAIMS = ("appid", "azp")
AZURE_OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
