"""`imds-detect mock-imds`: run the mock metadata service on addresses of the user's choice."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import IO

import click

from .config import IMDSV2_MODES, MockConfig
from .server import Listener, MockServers, split_host_port
from .service import KINDS, MockImds, RequestLog

DEFAULT_LISTEN = "127.0.0.1:8169"
PREFIX = "imds-detect mock-imds:"


def _listeners(values: tuple[str, ...]) -> list[Listener]:
    try:
        return [Listener.parse(value) for value in values or (DEFAULT_LISTEN,)]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None


def _dns(values: tuple[str, ...]) -> list[tuple[str, int]]:
    try:
        return [split_host_port(value) for value in values]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--dns") from None


@click.command("mock-imds")
@click.option("--listen", "listens", multiple=True, metavar="ADDR:PORT[=KIND]",
              help=f"Serve here (repeatable; [v6addr]:port for IPv6; port 0 picks a free one) [default: "
                   f"{DEFAULT_LISTEN}]. KIND is {'|'.join(KINDS)}; by default 169.254.170.2 is ecs, "
                   "100.100.100.200 alibaba, anything else imds (AWS, Azure, GCP, DigitalOcean, Oracle by path).")
@click.option("--dns", "dns", multiple=True, metavar="ADDR:PORT",
              help="Also answer DNS (UDP) for the metadata names, e.g. metadata.google.internal (repeatable).")
@click.option("--imdsv2", type=click.Choice(IMDSV2_MODES), default="optional", show_default=True,
              help="AWS HttpTokens: 'required' refuses IMDSv1 reads without a session token.")
@click.option("--hop-limit", type=click.IntRange(1, 64), default=1, show_default=True,
              help="AWS HttpPutResponseHopLimit: the IP TTL of the token PUT response.")
@click.option("--role", default="imds-canary-role", show_default=True, help="Instance role name (AWS, Alibaba).")
@click.option("--alibaba-hardened", is_flag=True, help="Alibaba hardened mode: reads need a token.")
@click.option("--log", "log_path", default="-", metavar="FILE", show_default=True,
              help="Append one JSON line per request / DNS query to FILE ('-' = stdout).")
@click.option("--duration", type=click.FloatRange(min=0.0), default=None, metavar="SECONDS",
              help="Stop after SECONDS (default: until Ctrl-C or SIGTERM).")
def mock_imds_command(listens: tuple[str, ...], dns: tuple[str, ...], imdsv2: str, hop_limit: int, role: str,
                      alibaba_hardened: bool, log_path: str, duration: float | None) -> None:
    """Serve a mock cloud metadata service that hands out canary credentials and logs every request.

    Credentials contain IMDSCANARY plus a 6-hex issue id (logged with the request), so a later use of
    them is recognisable. The mock only answers; it never contacts anything.
    """
    config = MockConfig(imdsv2=imdsv2, hop_limit=hop_limit, role=role, alibaba_hardened=alibaba_hardened)
    listeners, resolvers = _listeners(listens), _dns(dns)
    stream: IO[str] = sys.stdout if log_path == "-" else open(log_path, "a", encoding="utf-8")  # noqa: SIM115
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        mock = MockImds(config, log=RequestLog(stream))
        try:
            servers = MockServers(mock, listeners, resolvers)
        except OSError as error:
            raise click.ClickException(f"cannot listen: {error}") from None
        with servers:
            for listener in servers.listeners:
                names = ", ".join(p.name for p in mock.providers[listener.kind])
                click.echo(f"{PREFIX} listening on {listener.url()} ({listener.kind}: {names})", err=True)
            for host, port in servers.dns_addresses:
                click.echo(f"{PREFIX} answering DNS on {host}:{port} (udp)", err=True)
            click.echo(f"{PREFIX} ready", err=True)
            stop.wait(duration)
    finally:
        if stream is not sys.stdout:
            stream.close()
