"""GCP metadata server: `Metadata-Flavor: Google` required, service-account tokens, recursive listings."""

from __future__ import annotations

from collections.abc import Callable

from . import canary
from .config import GCP_PROJECT, GCP_PROJECT_NUMBER, GCP_SERVICE_ACCOUNT, PRIVATE_IP
from .http import Request, Response, json_response, text
from .tree import Tree, listing, lookup, to_json

SERVER = "Metadata Server for VM"
TOKEN_LIFETIME = 3599
SCOPES = "https://www.googleapis.com/auth/cloud-platform"


def camel(name: str) -> str:
    """GCP's recursive JSON keys: machine-type -> machineType."""
    head, *tail = name.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in tail)


class GcpMetadata:
    """169.254.169.254 / metadata.google.internal /computeMetadata/v1/..."""

    name = "gcp"

    def __init__(self, issuer: canary.CanaryIssuer, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self.clock = clock
        self._script_issue = issuer.new_id()
        self.tree = self._tree()

    def handle(self, request: Request) -> Response | None:
        segments = [s for s in request.path.split("/") if s]
        if not segments or segments[0] != "computeMetadata":
            return None
        response = self._answer(request, segments[1:])
        response.headers["Metadata-Flavor"] = "Google"
        response.server = SERVER
        return response

    def _answer(self, request: Request, segments: list[str]) -> Response:
        if request.header("x-forwarded-for") is not None:
            return self._forbidden(request, "Request had X-Forwarded-For header and was rejected.")
        if request.header("metadata-flavor") != "Google":
            return self._forbidden(request, "Missing Metadata-Flavor:Google header.")
        if not segments:
            return text(200, "v1/")
        if segments[0] != "v1":
            return text(404, "Not Found")
        node = lookup(self.tree, segments[1:])
        if node is None:
            return text(404, "Not Found")
        if callable(node):
            return node(request)
        if isinstance(node, str):
            return text(200, node, canaries=canary.find_canaries(node))
        if request.query.get("recursive", "").lower() == "true":
            data = to_json(node, camel)
            return json_response(200, data, canaries=canary.find_canaries(str(data)))
        return text(200, listing(node))

    @staticmethod
    def _forbidden(request: Request, why: str) -> Response:
        body = (f"<!DOCTYPE html>\n<html lang=en><title>Error 403 (Forbidden)!!1</title>"
                f"<p><b>403.</b> <ins>That's an error.</ins><p>Your client does not have permission to get URL "
                f"<code>{request.path}</code> from this server. {why} <ins>That's all we know.</ins>\n")
        return Response(403, body.encode(), "text/html; charset=UTF-8")

    def _tree(self) -> Tree:
        account: Tree = {"aliases": "default", "email": GCP_SERVICE_ACCOUNT, "scopes": SCOPES,
                         "token": self._token, "identity": self._identity}
        secret = canary.user_secret(self._script_issue)
        return {
            "instance": {
                "attributes": {"startup-script": f"#!/bin/bash\nexport API_KEY='{secret}'\n",
                               "enable-oslogin": "TRUE"},
                "hostname": "canary-vm.europe-west1-b.c.canary-project.internal",
                "id": "1234567890123456789",
                "machine-type": f"projects/{GCP_PROJECT_NUMBER}/machineTypes/e2-micro",
                "name": "canary-vm",
                "zone": f"projects/{GCP_PROJECT_NUMBER}/zones/europe-west1-b",
                "network-interfaces": {"0": {"ip": PRIVATE_IP, "network": f"projects/{GCP_PROJECT_NUMBER}/"
                                                                            "networks/default"}},
                "service-accounts": {"default": account, GCP_SERVICE_ACCOUNT: account},
            },
            "project": {"project-id": GCP_PROJECT, "numeric-project-id": GCP_PROJECT_NUMBER,
                        "attributes": {"ssh-keys": "canary:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMDSCANARY canary"}},
        }

    def _token(self, request: Request) -> Response:
        issue = self.issuer.new_id()
        return json_response(200, {"access_token": canary.bearer_token(issue, "ya29."),
                                   "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}, canaries=[issue])

    def _identity(self, request: Request) -> Response:
        audience = request.query.get("audience", "")
        if not audience:
            return text(400, "non-empty audience parameter required")
        issue = self.issuer.new_id()
        now = int(self.clock())
        token = canary.jwt(issue, {"aud": audience, "iss": "https://accounts.google.com",
                                   "email": GCP_SERVICE_ACCOUNT, "iat": now, "exp": now + 3600})
        return text(200, token, canaries=[issue])
