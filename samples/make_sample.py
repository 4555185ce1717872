"""Writes the bundled sample: synthetic Defender advanced-hunting rows, benign and malicious, with labels.

Every row is synthetic (written by this project). Run `python samples/make_sample.py` to regenerate
`defender-sample.jsonl` and `defender-sample.labels.json`; a test checks the committed files match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEVICE = "web-01.contoso.local"
ROWS: list[tuple[dict[str, Any], str | None, str | None, str]] = []  # row, rule, severity, why


def _time(minute: int) -> str:
    return f"2026-11-27T{8 + minute // 60:02d}:{minute % 60:02d}:07.1234567Z"


def network(minute: int, name: str, path: str, cmd: str, ip: str, port: int, *, user: str = "root",
            parent: str = "systemd", action: str = "ConnectionSuccess", url: str = "",
            device: str = DEVICE) -> dict[str, Any]:
    return {
        "Timestamp": _time(minute), "DeviceId": "5f1c0c2a9d0e4b7c8a6e2f3d4c5b6a7980a1b2c3", "DeviceName": device,
        "ActionType": action, "RemoteIP": ip, "RemotePort": port, "RemoteUrl": url, "LocalIP": "10.0.1.15",
        "LocalPort": 40000 + minute, "Protocol": "Tcp", "InitiatingProcessFileName": name,
        "InitiatingProcessFolderPath": path, "InitiatingProcessCommandLine": cmd,
        "InitiatingProcessId": 1000 + minute, "InitiatingProcessAccountName": user,
        "InitiatingProcessAccountDomain": DEVICE.split(".")[0], "InitiatingProcessParentFileName": parent,
        "ReportId": 5000 + minute,
    }


def process(minute: int, name: str, path: str, cmd: str, *, user: str = "ubuntu", parent: str = "bash",
            parent_path: str = "/usr/bin/bash", device: str = DEVICE) -> dict[str, Any]:
    return {
        "Timestamp": _time(minute), "DeviceId": "5f1c0c2a9d0e4b7c8a6e2f3d4c5b6a7980a1b2c3", "DeviceName": device,
        "ActionType": "ProcessCreated", "FileName": name, "FolderPath": path, "ProcessCommandLine": cmd,
        "ProcessId": 2000 + minute, "AccountName": user, "AccountDomain": DEVICE.split(".")[0],
        "InitiatingProcessFileName": parent, "InitiatingProcessFolderPath": parent_path,
        "InitiatingProcessId": 1500 + minute, "ReportId": 7000 + minute,
    }


def inspected(minute: int, action: str, fields: dict[str, Any], ip: str, port: int) -> dict[str, Any]:
    return {
        "Timestamp": _time(minute), "DeviceId": "5f1c0c2a9d0e4b7c8a6e2f3d4c5b6a7980a1b2c3", "DeviceName": DEVICE,
        "ActionType": action, "RemoteIP": ip, "RemotePort": port, "LocalIP": "10.0.1.15", "LocalPort": 50000,
        "Protocol": "Tcp", "AdditionalFields": json.dumps(fields), "ReportId": 9000 + minute,
    }


def add(row: dict[str, Any], rule: str | None, severity: str | None, why: str) -> None:
    ROWS.append((row, rule, severity, why))


def build() -> None:
    # Benign background and legitimate agents.
    add(network(1, "svchost.exe", "C:\\Windows\\System32\\svchost.exe", "svchost.exe -k netsvcs -p",
                "20.190.151.7", 443, user="system"), None, None, "ordinary HTTPS")
    add(network(2, "chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                "\"chrome.exe\" --type=utility", "142.250.74.110", 443, user="alice"), None, None, "ordinary HTTPS")
    add(network(3, "amazon-ssm-agent", "/usr/bin/amazon-ssm-agent", "/usr/bin/amazon-ssm-agent",
                "169.254.169.254", 80), None, None, "SSM agent from its real path: allowlisted")
    add(network(4, "WindowsAzureGuestAgent.exe",
                "C:\\WindowsAzure\\GuestAgent_2.7.41491.1102_2023-11-07_195038\\WindowsAzureGuestAgent.exe",
                "C:\\WindowsAzure\\GuestAgent_2.7.41491.1102_2023-11-07_195038\\WindowsAzureGuestAgent.exe",
                "169.254.169.254", 80, user="system"), None, None, "Azure guest agent: allowlisted")
    add(network(5, "google_guest_agent", "/usr/bin/google_guest_agent", "/usr/bin/google_guest_agent",
                "169.254.169.254", 80), None, None, "GCP guest agent: allowlisted")
    add(network(6, "systemd-resolved", "/usr/lib/systemd/systemd-resolved", "/lib/systemd/systemd-resolved",
                "169.254.169.254", 53, user="systemd-resolve"), None, None, "GCP DNS resolver on port 53")
    add(network(7, "chronyd", "/usr/sbin/chronyd", "/usr/sbin/chronyd -F 2", "169.254.169.123", 123,
                user="_chrony"), None, None, "AWS time sync neighbour")
    add(network(8, "WaAppAgent.exe", "C:\\WindowsAzure\\Packages\\WaAppAgent.exe", "WaAppAgent.exe",
                "168.63.129.16", 80, user="system"), None, None, "Azure WireServer neighbour")
    add(process(9, "grep", "/usr/bin/grep", "grep 169.254.169.254 /var/log/cloud-init.log"), None, None,
        "grep only mentions the address")
    add(process(10, "curl", "/usr/bin/curl", "curl -s https://api.github.com/repos/org/app/releases"), None, None,
        "ordinary download")
    add(process(11, "curl", "/usr/bin/curl", "curl -s https://shop.example.com/metadata/v1/items"), None, None,
        "an application's own /metadata/v1 path")
    add(network(12, "python3.10", "/usr/bin/python3.10", "/usr/bin/python3 /usr/bin/cloud-init init",
                "169.254.169.254", 80), None, None, "cloud-init run by python: allowlisted by its script")
    add(process(13, "curl", "/usr/bin/curl",
                "curl -s -f -m 1 -H \"X-aws-ec2-metadata-token: AQAEAB\" "
                "http://169.254.169.254/latest/meta-data/managed-ssh-keys/active-keys/ec2-user/",
                user="ec2-instance-connect", parent="eic_curl_authorized_keys",
                parent_path="/opt/aws/bin/eic_curl_authorized_keys"), None, None,
        "EC2 Instance Connect: allowlisted by path, parent and user")
    add(process(14, "vim", "/usr/bin/vim", "vim /etc/aws/latest/meta-data/iam/security-credentials.md"), None,
        None, "editor mention")
    # Malicious.
    add(process(20, "curl", "/usr/bin/curl", "curl http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        "imds-command-line", "medium", "role listing")
    add(process(21, "curl", "/usr/bin/curl",
                "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/WebAppRole"),
        "imds-command-line", "high", "role credentials")
    add(network(22, "curl", "/usr/bin/curl", "curl -s http://169.254.169.254/", "169.254.169.254", 80,
                user="www-data", parent="bash"), "imds-network-connection", "medium", "curl connects, no path seen")
    add(process(23, "python3", "/usr/bin/python3",
                "python3 -c \"import urllib.request as u;print(u.urlopen('http://0xa9fea9fe/latest/user-data').read())\""),
        "imds-command-line", "high", "hex-encoded host, user-data")
    add(process(24, "powershell.exe", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                "powershell.exe -nop -c \"Invoke-RestMethod -Headers @{Metadata='true'} -Uri "
                "'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
                "&resource=https://management.azure.com/'\"", user="svc-web", parent="w3wp.exe",
                parent_path="C:\\Windows\\System32\\inetsrv\\w3wp.exe"),
        "imds-command-line", "high", "Azure managed identity token")
    add(process(25, "curl", "/usr/bin/curl",
                "curl -H 'Metadata-Flavor: Google' http://metadata.google.internal/computeMetadata/v1/instance/"
                "service-accounts/default/token"), "imds-command-line", "high", "GCP service account token")
    add(process(26, "bash", "/usr/bin/bash",
                "bash -c 'exec 3<>/dev/tcp/169.254.169.254/80; printf \"GET /latest/meta-data/iam/security-credentials/"
                "admin HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'"), "imds-command-line", "high", "/dev/tcp request")
    add(network(27, "cloud-init", "/tmp/.cache/cloud-init", "/tmp/.cache/cloud-init", "169.254.169.254", 80,
                user="www-data"), "imds-network-connection", "high", "renamed binary posing as cloud-init")
    add(process(28, "cloud-init", "/tmp/.cache/cloud-init", "/tmp/.cache/cloud-init --fetch",
                user="www-data"), "imds-agent-masquerade", "high", "agent name from /tmp")
    add(process(29, "curl", "/usr/bin/curl", "curl -s 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        "imds-command-line", "high", "ECS task credentials")
    add(process(30, "wget", "/usr/bin/wget", "wget -qO- http://[::ffff:a9fe:a9fe]/latest/meta-data/iam/security-credentials/admin"),
        "imds-command-line", "high", "IPv4-mapped IPv6 in hex")
    add(process(31, "curl", "/usr/bin/curl", "curl http://2852039166/latest/user-data"), "imds-command-line", "high",
        "decimal host")
    add(inspected(32, "HttpConnectionInspected",
                  {"direction": "Out", "host": "169.254.169.254", "method": "GET",
                   "uri": "/latest/meta-data/iam/security-credentials/WebAppRole",
                   "user_agent": "python-requests/2.31"},
                  "169.254.169.254", 80), "imds-http-request", "high", "inspected HTTP credential read")
    add(inspected(33, "DnsConnectionInspected", {"direction": "Out", "query": "169.254.169.254.nip.io",
                                                 "query_type": "A"}, "10.0.0.2", 53),
        "imds-dns-query", "high", "wildcard DNS name embedding the metadata IP")
    add(inspected(34, "DnsConnectionInspected", {"direction": "Out", "query": "metadata.google.internal",
                                                 "query_type": "A"}, "169.254.169.254", 53),
        "imds-dns-query", "informational", "routine on GCP: below the default --min-severity")
    add(process(35, "sh", "/usr/bin/sh",
                "sh -c curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/WebAppRole",
                user="root", parent="ssm-document-worker", parent_path="/usr/bin/ssm-document-worker"),
        "imds-command-line", "high", "SSM Run Command child: never allowed because of its parent")
    add(network(36, "python3", "/usr/bin/python3", "python3 exploit.py", "fd00:ec2::254", 80),
        "imds-network-connection", "medium", "IPv6 IMDS by an interpreter")
    add(process(37, "curl", "/usr/bin/curl", "curl http://100.100.100.200/latest/meta-data/ram/security-credentials/ecs-role"),
        "imds-command-line", "high", "Alibaba RAM credentials")
    add(process(38, "curl", "/usr/bin/curl",
                "curl \"https://proxy.example.com/fetch?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2Fiam"
                "%2Fsecurity-credentials%2F\""), "imds-command-line", "medium", "percent-encoded URL in a parameter")


def main() -> None:
    build()
    lines = [json.dumps(row, separators=(",", ":")) for row, _, _, _ in ROWS]
    lines.insert(17, '{"Timestamp":"2026-11-27T08:15:00Z","DeviceName":"web-01", "ActionType": truncated')
    labels = []
    record = 0
    for index, line in enumerate(lines):
        if line.endswith("truncated"):
            labels.append({"record": index, "line": index + 1, "rule_id": None, "severity": None,
                           "why": "malformed line: reported and skipped"})
            continue
        _, rule, severity, why = ROWS[record]
        labels.append({"record": index, "line": index + 1, "rule_id": rule, "severity": severity, "why": why})
        record += 1
    (HERE / "defender-sample.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / "defender-sample.labels.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
