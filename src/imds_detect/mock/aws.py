"""AWS EC2 instance metadata (IMDSv1 and IMDSv2) and ECS task credentials."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from . import canary
from .config import ACCOUNT_ID, HOSTNAME, INSTANCE_ID, MAC, PRIVATE_IP, REGION, ZONE, MockConfig
from .http import Request, Response, json_response, text
from .session import SessionGuard, html_error
from .tokens import TokenStore
from .tree import Tree, listing, lookup

VERSIONS = ("1.0", "2007-01-19", "2016-09-02", "2019-10-01", "2021-07-15", "2022-09-24", "latest")
_DATE_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
TOKEN_TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"


def stamp(moment: datetime) -> str:
    """AWS credential timestamps: ISO 8601 UTC to the second with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CredentialVault:
    """Canary credentials per role: issued once and handed out again, as IMDS does until rotation."""

    def __init__(self, issuer: canary.CanaryIssuer, clock: Callable[[], float], lifetime: int,
                 key_prefix: str = "ASIA") -> None:
        self._issuer = issuer
        self._clock = clock
        self._lifetime = lifetime
        self._prefix = key_prefix
        self._issued: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, role: str) -> tuple[str, dict[str, str]]:
        """(issue id, credential fields) for `role`."""
        with self._lock:
            if role not in self._issued:
                self._issued[role] = (self._issuer.new_id(), datetime.fromtimestamp(self._clock(), UTC))
            issue, since = self._issued[role]
        return issue, {
            "AccessKeyId": canary.access_key_id(issue, self._prefix),
            "SecretAccessKey": canary.secret_key(issue),
            "Token": canary.session_token(issue),
            "LastUpdated": stamp(since),
            "Expiration": stamp(since + timedelta(seconds=self._lifetime)),
        }


