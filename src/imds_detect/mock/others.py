"""DigitalOcean, Oracle Cloud and Alibaba Cloud metadata basics."""

from __future__ import annotations

import json
from collections.abc import Callable

from . import canary
from .aws import CredentialVault
from .config import PRIVATE_IP, MockConfig
from .http import Request, Response, json_response, text
from .session import SessionGuard, html_error
from .tokens import TokenStore
from .tree import Tree, listing, lookup


class DigitalOcean:
    """169.254.169.254/metadata/v1/ and /metadata/v1.json (no header needed)."""

    name = "digitalocean"

    def __init__(self, issuer: canary.CanaryIssuer) -> None:
        self._issue = issuer.new_id()
        secret = canary.user_secret(self._issue)
        self.tree: Tree = {
            "id": "123456789", "hostname": "canary-droplet", "region": "ams3",
            "user-data": f"#cloud-config\nwrite_files:\n- path: /etc/app.env\n  content: TOKEN={secret}\n",
            "vendor-data": "", "public-keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMDSCANARY canary",
            "interfaces": {"private": {"0": {"ipv4": {"address": PRIVATE_IP}}}},
            "tags": "canary",
        }

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if path == "/metadata/v1.json":
            data = {key.replace("-", "_"): value for key, value in self.tree.items() if isinstance(value, str)}
            return json_response(200, data, canaries=canary.find_canaries(json.dumps(data)))
        segments = [s for s in path.split("/") if s]
        if segments[:2] != ["metadata", "v1"]:
            return None
        node = lookup(self.tree, segments[2:])
        if node is None or callable(node):
            return text(404, "404 page not found")
        if isinstance(node, str):
            return text(200, node, canaries=canary.find_canaries(node))
        return text(200, listing(node))


class OracleCloud:
    """169.254.169.254/opc/v1/ (open) and /opc/v2/ (`Authorization: Bearer Oracle` required)."""

    name = "oracle"

    def handle(self, request: Request) -> Response | None:
        segments = [s for s in request.path.split("/") if s]
        if len(segments) < 2 or segments[0] != "opc" or segments[1] not in ("v1", "v2"):
            return None
        if segments[1] == "v2" and (request.header("authorization") or "") != "Bearer Oracle":
            return json_response(401, {"code": "NotAuthenticated",
                                       "message": "Authorization header missing or invalid"})
        instance = {"availabilityDomain": "Uocm:EU-FRANKFURT-1-AD-1", "compartmentId": "ocid1.compartment.oc1..canary",
                    "displayName": "canary-instance", "id": "ocid1.instance.oc1.eu-frankfurt-1.canary",
                    "region": "eu-frankfurt-1", "shape": "VM.Standard.E2.1.Micro"}
        rest = segments[2:]
        if not rest:
            return text(200, "instance/\nvnics/\nidentity/")
        if rest[0] == "instance":
            value: object = instance
            for key in rest[1:]:
                value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                return json_response(404, {"code": "NotFound", "message": "Not Found"})
            return json_response(200, value) if isinstance(value, dict) else text(200, str(value))
        if rest[0] == "vnics":
            return json_response(200, [{"privateIp": PRIVATE_IP, "vnicId": "ocid1.vnic.oc1..canary"}])
        return json_response(404, {"code": "NotFound", "message": "Not Found"})


class AlibabaCloud:
    """100.100.100.200/latest/...: RAM role credentials, optional token (hardened mode)."""

    name = "alibaba"
    TTL_HEADER = "x-aliyun-ecs-metadata-token-ttl-seconds"
    TOKEN_HEADER = "x-aliyun-ecs-metadata-token"

    def __init__(self, config: MockConfig, issuer: canary.CanaryIssuer, clock: Callable[[], float]) -> None:
        self.config = config
        self.vault = CredentialVault(issuer, clock, config.credential_lifetime, key_prefix="STS.")
        self.guard = SessionGuard(TokenStore(clock), self.TTL_HEADER, self.TOKEN_HEADER,
                                  required=config.alibaba_hardened)
        self.tree: Tree = {"meta-data": {
            "instance-id": "i-canary0000000000001", "region-id": "cn-hangzhou", "private-ipv4": PRIVATE_IP,
            "ram": {"security-credentials": {config.role: self._credentials}}}}

    def handle(self, request: Request) -> Response | None:
        segments = [s for s in request.path.split("/") if s]
        if not segments or segments[0] != "latest":
            return None
        if segments[1:] == ["api", "token"]:
            return self.guard.issue(request)
        refused = self.guard.refuse(request)
        if refused is not None:
            return refused
        node = lookup(self.tree, segments[1:])
        if node is None:
            return html_error(404, "Not Found")
        if callable(node):
            return node(request)
        return text(200, node if isinstance(node, str) else listing(node))

    def _credentials(self, request: Request) -> Response:
        issue, fields = self.vault.get(self.config.role)
        return json_response(200, {
            "AccessKeyId": fields["AccessKeyId"], "AccessKeySecret": canary.secret_key(issue, 30),
            "SecurityToken": fields["Token"], "Expiration": fields["Expiration"],
            "LastUpdated": fields["LastUpdated"], "Code": "Success"}, pretty=True, canaries=[issue])

