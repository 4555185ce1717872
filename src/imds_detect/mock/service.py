"""The mock metadata service: which providers answer on which listener, and the request log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Protocol

from ..knowledge.endpoints import address_info
from ..model import iso_utc
from .aws import Ec2Imds, EcsTaskMetadata
from .azure import AzureImds
from .canary import CanaryIssuer
from .config import MockConfig
from .gcp import GcpMetadata
from .http import Request, Response, text
from .others import AlibabaCloud, DigitalOcean, OracleCloud

# What a listener serves: "imds" = the shared 169.254.169.254 (AWS, Azure, GCP, DigitalOcean, Oracle by path).
KINDS = ("imds", "ecs", "alibaba")
_KIND_OF_PROVIDER = {"aws-ecs": "ecs", "alibaba": "alibaba"}
SERVER_HEADERS = {"aws": "EC2ws", "aws-ecs": "", "azure": "Microsoft-IIS/10.0", "digitalocean": "",
                  "oracle": "", "alibaba": "Tengine"}


class Provider(Protocol):
    name: str

    def handle(self, request: Request) -> Response | None: ...


def default_kind(address: str) -> str:
    """The listener kind a metadata address serves (from the knowledge base); "imds" otherwise."""
    info = address_info(address)
    return _KIND_OF_PROVIDER.get(info.provider, "imds") if info else "imds"


class RequestLog:
    """Every request (and DNS query) the mock answered; optionally streamed as JSON lines."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.entries: list[dict[str, object]] = []
        self._stream = stream
        self._lock = threading.Lock()

    def add(self, entry: dict[str, object]) -> None:
        entry = {"time": iso_utc(datetime.now(UTC)), **entry}
        with self._lock:
            self.entries.append(entry)
            if self._stream is not None:
                self._stream.write(json.dumps(entry) + "\n")
                self._stream.flush()


class MockImds:
    """Answers requests for every provider; one instance behind any number of listeners."""

    def __init__(self, config: MockConfig | None = None, clock: Callable[[], float] = time.time,
                 log: RequestLog | None = None) -> None:
        self.config = config or MockConfig()
        self.log = log or RequestLog()
        issuer = CanaryIssuer()
        self.providers: dict[str, tuple[Provider, ...]] = {
            "imds": (Ec2Imds(self.config, issuer, clock), AzureImds(issuer, clock), GcpMetadata(issuer, clock),
                     DigitalOcean(issuer), OracleCloud()),
            "ecs": (EcsTaskMetadata(self.config, issuer, clock),),
            "alibaba": (AlibabaCloud(self.config, issuer, clock),),
        }

    def handle(self, request: Request, kind: str = "imds") -> Response:
        """The response of the first provider that recognises the path; 404 otherwise."""
        for provider in self.providers[kind]:
            response = provider.handle(request)
            if response is not None:
                response.provider = response.provider or provider.name
                response.server = response.server or SERVER_HEADERS.get(response.provider, "")
                return response
        return text(404, "Not Found")

    def record(self, request: Request, response: Response, ip_ttl: int | None) -> None:
        """Log one answered request."""
        entry: dict[str, object] = {
            "kind": "http", "client": request.client, "local": request.local, "method": request.method,
            "target": request.target, "status": response.status, "provider": response.provider,
            "headers": request.interesting_headers(), "canaries": list(response.canaries),
        }
        if ip_ttl is not None:
            entry["ip_ttl"] = ip_ttl
        self.log.add(entry)
