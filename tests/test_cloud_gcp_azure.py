"""GCP VM service-account tokens and Azure VM managed identities used from unexpected addresses."""

from __future__ import annotations

import json
from pathlib import Path

from imds_detect.cloud.ipranges import load_ranges
from imds_detect.cloud.settings import CloudSettings
from imds_detect.engine.scan import ScanOptions, ScanResult, scan
from imds_detect.model import Severity
from imds_detect.sources.azure_logs import AZURE_ADAPTER
from imds_detect.sources.gcp_audit import GCP_AUDIT_ADAPTER
from imds_detect.sources.registry import detect_format

FIXTURES = Path(__file__).parent / "fixtures"
GCP = FIXTURES / "gcp"
AZURE = FIXTURES / "azure"
OFF = "imds-credential-off-instance"
DEFAULT_SA = "123456789012-compute@developer.gserviceaccount.com"


def run(paths: list[Path], ranges: Path | None = None) -> ScanResult:
    settings = CloudSettings()
    if ranges is not None:
        load_ranges(str(ranges), settings.ranges)
    return scan([str(path) for path in paths], ScanOptions(cloud=settings))


def found(result: ScanResult) -> dict[tuple[str, str], Severity]:
    return {(alert.host, str(alert.cloud["foreign_ip"])): alert.severity for alert in result.alerts
            if alert.rule_id == OFF and alert.cloud}


def test_formats_are_recognised() -> None:
    assert detect_format((GCP / "audit.jsonl").read_bytes()[:65536]) is GCP_AUDIT_ADAPTER
    assert detect_format((AZURE / "activity.json").read_bytes()[:65536]) is AZURE_ADAPTER
    assert detect_format((AZURE / "signins.jsonl").read_bytes()[:65536]) is AZURE_ADAPTER


def test_gcp_vm_tokens_without_ranges() -> None:
    assert found(run([GCP / "audit.jsonl"])) == {
        (DEFAULT_SA, "203.0.113.9"): Severity.HIGH,  # weak ground (second address) + a Mac user agent
        ("app@demo-proj.iam.gserviceaccount.com", "198.51.100.20"): Severity.HIGH,  # an admin's address
    }  # ci@ is not a VM's account; gce-internal-ip is the VM


def test_gcp_outside_google_cloud_with_published_ranges() -> None:
    result = run([GCP / "audit.jsonl"], GCP / "cloud.json")
    assert found(result)[(DEFAULT_SA, "203.0.113.9")] is Severity.CRITICAL
    alert = next(alert for alert in result.alerts if alert.host == DEFAULT_SA)
    assert alert.cloud is not None and alert.cloud["foreign_ip_class"] == "outside-gcp"
    assert any("default service account" in reason for reason in alert.reasons)
    assert alert.endpoint.path.endswith(f"/service-accounts/{DEFAULT_SA}/token")
    assert (DEFAULT_SA, "34.82.1.2") not in found(result)


def test_azure_managed_identity_with_published_ranges() -> None:
    result = run([AZURE / "activity.json", AZURE / "signins.jsonl"], AZURE / "ServiceTags.json")
    assert found(result) == {("web-vm", "203.0.113.200"): Severity.HIGH, ("web-vm", "203.0.113.201"): Severity.HIGH}
    alert = next(alert for alert in result.alerts if alert.rule_id == OFF)
    assert alert.cloud is not None and alert.cloud["vm"] == "web-vm"
    assert alert.endpoint.path == "/metadata/identity/oauth2/token"


def test_azure_without_ranges_is_only_presumed() -> None:
    result = run([AZURE / "activity.json", AZURE / "signins.jsonl"])
    assert set(found(result).values()) == {Severity.MEDIUM}
    assert ("web-vm", "20.42.1.1") not in found(result)  # the first address is presumed the VM's


def test_azure_incident_joins_the_vm_name(tmp_path: Path) -> None:
    row = {"Timestamp": "2024-05-05T08:55:00Z", "DeviceId": "d9", "DeviceName": "web-vm",
           "ActionType": "ProcessCreated", "FileName": "curl", "FolderPath": "/usr/bin/curl", "ProcessId": 7,
           "ProcessCommandLine": "curl -H Metadata:true 'http://169.254.169.254/metadata/identity/oauth2/token?"
                                 "api-version=2018-02-01&resource=https://management.azure.com/'",
           "InitiatingProcessFileName": "bash", "InitiatingProcessFolderPath": "/usr/bin/bash", "ReportId": 1}
    (tmp_path / "host.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = run([tmp_path / "host.jsonl", AZURE / "activity.json"], AZURE / "ServiceTags.json")
    (incident,) = result.incidents
    assert incident.workload == "web-vm" and incident.foreign_ips == ["203.0.113.200"]
    assert "VM's name" in incident.join
