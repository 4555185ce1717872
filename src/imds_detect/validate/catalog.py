"""The tests `validate` runs: the reference detection's four atomic tests, the public Atomic Red Team
T1552.005 tests that run on Linux, and an allowlisted agent that must not alert.

Every network command of a test is one step (one process); the shell glue of the original one-liners
(``TOKEN=$(curl ...) && curl -H "...: $TOKEN" ...``) is done by the runner, which puts a step's output
into later steps where they say ``{{name}}``. So each tool runs with exactly the command line it has in
the test, and the real run and the synthetic rendering share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..knowledge.agents import AGENTS

IMDS = "http://169.254.169.254"
AWS_ROLES = f"{IMDS}/latest/meta-data/iam/security-credentials/"
SSRF_FETCH = ("import sys, urllib.request\n"
              "# a vulnerable 'fetch this URL for me' feature; the attacker controls the URL\n"
              "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
AGENT_ID = "aws-ssm-agent"


@dataclass(frozen=True)
class Expectation:
    """The alert a test must raise: provider and path class of the metadata endpoint."""

    provider: str
    path_class: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.path_class}"


@dataclass(frozen=True)
class Step:
    """One process the test starts. `save_as` keeps its stdout (stripped) for ``{{name}}`` in later steps."""

    argv: tuple[str, ...]
    save_as: str | None = None

    def resolve(self, saved: dict[str, str]) -> tuple[str, ...]:
        out = []
        for arg in self.argv:
            for name, value in saved.items():
                arg = arg.replace("{{" + name + "}}", value)
            out.append(arg)
        return tuple(out)


@dataclass(frozen=True)
class AtomicTest:
    """A test: what it runs, what telemetry it should produce and what imds-detect must make of it."""

    id: str
    name: str
    origin: str
    expected_signal: str
    steps: tuple[Step, ...]
    expect: Expectation | None  # None: must NOT alert (an allowlisted agent)
    requires: tuple[str, ...] = ()  # programs that must exist (else the test is skipped)
    response_fields: tuple[str, ...] = ()  # what the last step's output must contain
    dns_names: tuple[str, ...] = ()  # names the test must resolve
    staged: tuple[str, ...] = field(default=())  # executables the sandbox must provide (copies of curl)


def agent_path(agent_id: str = AGENT_ID) -> str:
    """The first literal (non-glob) executable path of an allowlisted agent in the knowledge base."""
    agent = next(a for a in AGENTS if a.id == agent_id)
    return next(p for p in agent.paths if p.startswith("/") and not any(c in p for c in "*?["))


def _curl(*args: str, save_as: str | None = None) -> Step:
    return Step(("curl", "-s", *args), save_as)


def catalog() -> tuple[AtomicTest, ...]:
    """Every test, in run order."""
    agent = agent_path()
    token_header = "X-aws-ec2-metadata-token: {{token}}"
    return (
        AtomicTest(
            "ref-1-aws-iam-curl", "Query AWS Instance Metadata for IAM Credentials", "reference test plan #1",
            "auditd EXECVE for curl with 169.254.169.254 metadata URLs; CONNECT to 169.254.169.254:80; "
            "connection in /proc/net/tcp; IMDS access log",
            (_curl(AWS_ROLES, save_as="role"), _curl(AWS_ROLES + "{{role}}")),
            Expectation("aws", "credential"), ("curl",), ("AccessKeyId", "SecretAccessKey", "Token")),
        AtomicTest(
            "ref-2-azure-mi-token", "Query Azure IMDS for Managed Identity Token", "reference test plan #2",
            "auditd EXECVE for curl with 169.254.169.254 and metadata/identity in args; HTTP connection to "
            "169.254.169.254; response has access_token, token_type, expires_in",
            (_curl("-H", "Metadata: true",
                   f"{IMDS}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"),),
            Expectation("azure", "token"), ("curl",), ("access_token", "token_type", "expires_in")),
        AtomicTest(
            "ref-3-gcp-sa-token", "Query GCP Instance Metadata for Service Account Token", "reference test plan #3",
            "auditd EXECVE for curl with metadata.google.internal URL; DNS resolution of metadata.google.internal "
            "(169.254.169.254); connection to 169.254.169.254:80",
            (_curl("-H", "Metadata-Flavor: Google",
                   "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"),),
            Expectation("gcp", "token"), ("curl",), ("access_token", "expires_in", "token_type"),
            dns_names=("metadata.google.internal",)),
        AtomicTest(
            "ref-4-python-ssrf", "Steal Cloud Credentials via Python SSRF Simulation", "reference test plan #4",
            "auditd EXECVE for python3 with a 169.254.169.254 URL in the command; CONNECT from python3 to "
            "169.254.169.254; an unexpected process (python3) on the metadata API",
            (Step(("python3", "-c", SSRF_FETCH, AWS_ROLES), "role"),
             Step(("python3", "-c", SSRF_FETCH, AWS_ROLES + "{{role}}"))),
            Expectation("aws", "credential"), ("python3",), ("AccessKeyId", "SecretAccessKey", "Token")),
        AtomicTest(
            "art-aws-imdsv2-creds", "AWS IMDSv2 credential retrieval (curl, session token)", "Atomic Red Team (Linux)",
            "EXECVE for curl PUT /latest/api/token, then GETs with X-aws-ec2-metadata-token; connections to "
            "169.254.169.254:80",
            (_curl("-X", "PUT", f"{IMDS}/latest/api/token", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 21600",
                   save_as="token"),
             _curl("-H", token_header, AWS_ROLES, save_as="role"),
             _curl("-H", token_header, AWS_ROLES + "{{role}}")),
            Expectation("aws", "credential"), ("curl",), ("AccessKeyId", "SecretAccessKey", "Token")),
        AtomicTest(
            "art-azure-pwsh-instance", "Azure - Dump Azure Instance Metadata from Virtual Machines (pwsh)",
            "Atomic Red Team (PowerShell)",
            "process creation of pwsh with Invoke-RestMethod and a 169.254.169.254 /metadata/instance URL; "
            "connection to 169.254.169.254:80",
            (Step(("pwsh", "-NoProfile", "-NonInteractive", "-Command",
                   'Invoke-RestMethod -Headers @{"Metadata"="true"} -Method GET -Uri '
                   f'"{IMDS}/metadata/instance?api-version=2021-02-01" | ConvertTo-Json -Depth 64')),),
            Expectation("azure", "metadata"), ("pwsh",), ("compute",)),
        AtomicTest(
            "agent-aws-ssm", f"Allowlisted agent ({AGENT_ID} at {agent}) reading role credentials with IMDSv2",
            "harness (must not alert)",
            "EXECVE and CONNECT by the agent's own executable path; suppressed by the default allowlist",
            (Step((agent, "-s", "-X", "PUT", f"{IMDS}/latest/api/token", "-H",
                   "X-aws-ec2-metadata-token-ttl-seconds: 21600"), "token"),
             Step((agent, "-s", "-H", token_header, AWS_ROLES), "role"),
             Step((agent, "-s", "-H", token_header, AWS_ROLES + "{{role}}"))),
            None, ("curl",), ("AccessKeyId",), staged=(agent,)),
    )
