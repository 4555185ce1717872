"""The rule catalogue: stable ids, titles and what each rule means (also used by reports and exports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    suppressible: bool = True  # whether default-scoped allowlist entries apply to it


NETWORK_CONNECTION = Rule(
    "imds-network-connection",
    "Connection to a cloud instance metadata service by an unexpected process",
    "A process that is not a verified cloud agent connected (or tried to) to a metadata or credential "
    "endpoint of any provider, whatever the spelling of the address.",
)
COMMAND_LINE = Rule(
    "imds-command-line",
    "Command line reaches a cloud instance metadata service",
    "A process command line (or PowerShell command) fetches from a metadata endpoint: curl, wget, "
    "interpreters, PowerShell cmdlets, /dev/tcp, nc or socat, with the host canonicalised.",
)
HIDDEN_HOST = Rule(
    "imds-hidden-host",
    "Command line requests a metadata-specific path through a hidden host",
    "A command line names a path that only metadata services serve, or a credential-endpoint variable, "
    "while the host is hidden (a variable, a redirector or a proxy).",
)
HTTP_REQUEST = Rule(
    "imds-http-request",
    "HTTP request for cloud instance metadata",
    "An inspected HTTP request went to a metadata endpoint or carried a metadata URL.",
)
HTTP_PROBING = Rule(
    "imds-http-probing",
    "Metadata service probing: many requests from one client",
    "One client sent many requests naming the metadata service (SSRF payloads in several host spellings or for "
    "several metadata paths, or walking the metadata tree) within minutes: one alert for the whole run, with "
    "the spellings, paths and records it covers.",
)
DNS_QUERY = Rule(
    "imds-dns-query",
    "DNS query for a metadata service name",
    "A DNS query for a metadata name (routine on the provider: informational) or for a wildcard-DNS or "
    "rebinding name that embeds a metadata address (high).",
    suppressible=False,
)
AGENT_MASQUERADE = Rule(
    "imds-agent-masquerade",
    "Cloud agent name running from an unexpected path",
    "An executable named like a cloud agent runs from a path that agent never uses: a renamed tool "
    "trying to pass an allowlist.",
    suppressible=False,
)

CREDENTIAL_OFF_INSTANCE = Rule(
    "imds-credential-off-instance",
    "Metadata-service credentials used away from their instance, task or VM",
    "Cloud logs show credentials that only a metadata service hands out (an EC2 instance-profile session, "
    "an ECS task or EKS pod session, a GCE VM's service-account token, an Azure VM's managed identity) used "
    "from an address that is not the workload's own.",
    suppressible=False,
)
HARDENING_REMOVED = Rule(
    "imds-hardening-removed",
    "Instance metadata service hardening removed",
    "A control-plane call makes IMDSv1 acceptable again (HttpTokens optional) or raises the PUT response "
    "hop limit, on an instance, the account defaults, a launch template or a launch.",
    suppressible=False,
)
LAUNCH_IMDSV1 = Rule(
    "imds-launch-imdsv1",
    "Instance launched without IMDSv2 required",
    "A new instance accepts IMDSv1 requests (informational: the AMI or account default allowed it).",
    suppressible=False,
)

RULES: tuple[Rule, ...] = (NETWORK_CONNECTION, COMMAND_LINE, HIDDEN_HOST, HTTP_REQUEST, HTTP_PROBING, DNS_QUERY,
                           AGENT_MASQUERADE, CREDENTIAL_OFF_INSTANCE, HARDENING_REMOVED, LAUNCH_IMDSV1)
RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
