"""The mock metadata service (`imds-detect mock-imds`): responses, header enforcement, tokens, canaries, log.

Everything here listens on 127.0.0.1 (or ::1) with a free port and needs no privileges.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imds_detect.mock import CANARY_PATTERN, Listener, MockConfig, MockImds, MockServers, find_canaries, is_canary
from imds_detect.mock.canary import access_key_id, jwt
from imds_detect.mock.dns import answer, parse_query

ROOT = Path(__file__).resolve().parent.parent
ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


class Client:
    """A keep-alive HTTP client for one listener."""

    def __init__(self, listener: Listener) -> None:
        self.connection = http.client.HTTPConnection(listener.host, listener.port, timeout=10)

    def call(self, method: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        self.connection.request(method, target, headers=headers or {})
        response = self.connection.getresponse()
        body = response.read().decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def get(self, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        return self.call("GET", target, headers)


@contextmanager
def serving(config: MockConfig | None = None, kind: str = "imds", clock: list[float] | None = None,
            host: str = "127.0.0.1") -> Iterator[tuple[MockImds, Client]]:
    """A mock with one listener of `kind` on a free port; `clock` (a one-element list) drives token expiry."""
    mock = MockImds(config, clock=(lambda: clock[0]) if clock is not None else time.time)
    with MockServers(mock, [Listener(host, 0, kind)]) as servers:
        yield mock, Client(servers.listeners[0])


def put_token(client: Client, ttl: str = "21600") -> str:
    status, headers, token = client.call("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert status == 200
    assert headers["x-aws-ec2-metadata-token-ttl-seconds"] == ttl
    return token


# -- AWS EC2 ---------------------------------------------------------------------------------------------------

def test_imdsv2_flow_hands_out_canary_role_credentials() -> None:
    with serving() as (mock, client):
        token = put_token(client)
        auth = {"X-aws-ec2-metadata-token": token}
        status, headers, role = client.get(ROLE_PATH, auth)
        assert (status, role) == (200, "imds-canary-role")
        assert headers["server"] == "EC2ws"
        status, _, body = client.get(ROLE_PATH + role, auth)
    creds = json.loads(body)
    assert status == 200 and creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
    assert '"Code" : "Success"' in body  # IMDS's own pretty-printing
    assert re.fullmatch(r"ASIAIMDSCANARY[0-9A-F]{6}", creds["AccessKeyId"])
    issue = find_canaries(creds["AccessKeyId"])
    assert len(issue) == 1 and len(creds["SecretAccessKey"]) == 40
    assert find_canaries(creds["SecretAccessKey"]) == issue == find_canaries(creds["Token"])
    assert creds["Expiration"] > creds["LastUpdated"]
    logged = mock.log.entries[-1]
    assert logged["canaries"] == issue and logged["status"] == 200 and logged["provider"] == "aws"


def test_same_role_credentials_until_rotation_and_imdsv1_allowed_when_optional() -> None:
    with serving() as (_, client):
        first = json.loads(client.get(ROLE_PATH + "imds-canary-role")[2])
        second = json.loads(client.get(ROLE_PATH + "imds-canary-role")[2])
        assert client.get(ROLE_PATH + "no-such-role")[0] == 404
    assert first["AccessKeyId"] == second["AccessKeyId"]


@pytest.mark.parametrize(("ttl", "status"), [("0", 400), ("21601", 400), ("abc", 400), ("-5", 400), (None, 400),
                                             ("1", 200), ("21600", 200)])
def test_token_ttl_must_be_1_to_21600(ttl: str | None, status: int) -> None:
    headers = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    with serving() as (_, client):
        assert client.call("PUT", "/latest/api/token", headers)[0] == status


def test_token_endpoint_wants_put_and_refuses_forwarded_requests() -> None:
    with serving() as (_, client):
        status, headers, _ = client.get("/latest/api/token")
        assert (status, headers["allow"]) == (405, "PUT")
        forwarded = {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "203.0.113.9"}
        assert client.call("PUT", "/latest/api/token", forwarded)[0] == 403


def test_token_expires_after_its_ttl() -> None:
    clock = [1000.0]
    with serving(clock=clock) as (_, client):
        auth = {"X-aws-ec2-metadata-token": put_token(client, "10")}
        clock[0] = 1009.9
        assert client.get("/latest/meta-data/instance-id", auth)[:3:2] == (200, "i-0123456789abcdef0")
        clock[0] = 1010.0
        assert client.get("/latest/meta-data/instance-id", auth)[0] == 401


def test_imdsv2_required_refuses_reads_without_a_valid_token() -> None:
    with serving(MockConfig(imdsv2="required")) as (_, client):
        assert client.get(ROLE_PATH)[0] == 401
        assert client.get(ROLE_PATH, {"X-aws-ec2-metadata-token": "AQAEAforged"})[0] == 401
        assert client.get(ROLE_PATH, {"X-aws-ec2-metadata-token": put_token(client)})[0] == 200
    with serving(MockConfig(imdsv2="optional")) as (_, client):
        assert client.get(ROLE_PATH)[0] == 200  # IMDSv1
        assert client.get(ROLE_PATH, {"X-aws-ec2-metadata-token": "AQAEAforged"})[0] == 401  # a bad token never passes


@pytest.mark.parametrize("hop_limit", [1, 2])
def test_hop_limit_is_the_ip_ttl_of_the_token_response_only(hop_limit: int) -> None:
    with serving(MockConfig(hop_limit=hop_limit)) as (mock, client):
        token = put_token(client)
        client.get("/latest/meta-data/", {"X-aws-ec2-metadata-token": token})  # same keep-alive connection
    put, get = mock.log.entries
    assert put["ip_ttl"] == hop_limit  # read back from the socket after setting it
    assert "ip_ttl" not in get


def test_mock_config_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        MockConfig(imdsv2="sometimes")
    with pytest.raises(ValueError):
        MockConfig(hop_limit=0)


def test_user_data_identity_document_and_listings() -> None:
    with serving() as (_, client):
        status, _, versions = client.get("/")
        assert status == 200 and versions.splitlines()[-1] == "latest"
        assert client.get("/latest/")[2].splitlines() == ["dynamic", "meta-data", "user-data"]
        listing = client.get("/latest/meta-data/")[2].splitlines()
        assert {"iam/", "instance-id", "placement/"} <= set(listing)
        user_data = client.get("/latest/user-data")[2]
        document = json.loads(client.get("/latest/dynamic/instance-identity/document")[2])
        assert client.get("/2021-07-15/meta-data/instance-id")[2] == "i-0123456789abcdef0"
        assert client.get("/latest/meta-data/nothing-here")[0] == 404
    assert user_data.startswith("#!/bin/bash") and is_canary(user_data)
    assert (document["accountId"], document["instanceId"], document["region"]) == (
        "123456789012", "i-0123456789abcdef0", "eu-west-1")


def test_ecs_task_credentials_need_the_task_credential_id() -> None:
    config = MockConfig()
    with serving(config, kind="ecs") as (_, client):
        status, _, body = client.get(f"/v2/credentials/{config.ecs_credentials_id}")
        assert client.get("/v2/credentials/00000000-0000-0000-0000-000000000000")[0] == 400
        assert json.loads(client.get("/v2/metadata")[2])["Family"] == "canary-task"
        assert client.get("/latest/meta-data/")[0] == 404  # not an EC2 IMDS
    creds = json.loads(body)
    assert status == 200 and creds["RoleArn"].endswith(":role/imds-canary-role")
    assert CANARY_PATTERN.search(creds["AccessKeyId"]) and creds["AccessKeyId"].startswith("ASIA")


# -- Azure -----------------------------------------------------------------------------------------------------

TOKEN_URL = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"


def test_azure_requires_metadata_header_and_api_version() -> None:
    with serving() as (_, client):
        status, _, body = client.get(TOKEN_URL)
        assert status == 400 and "Required metadata header not specified" in json.loads(body)["error"]
        assert client.get(TOKEN_URL, {"Metadata": "false"})[0] == 400
        status, _, body = client.get("/metadata/instance", {"Metadata": "true"})
        assert status == 400 and "api-version" in json.loads(body)["error"]
        forwarded = {"Metadata": "true", "X-Forwarded-For": "203.0.113.9"}
        assert client.get(TOKEN_URL, forwarded)[0] == 400
        assert client.get("/metadata/versions", {"Metadata": "true"})[0] == 200


def test_azure_managed_identity_token_and_instance_metadata() -> None:
    with serving() as (mock, client):
        status, _, body = client.get(TOKEN_URL, {"Metadata": "true"})
        no_resource = client.get("/metadata/identity/oauth2/token?api-version=2018-02-01", {"Metadata": "true"})
        instance = json.loads(client.get("/metadata/instance?api-version=2021-02-01", {"Metadata": "true"})[2])
        name = client.get("/metadata/instance/compute/name?api-version=2021-02-01&format=text", {"Metadata": "true"})
    token = json.loads(body)
    assert status == 200 and token["token_type"] == "Bearer" and token["resource"] == "https://management.azure.com/"
    assert {"access_token", "expires_in", "expires_on", "client_id"} <= set(token)
    assert token["access_token"].count(".") == 2 and is_canary(token["access_token"])
    assert mock.log.entries[0]["canaries"] == find_canaries(token["access_token"])
    assert no_resource[0] == 400 and json.loads(no_resource[2])["error"] == "invalid_request"
    assert instance["compute"]["vmSize"] == "Standard_B1s" and name[2] == "canary-vm"


# -- GCP -------------------------------------------------------------------------------------------------------

SA_TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token"


def test_gcp_requires_metadata_flavor_and_answers_with_it() -> None:
    with serving() as (_, client):
        status, headers, body = client.get(SA_TOKEN)
        assert status == 403 and "Missing Metadata-Flavor:Google header" in body
        assert headers["metadata-flavor"] == "Google"
        assert client.get(SA_TOKEN, {"Metadata-Flavor": "google"})[0] == 403  # the value is exact
        assert client.get(SA_TOKEN, {"Metadata-Flavor": "Google", "X-Forwarded-For": "203.0.113.9"})[0] == 403
        status, headers, body = client.get(SA_TOKEN, {"Metadata-Flavor": "Google"})
    token = json.loads(body)
    assert status == 200 and headers["server"] == "Metadata Server for VM"
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3599
    assert token["access_token"].startswith("ya29.IMDSCANARY")


def test_gcp_listings_recursive_json_and_identity_token() -> None:
    google = {"Metadata-Flavor": "Google"}
    with serving() as (_, client):
        listing = client.get("/computeMetadata/v1/instance/service-accounts/", google)[2].splitlines()
        tree = json.loads(client.get("/computeMetadata/v1/instance/?recursive=true", google)[2])
        identity = client.get("/computeMetadata/v1/instance/service-accounts/default/identity", google)
        with_audience = client.get(
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://example.test", google)
    assert "default/" in listing
    assert tree["machineType"].endswith("e2-micro")  # keys in camelCase, as GCP writes them
    default = tree["serviceAccounts"]["default"]
    assert default["email"].endswith(".iam.gserviceaccount.com") and "token" not in default
    assert is_canary(tree["attributes"]["startupScript"])
    assert identity[0] == 400 and with_audience[0] == 200 and with_audience[2].count(".") == 2


# -- DigitalOcean, Oracle, Alibaba -----------------------------------------------------------------------------

def test_digitalocean_and_oracle_basics() -> None:
    with serving() as (_, client):
        listing = client.get("/metadata/v1/")[2].splitlines()
        droplet = json.loads(client.get("/metadata/v1.json")[2])
        oracle_v2 = client.get("/opc/v2/instance/")
        oracle_v2_ok = client.get("/opc/v2/instance/", {"Authorization": "Bearer Oracle"})
        oracle_v1 = client.get("/opc/v1/instance/region")
    assert {"user-data", "hostname", "interfaces/"} <= set(listing)
    assert is_canary(droplet["user_data"])
    assert oracle_v2[0] == 401
    assert oracle_v2_ok[0] == 200 and json.loads(oracle_v2_ok[2])["shape"] == "VM.Standard.E2.1.Micro"
    assert oracle_v1[:3:2] == (200, "eu-frankfurt-1")


def test_alibaba_ram_credentials_and_hardened_mode() -> None:
    base = "/latest/meta-data/ram/security-credentials/"
    with serving(kind="alibaba") as (_, client):
        role = client.get(base)[2]
        creds = json.loads(client.get(base + role)[2])
    assert role == "imds-canary-role" and creds["AccessKeyId"].startswith("STS.IMDSCANARY")
    assert is_canary(creds["SecurityToken"]) and creds["Code"] == "Success"
    with serving(MockConfig(alibaba_hardened=True), kind="alibaba") as (_, client):
        assert client.get(base)[0] == 401
        status, _, token = client.call("PUT", "/latest/api/token",
                                       {"X-aliyun-ecs-metadata-token-ttl-seconds": "60"})
        assert status == 200
        assert client.get(base, {"X-aliyun-ecs-metadata-token": token})[0] == 200


def test_request_log_has_method_path_client_and_only_interesting_headers() -> None:
    with serving() as (mock, client):
        client.get(SA_TOKEN, {"Metadata-Flavor": "Google", "X-Custom": "nope", "User-Agent": "curl/8.0"})
        client.get("/nowhere")
    first, second = mock.log.entries
    assert first["method"] == "GET" and first["target"] == SA_TOKEN and first["provider"] == "gcp"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", str(first["client"]))
    assert first["headers"]["metadata-flavor"] == "Google" and first["headers"]["user-agent"] == "curl/8.0"
    assert "x-custom" not in first["headers"]
    assert second["status"] == 404 and second["canaries"] == []
    assert str(first["time"]).endswith("Z")


def test_ipv6_listener() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        context = serving(host="::1")
        mock, client = context.__enter__()
    except OSError as error:
        pytest.skip(f"cannot listen on ::1: {error}")
    try:
        assert client.get("/latest/meta-data/instance-id")[0] == 200
        assert str(mock.log.entries[0]["client"]).startswith("[::1]:")
    finally:
        context.__exit__(None, None, None)


# -- canaries, listeners, DNS ---------------------------------------------------------------------------------

def test_canary_pattern_helpers() -> None:
    key = access_key_id("0A1B2C")
    assert key == "ASIAIMDSCANARY0A1B2C" and len(key) == 20
    token = jwt("ABCDEF", {"aud": "x"})
    assert find_canaries(f"use {key} and {token} and {key}") == ["0A1B2C", "ABCDEF"]
    assert not is_canary("ASIAQWERTYUIOPASDFGH") and not is_canary("IMDSCANARYxyz")


def test_listener_parse_defaults_kind_from_the_knowledge_base() -> None:
    assert Listener.parse("[fd00:ec2::254]:80") == Listener("fd00:ec2::254", 80, "imds")
    assert Listener.parse("169.254.170.2:80").kind == "ecs"
    assert Listener.parse("100.100.100.200:80").kind == "alibaba"
    assert Listener.parse("127.0.0.1:8080=ecs").kind == "ecs"
    for bad in ("127.0.0.1", "127.0.0.1:99999", "127.0.0.1:80=nope", ":80"):
        with pytest.raises(ValueError):
            Listener.parse(bad)


def _query(name: str, qtype: int, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def test_dns_answers_metadata_names_only() -> None:
    mock = MockImds()
    with MockServers(mock, [], dns=[("127.0.0.1", 0)]) as servers:
        host, port = servers.dns_addresses[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            replies = []
            for name, qtype in (("metadata.google.internal", 1), ("metadata.google.internal", 28), ("example.com", 1)):
                sock.sendto(_query(name, qtype), (host, port))
                replies.append(sock.recv(512))
    a_reply, aaaa_reply, other = replies
    ident, flags, _, ancount = struct.unpack("!HHHH", a_reply[:8])
    assert ident == 0x1234 and flags & 0x8000 and flags & 0xF == 0 and ancount == 1
    assert socket.inet_ntoa(a_reply[-4:]) == "169.254.169.254"
    assert struct.unpack("!H", aaaa_reply[6:8])[0] == 0 and struct.unpack("!H", aaaa_reply[2:4])[0] & 0xF == 0
    assert struct.unpack("!H", other[2:4])[0] & 0xF == 3  # NXDOMAIN: nothing is forwarded
    assert [(e["qname"], e["qtype"], e["answer"]) for e in mock.log.entries] == [
        ("metadata.google.internal", "A", "169.254.169.254"), ("metadata.google.internal", "AAAA", ""),
        ("example.com", "A", "")]


def test_dns_parser_rejects_malformed_queries() -> None:
    with pytest.raises(ValueError):
        parse_query(b"\x00" * 5)
    with pytest.raises(ValueError):
        parse_query(_query("metadata.google.internal", 1)[:20])
    reply, info = answer(_query("METADATA.goog", 1), {"metadata.goog": "169.254.169.254"})
    assert info["answer"] == "169.254.169.254" and reply.endswith(socket.inet_aton("169.254.169.254"))


# -- the command ----------------------------------------------------------------------------------------------

def test_mock_imds_command_serves_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "imds_detect", "mock-imds", "--listen", "127.0.0.1:0", "--dns", "127.0.0.1:0",
         "--imdsv2", "required", "--log", str(log), "--duration", "60"],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        lines = []
        while not lines or "ready" not in lines[-1]:
            line = process.stderr.readline()
            assert line, f"mock exited early: {lines}"
            lines.append(line)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+) \(imds: aws, azure, gcp, digitalocean, oracle\)",
                          "".join(lines))
        assert match, lines
        client = Client(Listener("127.0.0.1", int(match.group(1))))
        assert client.get(ROLE_PATH)[0] == 401  # --imdsv2 required
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    entry = json.loads(log.read_text().splitlines()[0])
    assert (entry["method"], entry["target"], entry["status"]) == ("GET", ROLE_PATH, 401)
