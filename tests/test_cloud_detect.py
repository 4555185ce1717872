"""Cloud-side detections: instance, task and pod credentials used off their workload; IMDS hardening removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imds_detect.cloud.config import load_cloud
from imds_detect.cloud.ipranges import load_ranges
from imds_detect.cloud.settings import CloudSettings
from imds_detect.engine.scan import Scanner, ScanOptions, ScanResult, scan
from imds_detect.knowledge.cloud import address_kind, classify_user_agent
from imds_detect.model import Alert, Severity

FIXTURES = Path(__file__).parent / "fixtures" / "cloudtrail"
RANGES = FIXTURES / "ip-ranges.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cloudtrail"
STRATUS = SHARED / "stratus-detonation-logs"
OFF = "imds-credential-off-instance"


def run(name: str, settings: CloudSettings | None = None) -> ScanResult:
    return scan([str(FIXTURES / name)], ScanOptions(min_severity=Severity.INFORMATIONAL,
                                                    cloud=settings or CloudSettings()))


def stolen(result: ScanResult) -> dict[tuple[str, str], Alert]:
    return {(alert.host, str(alert.cloud["foreign_ip"])): alert for alert in result.alerts
            if alert.rule_id == OFF and alert.cloud}


def with_ranges() -> CloudSettings:
    settings = CloudSettings()
    load_ranges(str(RANGES), settings.ranges)
    return settings


def test_instance_credentials_off_the_instance() -> None:
    found = stolen(run("offinstance.json"))
    assert set(found) == {("i-0aaa1111bbbb22223", "203.0.113.50"), ("i-0eee5555ffff66667", "192.0.2.10"),
                          ("i-0fff7777aaaa88889", "54.203.3.3"), ("i-0bbb9999cccc00001", "198.51.100.7")}
    web = found[("i-0aaa1111bbbb22223", "203.0.113.50")]
    assert web.severity is Severity.CRITICAL  # strong ground + macOS CLI + reconnaissance
    assert web.cloud is not None and web.cloud["role"] == "web-role"
    assert web.cloud["first_use"] == "2024-05-01T10:15:00Z" and web.cloud["calls"] == 3
    assert web.cloud["own_addresses"] == ["54.200.10.20"]
    assert web.cloud["recon_calls"] == ["GetCallerIdentity", "ListBuckets"]
    assert any("its agents call from there" in reason for reason in web.reasons)
    assert web.endpoint.path == "/latest/meta-data/iam/security-credentials/web-role"
    person = found[("i-0eee5555ffff66667", "192.0.2.10")]
    assert any("user/alice" in reason for reason in person.reasons)
    assert any("IMDSv1" in reason for reason in person.reasons)
    roam = found[("i-0fff7777aaaa88889", "54.203.3.3")]
    assert roam.severity is Severity.MEDIUM and any("presumed" in reason for reason in roam.reasons)


def test_own_internal_endpoint_and_unknown_addresses_never_alert() -> None:
    found = stolen(run("offinstance.json"))
    addresses = {address for _, address in found}
    assert not addresses & {"54.200.10.20", "10.0.1.5", "AWS Internal", "54.202.2.2"}
    assert not any(host == "i-0ccc3333dddd44445" for host, _ in found)  # one address, nothing known


def test_ranges_add_outside_ground_and_drop_the_weak_one_inside() -> None:
    found = stolen(run("offinstance.json", with_ranges()))
    web = found[("i-0aaa1111bbbb22223", "203.0.113.50")]
    assert web.cloud is not None and web.cloud["foreign_ip_class"] == "outside-aws"
    assert any("outside AWS" in reason for reason in web.reasons)
    assert ("i-0fff7777aaaa88889", "54.203.3.3") not in found  # inside AWS and nothing else known


def test_listed_egress_and_inventory_addresses_are_the_workloads_own(tmp_path: Path) -> None:
    settings = load_cloud({"egress_addresses": ["198.51.100.0/29"],
                           "instances": {"i-0fff7777aaaa88889": ["54.203.3.3"]}}, tmp_path)
    found = stolen(run("offinstance.json", settings))
    assert ("i-0bbb9999cccc00001", "198.51.100.7") not in found
    assert ("i-0fff7777aaaa88889", "54.203.3.3") not in found
    assert ("i-0fff7777aaaa88889", "54.202.2.2") in found  # now the listed address is the own one


def test_ecs_task_and_eks_pod_sessions() -> None:
    plain = stolen(run("containers.json"))
    assert set(plain) == {("eks-prod-web-7d9f-3f2a1b4c-aaaa-bbbb-cccc-123456789012", "198.51.100.99")}
    pod = next(iter(plain.values()))
    assert pod.cloud is not None and pod.cloud["cluster"] == "prod" and pod.cloud["eks_namespace"] == "web"
    assert pod.endpoint.canonical == "169.254.170.23"
    ranged = stolen(run("containers.json", with_ranges()))
    task = ranged[("0123456789abcdef0123456789abcdef", "203.0.113.77")]
    assert task.cloud is not None and task.cloud["workload_kind"] == "ecs-task"
    assert task.endpoint.canonical == "169.254.170.2"
    assert ("0123456789abcdef0123456789abcdef", "10.0.2.7") not in ranged


def test_hardening_removed() -> None:
    result = run("hardening.jsonl")
    got = sorted((alert.source.line, alert.rule_id, alert.severity.label) for alert in result.alerts)
    assert got == [
        (1, "imds-hardening-removed", "high"),  # HttpTokens=optional on an instance
        (2, "imds-hardening-removed", "medium"),  # hop limit 3
        (3, "imds-hardening-removed", "medium"),  # failed attempt, one step lower
        (5, "imds-hardening-removed", "high"),  # account defaults
        (6, "imds-hardening-removed", "medium"),  # launch template
        (7, "imds-hardening-removed", "medium"),  # RunInstances asking for optional
        (8, "imds-launch-imdsv1", "informational"),  # launched accepting IMDSv1 without asking
    ]
    first = next(alert for alert in result.alerts if alert.source.line == 1)
    assert first.host == "i-0aaa1111bbbb22223"
    assert first.cloud is not None and first.cloud["settings"] == {"httptokens": "optional"}


def test_user_agent_classes_and_internal_addresses() -> None:
    assert classify_user_agent("aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59").unusual_for_workload
    assert classify_user_agent("stratus-red-team_c763d13b").kind == "tool"
    assert classify_user_agent("aws-sdk-go/1.44 (go1.20; linux; amd64) amazon-ssm-agent/3.2").kind == "agent"
    assert classify_user_agent("console.ec2.amazonaws.com").kind == "console"
    assert not classify_user_agent("Boto3/1.34.0 os/linux#6.1").unusual_for_workload
    assert address_kind("10.1.2.3") == "private" and address_kind("203.0.113.5") == "public"
    assert address_kind("AWS Internal") == "none" and address_kind("::ffff:192.168.1.1") == "private"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data absent")
def test_real_stratus_theft_alerts_with_instance_role_ip_and_first_use() -> None:
    result = scan([str(STRATUS / "aws.credential-access.ec2-steal-instance-credentials.json")])
    (alert,) = [alert for alert in result.alerts if alert.rule_id == OFF]
    assert alert.cloud is not None
    assert alert.host == "i-786a3a8b5c0d92ef4"
    assert alert.cloud["role"] == "stratus-red-team-ec2-steal-credentials-role"
    assert alert.cloud["foreign_ip"] == "18.236.253.47"
    assert alert.cloud["first_use"] == "2024-08-02T08:23:55Z"
    assert alert.cloud["ec2_role_delivery"] == ["1.0"]
    assert alert.severity is Severity.CRITICAL


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data absent")
def test_real_otrf_ssrf_theft_alerts() -> None:
    result = scan([str(SHARED / "otrf")])
    (alert,) = [alert for alert in result.alerts if alert.rule_id == OFF]
    assert alert.cloud is not None
    assert alert.host == "i-0317f6c6b66ae9c40"
    assert alert.cloud["role"] == "MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0"
    assert alert.cloud["foreign_ip"] == "1.2.3.4"
    assert alert.cloud["first_use"] == "2020-09-14T01:00:04Z"
    assert alert.cloud["calls"] == 11


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data absent")
def test_the_other_34_stratus_files_raise_no_stolen_credential_alert() -> None:
    others = sorted(path for path in STRATUS.glob("*.json") if "ec2-steal-instance-credentials" not in path.name)
    assert len(others) == 34
    result = scan([str(path) for path in others])
    assert result.summary.usable == 265  # 413 records less the 45 + 103 of the two positives
    assert [alert for alert in result.alerts if alert.rule_id == OFF] == []


def test_collectors_of_separate_scans_merge_to_the_same_alerts(tmp_path: Path) -> None:
    """What a parallel scan does: workers summarise their files, the parent merges and judges once."""
    trail = json.loads((FIXTURES / "offinstance.json").read_text())["Records"]
    (tmp_path / "a.json").write_text(json.dumps({"Records": trail[:6]}))  # issuance, launch, the agent's address
    (tmp_path / "b.json").write_text(json.dumps({"Records": trail[6:]}))  # the theft: judged on what a.json taught
    files = [str(tmp_path / "a.json"), str(tmp_path / "b.json"), str(FIXTURES / "containers.json"),
             str(FIXTURES.parent / "gcp" / "audit.jsonl"), str(FIXTURES.parent / "azure" / "activity.json")]
    whole = scan(files, ScanOptions(min_severity=Severity.INFORMATIONAL))
    parent = Scanner(ScanOptions(min_severity=Severity.INFORMATIONAL))
    for name in files:
        worker = Scanner(ScanOptions(min_severity=Severity.INFORMATIONAL))
        worker.scan_paths([name])  # judged alone, but only the summaries are handed over
        parent.cloud.merge(worker.cloud)
    merged = parent.finish()

    def key(result: ScanResult) -> list[tuple[str, str, str]]:
        return sorted((alert.rule_id, alert.host, alert.severity.label) for alert in result.alerts)

    assert key(merged) == key(whole) and len(whole.alerts) > 5
    assert ("imds-credential-off-instance", "i-0aaa1111bbbb22223", "critical") in key(merged)
