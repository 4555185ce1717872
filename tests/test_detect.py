"""Detection rules on normalized events: which events alert, with which rule, severity and class."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imds_detect.detect.allowlist import Allowlist, default_entries
from imds_detect.detect.detector import Detector
from imds_detect.model import Alert, Event, EventKind, ProcessInfo, Severity, SourceRef

WHEN = datetime(2026, 11, 27, 8, tzinfo=UTC)
DETECTOR = Detector(Allowlist(default_entries()))


def proc(cmd: str, path: str = "/usr/bin/curl", parent: str = "bash", user: str = "ubuntu") -> Event:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return Event(EventKind.PROCESS, WHEN, SourceRef("test", "t", 1, 0), host="h", user=user,
                 process=ProcessInfo(name=name, path=path, command_line=cmd, parent_name=parent))


def net(ip: str, port: int | None = 80, path: str = "/usr/bin/python3", action: str = "ConnectionSuccess",
        url: str = "", cmd: str = "") -> Event:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return Event(EventKind.NETWORK, WHEN, SourceRef("test", "t", 1, 0), host="h", action=action,
                 process=ProcessInfo(name=name, path=path, command_line=cmd), remote_ip=ip, remote_port=port,
                 remote_url=url)


def one(event: Event) -> Alert:
    alerts = DETECTOR.run(event).alerts
    assert len(alerts) == 1, [a.rule_id for a in alerts]
    return alerts[0]


def silent(event: Event) -> bool:
    return DETECTOR.run(event).alerts == []


@pytest.mark.parametrize(("cmd", "path_class", "severity", "provider"), [
    ("curl http://169.254.169.254/latest/meta-data/iam/security-credentials/web", "credential", "high", "aws"),
    ("curl http://169.254.169.254/latest/meta-data/iam/security-credentials/", "identity", "medium", "aws"),
    ("curl -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600'",
     "metadata", "medium", "aws"),
    ("curl http://169.254.169.254/latest/meta-data/instance-id", "metadata", "low", "aws"),
    ("curl http://169.254.169.254/latest/user-data", "userdata", "high", "aws"),
    ("curl http://169.254.169.254/latest/dynamic/instance-identity/document", "identity", "medium", "aws"),
    ("curl -H Metadata:true 'http://169.254.169.254/metadata/instance?api-version=2021-02-01'", "metadata", "low",
     "azure"),
    ("curl -H Metadata:true 'http://169.254.169.254/metadata/identity/oauth2/token?resource=https://vault.azure.net'",
     "token", "high", "azure"),
    ("curl -H 'Metadata-Flavor: Google' 'http://metadata.google.internal/computeMetadata/v1/?recursive=true'",
     "userdata", "high", "gcp"),
    ("curl http://metadata/computeMetadata/v1/instance/service-accounts/default/identity?audience=x", "token",
     "high", "gcp"),
    ("curl http://169.254.170.2/v2/credentials/7b6e5a4c-1d2e-4f3a-9b8c-0d1e2f3a4b5c", "credential", "high",
     "aws-ecs"),
    ("curl http://169.254.170.23/v1/credentials", "credential", "high", "aws-eks"),
    ("curl -H Metadata:true http://localhost:40342/metadata/identity/oauth2/token", "token", "high", "azure-arc"),
    ("curl http://100.100.100.200/latest/meta-data/ram/security-credentials/role", "credential", "high", "alibaba"),
    ("curl -H 'Authorization: Bearer Oracle' http://169.254.169.254/opc/v2/identity/cert.pem", "token", "high",
     "oracle"),
    ("curl http://169.254.169.254/metadata/v1/user-data", "userdata", "high", "digitalocean"),
    ("curl http://169.254.169.254/openstack/latest/user_data", "userdata", "high", "openstack"),
])
def test_severity_and_class_follow_the_path(cmd: str, path_class: str, severity: str, provider: str) -> None:
    alert = one(proc(cmd))
    assert alert.rule_id == "imds-command-line"
    assert (alert.endpoint.path_class, alert.severity.label, alert.endpoint.provider) == (
        path_class, severity, provider)


@pytest.mark.parametrize("cmd", [
    "curl http://0xa9fea9fe/latest/meta-data/iam/security-credentials/x",
    "curl http://2852039166/latest/meta-data/iam/security-credentials/x",
    "curl http://0251.0376.0251.0376/latest/meta-data/iam/security-credentials/x",
    "curl http://169.254.43518/latest/meta-data/iam/security-credentials/x",
    "curl http://[::ffff:169.254.169.254]/latest/meta-data/iam/security-credentials/x",
    "curl http://[fd00:ec2::254]/latest/meta-data/iam/security-credentials/x",
    "curl http://１６９.２５４.１６９.２５４/latest/meta-data/iam/security-credentials/x",
    "curl http://169.254.169.254.nip.io/latest/meta-data/iam/security-credentials/x",
    "curl http://user@169.254.169.254/latest/meta-data/iam/security-credentials/x",
    "curl 169.254.169.254/latest/meta-data/iam/security-credentials/x",
    "wget -qO- http://instance-data/latest/meta-data/iam/security-credentials/x",
])
def test_encoded_hosts_are_canonicalised(cmd: str) -> None:
    alert = one(proc(cmd))
    assert alert.severity == Severity.HIGH
    assert alert.endpoint.path_class == "credential"


@pytest.mark.parametrize(("cmd", "path"), [
    ("powershell -c \"Invoke-RestMethod -Headers @{Metadata='true'} -Uri "
     "http://169.254.169.254/metadata/identity/oauth2/token?resource=https://management.azure.com/\"",
     "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"),
    ("powershell -c \"(New-Object Net.WebClient).DownloadString('http://169.254.169.254/latest/user-data')\"",
     "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"),
    ("bash -c 'cat < /dev/tcp/169.254.169.254/80'", "/usr/bin/bash"),
    ("socat - TCP:169.254.169.254:80", "/usr/bin/socat"),
])
def test_access_forms_beyond_curl(cmd: str, path: str) -> None:
    assert one(proc(cmd, path=path)).rule_id == "imds-command-line"


@pytest.mark.parametrize(("cmd", "path"), [
    ("grep 169.254.169.254 /var/log/syslog", "/usr/bin/grep"),
    ("cat /var/lib/cloud/instance/latest/meta-data/iam/security-credentials", "/usr/bin/cat"),
    ("vim /tmp/notes-169.254.169.254.txt", "/usr/bin/vim"),
    ("apt-get install cloud-init", "/usr/bin/apt-get"),
    ("curl https://shop.example.com/metadata/v1/items", "/usr/bin/curl"),
    ("curl https://example.com/v2/credentials/login", "/usr/bin/curl"),
    ("echo metadata is nice", "/usr/bin/bash"),
    ("curl https://10.1.2.3/api", "/usr/bin/curl"),
])
def test_mentions_and_ordinary_requests_do_not_alert(cmd: str, path: str) -> None:
    assert silent(proc(cmd, path=path))


@pytest.mark.parametrize("cmd", [
    "curl -s http://$IMDS/latest/meta-data/iam/security-credentials/admin",
    "curl -x http://10.0.0.9:3128 http://redirector.example/latest/meta-data/iam/security-credentials/admin",
    "curl -s http://${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}",
    "curl -H \"X-IDENTITY-HEADER: $IDENTITY_HEADER\" \"$IDENTITY_ENDPOINT?resource=https://vault.azure.net\"",
])
def test_hidden_host_with_metadata_only_path_or_variable(cmd: str) -> None:
    alert = one(proc(cmd))
    assert alert.rule_id == "imds-hidden-host"
    assert alert.severity == Severity.HIGH


@pytest.mark.parametrize(("ip", "port"), [
    ("169.254.169.254", 53), ("169.254.169.254", 123), ("169.254.169.253", 53), ("169.254.169.123", 123),
    ("168.63.129.16", 80), ("fd00:ec2::253", 53), ("10.0.0.2", 80), ("127.0.0.1", 8080),
])
def test_neighbours_and_ordinary_addresses_do_not_alert(ip: str, port: int) -> None:
    assert silent(net(ip, port))


@pytest.mark.parametrize(("ip", "port", "provider"), [
    ("169.254.169.254", 80, "multi-cloud"), ("::ffff:169.254.169.254", 80, "multi-cloud"),
    ("fd00:ec2::254", 80, "aws"), ("169.254.170.2", 80, "aws-ecs"), ("169.254.170.23", 80, "aws-eks"),
    ("100.100.100.200", 80, "alibaba"), ("192.0.0.192", 80, "oracle"), ("127.0.0.1", 40342, "azure-arc"),
])
def test_connections_to_every_endpoint_alert(ip: str, port: int, provider: str) -> None:
    alert = one(net(ip, port))
    assert alert.rule_id == "imds-network-connection"
    assert alert.endpoint.provider == provider


def test_network_severity_is_judged_by_the_process() -> None:
    assert one(net("169.254.169.254", path="/usr/bin/python3")).severity == Severity.MEDIUM
    assert one(net("169.254.169.254", path="/tmp/x/implant")).severity == Severity.HIGH
    assert one(net("169.254.169.254", path="/opt/app/bin/server")).severity == Severity.LOW


def test_listening_and_inbound_rows_are_not_access() -> None:
    assert silent(net("169.254.169.254", action="InboundConnectionAccepted"))
    assert silent(net("127.0.0.1", 40342, action="ListeningConnectionCreated"))


def test_agents_are_suppressed_only_from_their_real_path() -> None:
    real = DETECTOR.run(net("169.254.169.254", path="/usr/bin/amazon-ssm-agent"))
    assert real.alerts == [] and [a.suppressed_by for a in real.suppressed] == ["aws-ssm-agent"]
    fake = one(net("169.254.169.254", path="/tmp/amazon-ssm-agent"))
    assert fake.severity == Severity.HIGH
    assert any("named like aws-ssm-agent" in reason for reason in fake.reasons)


def test_windows_agent_path_is_case_insensitive() -> None:
    path = "C:\\WindowsAzure\\GuestAgent_2.7.41491.1102_2023-11-07_195038\\WindowsAzureGuestAgent.exe"
    assert DETECTOR.run(net("169.254.169.254", path=path)).alerts == []
    assert one(net("169.254.169.254", path="C:\\Users\\Public\\WindowsAzureGuestAgent.exe")).severity == Severity.HIGH


def test_script_agents_are_identified_by_their_script_not_the_interpreter() -> None:
    assert silent(net("169.254.169.254", path="/usr/bin/python3.10", cmd="/usr/bin/python3 /usr/bin/cloud-init init"))
    assert not silent(net("169.254.169.254", path="/usr/bin/python3.10", cmd="/usr/bin/python3 /tmp/cloud-init"))
    assert not silent(net("169.254.169.254", path="/tmp/python3", cmd="/tmp/python3 /usr/bin/cloud-init init"))


def test_children_of_agents_are_not_allowed_because_of_their_parent() -> None:
    event = proc("sh -c curl http://169.254.169.254/latest/meta-data/iam/security-credentials/r",
                 path="/usr/bin/sh", parent="ssm-document-worker")
    assert one(event).severity == Severity.HIGH


def test_ec2_instance_connect_needs_path_parent_and_user() -> None:
    cmd = "curl -s http://169.254.169.254/latest/meta-data/managed-ssh-keys/active-keys/ec2-user/"
    assert silent(proc(cmd, parent="eic_curl_authorized_keys", user="ec2-instance-connect"))
    assert not silent(proc(cmd, parent="eic_curl_authorized_keys", user="www-data"))
    assert not silent(proc(cmd, parent="bash", user="ec2-instance-connect"))


def test_masquerade_rule_fires_on_process_creation() -> None:
    alert = one(proc("/dev/shm/google_guest_agent", path="/dev/shm/google_guest_agent"))
    assert alert.rule_id == "imds-agent-masquerade"
    assert silent(proc("/usr/bin/google_guest_agent", path="/usr/bin/google_guest_agent"))


def _http(host: str, uri: str, agent: str = "curl/8.0") -> Event:
    return Event(EventKind.HTTP, WHEN, SourceRef("test", "t", 1, 0), http_host=host, http_uri=uri,
                 user_agent=agent, remote_ip=host, remote_port=80, http_method="GET")


def test_http_inspected_requests() -> None:
    alert = one(_http("169.254.169.254", "/latest/meta-data/iam/security-credentials/r"))
    assert (alert.rule_id, alert.severity) == ("imds-http-request", Severity.HIGH)
    claimed = DETECTOR.run(_http("169.254.169.254", "/metadata/instance", agent="WALinuxAgent/2.9.1.1")).alerts
    assert claimed[0].severity == Severity.INFORMATIONAL
    assert DETECTOR.run(_http("93.184.216.34", "/index.html")).alerts == []
    ssrf = one(_http("93.184.216.34", "/fetch?url=http://169.254.169.254/latest/user-data"))
    assert ssrf.endpoint.path_class == "userdata"


def _dns(query: str) -> Event:
    return Event(EventKind.DNS, WHEN, SourceRef("test", "t", 1, 0), dns_query=query)


def test_dns_queries() -> None:
    assert one(_dns("metadata.google.internal")).severity == Severity.INFORMATIONAL
    assert one(_dns("a9fea9fe.nip.io")).severity == Severity.HIGH
    assert one(_dns("169-254-169-254.sslip.io")).severity == Severity.HIGH
    assert DETECTOR.run(_dns("www.example.com")).alerts == []
