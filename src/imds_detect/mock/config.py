"""How the mock instance is configured, and the identity it pretends to have."""

from __future__ import annotations

from dataclasses import dataclass

IMDSV2_MODES = ("optional", "required")


@dataclass(frozen=True)
class MockConfig:
    """Settings that change the mock's behaviour (the cloud-side instance options)."""

    imdsv2: str = "optional"  # AWS HttpTokens: "required" rejects IMDSv1 requests
    hop_limit: int = 1  # AWS HttpPutResponseHopLimit: IP TTL of the token PUT response
    role: str = "imds-canary-role"  # AWS/Alibaba role name
    alibaba_hardened: bool = False  # Alibaba "hardened mode": a token is required
    ecs_credentials_id: str = "6f0b5c4a-9d3e-4c1b-8a7f-2e5d1c0b9a8e"  # $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI id
    credential_lifetime: int = 6 * 3600  # seconds until handed-out credentials "expire"

    def __post_init__(self) -> None:
        if self.imdsv2 not in IMDSV2_MODES:
            raise ValueError(f"imdsv2 must be one of {', '.join(IMDSV2_MODES)}")
        if not 1 <= self.hop_limit <= 64:
            raise ValueError("hop_limit must be between 1 and 64 (as AWS allows)")


# The pretend instance (documentation example values: nothing real).
ACCOUNT_ID = "123456789012"
INSTANCE_ID = "i-0123456789abcdef0"
REGION = "eu-west-1"
ZONE = "eu-west-1a"
PRIVATE_IP = "10.0.1.15"
HOSTNAME = "ip-10-0-1-15.eu-west-1.compute.internal"
MAC = "02:00:0a:00:01:0f"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AZURE_VM_ID = "5b7a1d3e-0c0f-4fee-9a11-000000000001"
AZURE_CLIENT_ID = "5b7a1d3e-0c0f-4fee-9a11-000000000002"
GCP_PROJECT = "canary-project"
GCP_PROJECT_NUMBER = "123456789012"
GCP_SERVICE_ACCOUNT = "imds-canary@canary-project.iam.gserviceaccount.com"
