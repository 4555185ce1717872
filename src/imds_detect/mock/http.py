"""The request and response the mock's providers see and return, independent of the HTTP server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from ..knowledge.endpoints import METADATA_HEADERS

# Headers worth logging: the metadata-specific ones (from the knowledge base) plus the usual suspects.
HEADERS_OF_INTEREST: tuple[str, ...] = tuple(dict.fromkeys(
    [key.split(":", 1)[0].strip().lower() for key in METADATA_HEADERS]
    + ["x-aliyun-ecs-metadata-token-ttl-seconds", "authorization", "host", "user-agent", "x-forwarded-for"]
))


@dataclass(frozen=True)
class Request:
    """One HTTP request as received."""

    method: str
    target: str  # path and query as sent
    headers: Mapping[str, str]  # lower-case names
    client: str = ""  # "ip:port"
    local: str = ""  # "ip:port" the request arrived on

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def interesting_headers(self) -> dict[str, str]:
        return {name: value for name, value in self.headers.items() if name in HEADERS_OF_INTEREST}


@dataclass
class Response:
    """What a provider answers. `ip_ttl` sets the IP TTL / hop limit of this response's packets."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    server: str = ""
    ip_ttl: int | None = None
    canaries: list[str] = field(default_factory=list)  # canary issue ids handed out in the body
    provider: str = ""


def text(status: int, body: str, headers: dict[str, str] | None = None,
         canaries: list[str] | None = None) -> Response:
    """A text/plain response."""
    return Response(status, body.encode(), "text/plain", dict(headers or {}), canaries=list(canaries or []))


def json_response(status: int, obj: object, pretty: bool = False, headers: dict[str, str] | None = None,
                  canaries: list[str] | None = None) -> Response:
    """An application/json response; `pretty` indents as AWS IMDS does (two spaces, `" : "`)."""
    body = json.dumps(obj, indent=2, separators=(",", " : ")) if pretty else json.dumps(obj)
    return Response(status, body.encode(), "application/json", dict(headers or {}), canaries=list(canaries or []))