class Ec2Imds:
    """169.254.169.254 / fd00:ec2::254 as an EC2 instance sees it."""

    name = "aws"

    def __init__(self, config: MockConfig, issuer: canary.CanaryIssuer, clock: Callable[[], float]) -> None:
        self.config = config
        self.issuer = issuer
        self.vault = CredentialVault(issuer, clock, config.credential_lifetime)
        self.guard = SessionGuard(TokenStore(clock), TOKEN_TTL_HEADER, TOKEN_HEADER,
                                  required=config.imdsv2 == "required", hop_limit=config.hop_limit)
        self._user_data_issue = issuer.new_id()
        self.tree = self._tree()

    def handle(self, request: Request) -> Response | None:
        segments = [s for s in request.path.split("/") if s]
        if not segments:
            return text(200, "\n".join(VERSIONS))
        version, rest = segments[0], segments[1:]
        if version != "latest" and not _DATE_VERSION.match(version):
            return None
        if rest == ["api", "token"]:
            return self.guard.issue(request)
        refused = self.guard.refuse(request)
        if refused is not None:
            return refused
        if request.method not in ("GET", "HEAD"):
            return html_error(405, "Method Not Allowed")
        if not rest:
            return text(200, "\n".join(self.tree))  # the version root lists its entries without slashes
        node = lookup(self.tree, rest)
        if node is None:
            return html_error(404, "Not Found")
        if callable(node):
            return node(request)
        return text(200, node if isinstance(node, str) else listing(node))

    # -- the tree ------------------------------------------------------------------------------------
    def _tree(self) -> Tree:
        role = self.config.role
        return {
            "dynamic": {"instance-identity": {"document": self._identity_document, "signature": "Y2FuYXJ5",
                                              "pkcs7": "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUA",
                                              "rsa2048": "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQME"}},
            "meta-data": {
                "ami-id": "ami-0abcdef1234567890",
                "ami-launch-index": "0",
                "hostname": HOSTNAME,
                "instance-id": INSTANCE_ID,
                "instance-type": "t3.micro",
                "local-hostname": HOSTNAME,
                "local-ipv4": PRIVATE_IP,
                "mac": MAC,
                "placement": {"availability-zone": ZONE, "region": REGION},
                "security-groups": "canary-sg",
                "iam": {"info": self._iam_info, "security-credentials": {role: self._role_credentials}},
                "identity-credentials": {"ec2": {
                    "info": json.dumps({"Code": "Success", "AccountId": ACCOUNT_ID}),
                    "security-credentials": {"ec2-instance": self._instance_credentials}}},
            },
            "user-data": self._user_data,
        }

    def _role_credentials(self, request: Request) -> Response:
        issue, fields = self.vault.get(self.config.role)
        body = {"Code": "Success", "LastUpdated": fields["LastUpdated"], "Type": "AWS-HMAC",
                "AccessKeyId": fields["AccessKeyId"], "SecretAccessKey": fields["SecretAccessKey"],
                "Token": fields["Token"], "Expiration": fields["Expiration"]}
        return json_response(200, body, pretty=True, canaries=[issue])

    def _instance_credentials(self, request: Request) -> Response:
        issue, fields = self.vault.get("ec2-instance")
        body = {"Code": "Success", "LastUpdated": fields["LastUpdated"], "Type": "AWS-HMAC",
                "AccessKeyId": fields["AccessKeyId"], "SecretAccessKey": fields["SecretAccessKey"],
                "Token": fields["Token"], "Expiration": fields["Expiration"]}
        return json_response(200, body, pretty=True, canaries=[issue])

    def _iam_info(self, request: Request) -> Response:
        _, fields = self.vault.get(self.config.role)
        return json_response(200, {
            "Code": "Success", "LastUpdated": fields["LastUpdated"],
            "InstanceProfileArn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{self.config.role}",
            "InstanceProfileId": "AIPAIMDSCANARYPROFILE"}, pretty=True)

    def _identity_document(self, request: Request) -> Response:
        return json_response(200, {
            "accountId": ACCOUNT_ID, "architecture": "x86_64", "availabilityZone": ZONE,
            "billingProducts": None, "devpayProductCodes": None, "marketplaceProductCodes": None,
            "imageId": "ami-0abcdef1234567890", "instanceId": INSTANCE_ID, "instanceType": "t3.micro",
            "kernelId": None, "pendingTime": "2024-05-14T10:00:00Z", "privateIp": PRIVATE_IP, "ramdiskId": None,
            "region": REGION, "version": "2017-09-30"}, pretty=True)

    def _user_data(self, request: Request) -> Response:
        secret = canary.user_secret(self._user_data_issue)
        script = ("#!/bin/bash\n# imds-detect mock user-data: the password below is a canary\n"
                  f"export DB_PASSWORD='{secret}'\n/opt/app/start.sh\n")
        return text(200, script, canaries=[self._user_data_issue])


class EcsTaskMetadata:
    """169.254.170.2: ECS task-role credentials (v2) and task metadata."""

    name = "aws-ecs"

    def __init__(self, config: MockConfig, issuer: canary.CanaryIssuer, clock: Callable[[], float]) -> None:
        self.config = config
        self.vault = CredentialVault(issuer, clock, config.credential_lifetime)

    def handle(self, request: Request) -> Response | None:
        segments = [s for s in request.path.split("/") if s]
        if segments[:2] == ["v2", "credentials"]:
            if segments[2:] != [self.config.ecs_credentials_id]:
                return json_response(400, {"code": "InvalidIdInRequest",
                                           "message": "CredentialsV2Request: Credentials not found"})
            issue, fields = self.vault.get("ecs-task-" + self.config.ecs_credentials_id)
            return json_response(200, {
                "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{self.config.role}",
                "AccessKeyId": fields["AccessKeyId"], "SecretAccessKey": fields["SecretAccessKey"],
                "Token": fields["Token"], "Expiration": fields["Expiration"]}, canaries=[issue])
        if segments[:2] == ["v2", "metadata"] or (len(segments) >= 2 and segments[0] == "v4"):
            return json_response(200, {
                "Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/canary",
                "TaskARN": f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task/canary/0123456789abcdef",
                "Family": "canary-task", "Revision": "1", "DesiredStatus": "RUNNING",
                "KnownStatus": "RUNNING", "AvailabilityZone": ZONE})
        return None
