"""Azure Instance Metadata Service: `Metadata: true` required, api-version required, managed identity tokens."""

from __future__ import annotations

import base64
from collections.abc import Callable

from . import canary
from .config import AZURE_CLIENT_ID, AZURE_SUBSCRIPTION, AZURE_VM_ID, PRIVATE_IP
from .http import Request, Response, json_response, text

API_VERSIONS = ("2017-03-01", "2018-02-01", "2019-08-15", "2020-09-01", "2021-02-01", "2021-12-13", "2023-07-01")
_SECTIONS = ("instance", "identity", "attested", "scheduledevents", "versions", "loadbalancer")
TOKEN_LIFETIME = 86399


def _error(message: str) -> Response:
    return json_response(400, {"error": message})


class AzureImds:
    """169.254.169.254/metadata/... as an Azure VM sees it."""

    name = "azure"

    def __init__(self, issuer: canary.CanaryIssuer, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self.clock = clock
        self._user_data_issue = issuer.new_id()

    def handle(self, request: Request) -> Response | None:
        segments = [s for s in request.path.split("/") if s]
        if len(segments) < 2 or segments[0] != "metadata" or segments[1].lower() not in _SECTIONS:
            return None
        if request.header("x-forwarded-for") is not None:
            return _error("Bad request. Requests with X-Forwarded-For header are not allowed.")
        if (request.header("metadata") or "").strip().lower() != "true":
            return _error("Bad request. Required metadata header not specified")
        section = segments[1].lower()
        if section == "versions":
            return json_response(200, {"apiVersions": list(API_VERSIONS)})
        if "api-version" not in request.query:
            return json_response(400, {"error": "Bad request. api-version was not specified in the request. "
                                                "For more information refer to aka.ms/azureimds",
                                       "newest-versions": list(API_VERSIONS[::-1][:3])})
        if section == "identity":
            return self._identity(request, segments[2:])
        if section == "instance":
            return self._instance(request, segments[2:])
        if section == "attested":
            return json_response(200, {"encoding": "pkcs7", "signature": "MIILiQYJKoZIhvcNAQcCoIILejCCC3YCAQEx"})
        if section == "scheduledevents":
            return json_response(200, {"DocumentIncarnation": 0, "Events": []})
        return json_response(200, {"loadbalancer": {"publicIpAddresses": [], "inboundRules": [], "outboundRules": []}})

    def _identity(self, request: Request, rest: list[str]) -> Response:
        if [s.lower() for s in rest] == ["info"]:
            return json_response(200, {"tenantId": "00000000-0000-0000-0000-0000000000aa"})
        if [s.lower() for s in rest] != ["oauth2", "token"]:
            return json_response(404, {"error": "Not found"})
        resource = request.query.get("resource", "")
        if not resource:
            return json_response(400, {"error": "invalid_request",
                                       "error_description": "Required audience parameter not specified"})
        issue = self.issuer.new_id()
        now = int(self.clock())
        token = canary.jwt(issue, {"aud": resource, "iss": "https://sts.windows.net/canary/",
                                   "appid": AZURE_CLIENT_ID, "iat": now, "exp": now + TOKEN_LIFETIME})
        return json_response(200, {
            "access_token": token, "client_id": AZURE_CLIENT_ID, "expires_in": str(TOKEN_LIFETIME),
            "expires_on": str(now + TOKEN_LIFETIME), "ext_expires_in": str(TOKEN_LIFETIME),
            "not_before": str(now), "resource": resource, "token_type": "Bearer"}, canaries=[issue])

    def _instance(self, request: Request, rest: list[str]) -> Response:
        node: object = self._document()
        for segment in rest:
            if isinstance(node, dict):
                match = next((key for key in node if key.lower() == segment.lower()), None)
                if match is None:
                    return json_response(404, {"error": "Not found"})
                node = node[match]
            elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return json_response(404, {"error": "Not found"})
        canaries = [self._user_data_issue] if canary.is_canary(str(node)) else []
        if request.query.get("format") == "text" and not isinstance(node, (dict, list)):
            return text(200, str(node), canaries=canaries)
        return json_response(200, node, canaries=canaries)

    def _document(self) -> dict[str, object]:
        secret = canary.user_secret(self._user_data_issue)
        user_data = base64.b64encode(f"#!/bin/sh\nexport APP_SECRET='{secret}'\n".encode()).decode()
        return {
            "compute": {
                "azEnvironment": "AzurePublicCloud", "location": "westeurope", "name": "canary-vm",
                "osType": "Linux", "resourceGroupName": "canary-rg", "subscriptionId": AZURE_SUBSCRIPTION,
                "vmId": AZURE_VM_ID, "vmSize": "Standard_B1s", "tags": "", "userData": user_data,
                "customData": "",
            },
            "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": PRIVATE_IP,
                                                                "publicIpAddress": ""}],
                                                "subnet": [{"address": "10.0.1.0", "prefix": "24"}]},
                                       "macAddress": "000D3A000001"}]},
        }

