"""Host reads + cloud use of the same instance's credentials become one incident (JSON and text)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.cloud.config import load_cloud
from imds_detect.cloud.settings import CloudSettings
from imds_detect.engine.scan import ScanOptions, ScanResult, scan

FIXTURES = Path(__file__).parent / "fixtures" / "correlation"
TRAIL = FIXTURES / "cloudtrail.json"
WEB = "i-0aaa1111bbbb22223"


def host_log(path: Path, host: str, time: str = "2024-05-01T10:05:00Z") -> Path:
    row = {"Timestamp": time, "DeviceId": "d1", "DeviceName": host, "ActionType": "ProcessCreated",
           "FileName": "curl", "FolderPath": "/usr/bin/curl", "ProcessId": 4101,
           "ProcessCommandLine": "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role",
           "InitiatingProcessFileName": "bash", "InitiatingProcessFolderPath": "/usr/bin/bash",
           "InitiatingProcessId": 4000, "AccountName": "www-data", "ReportId": 1}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


def scan_with(tmp_path: Path, host: str, time: str = "2024-05-01T10:05:00Z", settings: CloudSettings | None = None,
              trail: dict[str, Any] | None = None) -> ScanResult:
    host_log(tmp_path / "host.jsonl", host, time)
    if trail is None:
        shutil.copy(TRAIL, tmp_path / "trail.json")
    else:
        (tmp_path / "trail.json").write_text(json.dumps(trail), encoding="utf-8")
    return scan([str(tmp_path)], ScanOptions(cloud=settings or CloudSettings()))


def test_folder_with_both_kinds_of_logs_gives_one_incident_in_json() -> None:
    result = CliRunner().invoke(main, ["scan", "--output", "jsonl", str(FIXTURES)])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    incidents = [line for line in lines if line.get("type") == "incident"]
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["workload"] == WEB and incident["foreign_ips"] == ["203.0.113.50"]
    assert incident["hosts"] == ["ip-10-0-1-5.us-west-2.compute.internal"]
    assert "DNS name" in incident["join"]
    sides = [entry["side"] for entry in incident["timeline"]]
    assert sides == ["host", "host", "cloud", "cloud", "cloud"]
    read = incident["timeline"][1]
    assert read["process"]["command_line"].endswith("security-credentials/web-role")
    assert read["endpoint_path"] == "/latest/meta-data/iam/security-credentials/web-role"
    first_call = incident["timeline"][2]
    assert (first_call["operation"], first_call["source_ip"]) == ("GetCallerIdentity", "203.0.113.50")
    assert first_call["user_agent"].startswith("aws-cli/2.15.0")
    assert "db-7.corp.example" not in json.dumps(incident)  # another host's read stays a plain alert
    assert any(line.get("host") == "db-7.corp.example" for line in lines)


def test_the_summary_says_where_the_incidents_went() -> None:
    result = CliRunner().invoke(main, ["scan", "--output", "jsonl", str(FIXTURES)])
    assert "  incidents: 1 (host read and cloud use joined; written after the alerts)" in result.stderr
    result = CliRunner().invoke(main, ["scan", "--output", "csv", str(FIXTURES)])
    assert result.exit_code == 0, result.stderr
    assert "incidents: 1 (host read and cloud use joined; not in CSV output: use --output jsonl" in result.stderr
    assert "inc-" not in result.stdout  # the CSV holds alert rows only


def test_text_report_shows_the_timeline() -> None:
    result = CliRunner().invoke(main, ["scan", "--output", "table", str(FIXTURES)])
    assert result.exit_code == 0
    text = result.stdout
    assert "INCIDENT inc-" in text
    assert "host   ip-10-0-1-5.us-west-2.compute.internal: curl -> 169.254.169.254/latest/meta-data/iam/" in text
    assert "cloud  GetCallerIdentity (sts.amazonaws.com) from 203.0.113.50  ua: aws-cli/2.15.0" in text
    assert "from 203.0.113.50" in text.split("INCIDENT")[0]  # the cloud alert row names the foreign address


def test_join_by_instance_id_host_name(tmp_path: Path) -> None:
    (incident,) = scan_with(tmp_path, f"{WEB}.us-west-2.compute.internal").incidents
    assert "is the instance id" in incident.join


def test_join_by_ip_based_host_name_needs_a_unique_private_address(tmp_path: Path) -> None:
    (incident,) = scan_with(tmp_path, "ip-10-0-1-5").incidents
    assert "private address 10.0.1.5" in incident.join
    trail = json.loads(TRAIL.read_text())
    clone = json.loads(json.dumps(trail["Records"][1]))  # the RunInstances record, for another instance
    clone["responseElements"]["instancesSet"]["items"][0]["instanceId"] = "i-0999999999999999a"
    trail["Records"].append(clone)
    assert scan_with(tmp_path, "ip-10-0-1-5", trail=trail).incidents == []  # two instances had 10.0.1.5


def test_join_by_the_tuning_files_host_table(tmp_path: Path) -> None:
    assert scan_with(tmp_path, "web-frontend-1").incidents == []
    settings = load_cloud({"hosts": {"web-frontend-1": WEB}}, tmp_path)
    (incident,) = scan_with(tmp_path, "web-frontend-1", settings=settings).incidents
    assert "inventory names host" in incident.join


def test_window_bounds_the_join(tmp_path: Path) -> None:
    assert scan_with(tmp_path, WEB, time="2024-05-01T03:00:00Z").incidents == []  # 7 h before the use
    settings = load_cloud({"correlation_window": "8h"}, tmp_path)
    assert len(scan_with(tmp_path, WEB, time="2024-05-01T03:00:00Z", settings=settings).incidents) == 1
    assert scan_with(tmp_path, WEB, time="2024-05-01T10:30:00Z").incidents == []  # after the use


def test_no_cloud_alert_no_incident(tmp_path: Path) -> None:
    host_log(tmp_path / "host.jsonl", WEB)
    result = scan([str(tmp_path)])
    assert result.alerts and result.incidents == []
