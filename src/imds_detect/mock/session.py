"""Token-protected access (AWS IMDSv2, Alibaba hardened mode): the token PUT and the check on every read."""

from __future__ import annotations

from dataclasses import dataclass

from .http import Request, Response
from .tokens import TokenStore, parse_ttl


def html_error(status: int, reason: str) -> Response:
    """The small HTML error page EC2-style metadata services answer with."""
    body = (f'<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html>\n<html><head><title>{status} - {reason}'
            f"</title></head><body><h1>{status} - {reason}</h1></body></html>\n")
    return Response(status, body.encode(), "text/html")


@dataclass
class SessionGuard:
    """Token issuance and checking for one provider."""

    tokens: TokenStore
    ttl_header: str  # lower case
    token_header: str  # lower case
    required: bool  # reads without a token are refused
    hop_limit: int | None = None  # IP TTL of the PUT response (AWS); None leaves the default

    def issue(self, request: Request) -> Response:
        """PUT <version>/api/token."""
        if request.method != "PUT":
            response = html_error(405, "Method Not Allowed")
            response.headers["Allow"] = "PUT"
            return response
        if request.header("x-forwarded-for") is not None:
            return html_error(403, "Forbidden")  # a token PUT relayed by a proxy is refused
        ttl = parse_ttl(request.header(self.ttl_header))
        if ttl is None:
            return html_error(400, "Missing or Invalid Parameters")
        token = self.tokens.issue(ttl)
        return Response(200, token.encode(), "text/plain", {self.ttl_header: str(ttl)}, ip_ttl=self.hop_limit)

    def refuse(self, request: Request) -> Response | None:
        """The error for a read whose token is missing (when required), unknown or expired; None if allowed."""
        state = self.tokens.state(request.header(self.token_header))
        if state == "valid" or (state == "missing" and not self.required):
            return None
        return html_error(401, "Unauthorized")
