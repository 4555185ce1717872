"""HTTP listeners for the mock (threaded, HTTP/1.1) plus optional DNS responders."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from .dns import DnsResponder
from .http import Request, Response
from .service import KINDS, MockImds, default_kind

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Listener:
    """An address, port and what it serves."""

    host: str
    port: int
    kind: str = "imds"

    @classmethod
    def parse(cls, text: str) -> Listener:
        """``ADDR:PORT`` or ``[V6ADDR]:PORT``, optionally ``=KIND``; the kind defaults from the address."""
        spec, _, kind = text.partition("=")
        host, port = split_host_port(spec)
        kind = kind or default_kind(host)
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} (expected {'|'.join(KINDS)})")
        return cls(host, port, kind)

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}"


def split_host_port(text: str) -> tuple[str, int]:
    """("fd00:ec2::254", 80) from "[fd00:ec2::254]:80"; ValueError when malformed."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected ADDR:PORT, got {text!r}")
    return host, int(port)


def _endpoint(address: tuple[object, ...]) -> str:
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # the mock keeps its own log
        pass

    def _serve(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length):
            self.rfile.read(min(int(length), MAX_BODY))
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          client=_endpoint(self.client_address), local=_endpoint(self.connection.getsockname()))
        response = self.server.mock.handle(request, self.server.kind)
        previous = self._ttl() if response.ip_ttl is not None else None
        applied = self._set_ttl(response.ip_ttl) if response.ip_ttl is not None else None
        self.server.mock.record(request, response, applied)  # logged before the client can see the answer
        try:
            self._send(response)
        finally:
            if previous is not None:
                self._set_ttl(previous)

    def _send(self, response: Response) -> None:
        self.server_version = response.server or "imds-detect-mock"
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    def _ttl_option(self) -> tuple[int, int]:
        if self.connection.family == socket.AF_INET6:
            return socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS
        return socket.IPPROTO_IP, socket.IP_TTL

    def _ttl(self) -> int:
        return int(self.connection.getsockopt(*self._ttl_option()))

    def _set_ttl(self, value: int) -> int:
        """Set the IP TTL (IPv6 hop limit) of this connection's packets; returns the value now in effect."""
        self.connection.setsockopt(*self._ttl_option(), value)
        return self._ttl()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listener: Listener, mock: MockImds) -> None:
        self.address_family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        self.mock = mock
        self.kind = listener.kind
        super().__init__((listener.host, listener.port), _Handler)


class MockServers:
    """Running listeners (and DNS responders); a context manager that stops them all."""

    def __init__(self, mock: MockImds, listeners: list[Listener], dns: list[tuple[str, int]] | None = None) -> None:
        self.mock = mock
        self._servers: list[_Server] = []
        self._dns: list[DnsResponder] = []
        self._threads: list[threading.Thread] = []
        try:
            for listener in listeners:
                server = _Server(listener, mock)
                self._servers.append(server)
                thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                          name=f"mock-{listener.kind}", daemon=True)
                thread.start()
                self._threads.append(thread)
            for host, port in dns or []:
                self._dns.append(DnsResponder(host, port, mock.log.add))
        except BaseException:
            self.close()
            raise

    @property
    def listeners(self) -> list[Listener]:
        """The listeners with their real ports (port 0 asks for a free one)."""
        return [Listener(str(s.server_address[0]), int(s.server_address[1]), s.kind) for s in self._servers]

    @property
    def dns_addresses(self) -> list[tuple[str, int]]:
        return [(str(r.address[0]), int(r.address[1])) for r in self._dns]

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for responder in self._dns:
            responder.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._servers, self._dns, self._threads = [], [], []

    def __enter__(self) -> MockServers:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
