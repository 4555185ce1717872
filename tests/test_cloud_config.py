"""The [cloud] tuning keys, --ip-ranges and the inventory files: good input loads, bad input is one error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.cloud.config import load_cloud
from imds_detect.cloud.inventory import Inventory, load_inventory
from imds_detect.cloud.ipranges import load_ranges
from imds_detect.config import ConfigError, load_config

FIXTURES = Path(__file__).parent / "fixtures"
TRAIL = FIXTURES / "cloudtrail" / "offinstance.json"
RANGES = FIXTURES / "cloudtrail" / "ip-ranges.json"


def scan_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", "--output", "jsonl", *args])
    return result.exit_code, result.stdout, result.stderr


def test_ip_ranges_option_classifies_the_foreign_address() -> None:
    code, out, _ = scan_cli("--ip-ranges", str(RANGES), str(TRAIL))
    assert code == 0
    alerts = [json.loads(line) for line in out.splitlines()]
    web = next(alert for alert in alerts if alert.get("host") == "i-0aaa1111bbbb22223")
    assert web["cloud"]["foreign_ip_class"] == "outside-aws"


@pytest.mark.parametrize("content", ["not json", '{"hello": 1}', '{"prefixes": []}'])
def test_bad_ranges_file_is_one_error_line_and_exit_2(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "ranges.json"
    bad.write_text(content)
    code, _, err = scan_cli("--ip-ranges", str(bad), str(TRAIL))
    assert code == 2
    assert err.strip().count("\n") == 0 and err.startswith("imds-detect: error: --ip-ranges:")


def test_config_cloud_table(tmp_path: Path) -> None:
    (tmp_path / "ranges.json").write_bytes(RANGES.read_bytes())
    config = tmp_path / "imds.toml"
    config.write_text('[cloud]\nip_ranges = ["ranges.json"]\negress_addresses = ["198.51.100.0/28"]\n'
                      'correlation_window = "90m"\ngcp_vm_service_accounts = ["App@p.iam.gserviceaccount.com"]\n'
                      '[cloud.instances]\n"i-0aaa1111bbbb22223" = ["54.200.10.20"]\n'
                      '[cloud.hosts]\n"web-1" = "i-0aaa1111bbbb22223"\n')
    cloud = load_config(str(config)).cloud
    assert cloud.ranges.covers("aws") and cloud.window.total_seconds() == 5400
    assert cloud.inventory.is_egress("198.51.100.7") and not cloud.inventory.is_egress("198.51.100.77")
    assert cloud.inventory.addresses("I-0AAA1111BBBB22223") == {"54.200.10.20"}
    assert cloud.inventory.hosts() == {"web-1": "i-0aaa1111bbbb22223"}
    assert cloud.gcp_vm_service_accounts == frozenset({"app@p.iam.gserviceaccount.com"})


@pytest.mark.parametrize(("text", "message"), [
    ('[cloud]\nfoo = 1\n', "unknown key cloud.foo"),
    ('[cloud]\nip_ranges = ["missing.json"]\n', "cannot read"),
    ('[cloud]\negress_addresses = ["not-an-ip"]\n', "cloud.egress_addresses"),
    ('[cloud]\ncorrelation_window = "soon"\n', "invalid duration"),
    ('[cloud.instances]\n"i-0aaa1111bbbb22223" = ["nope"]\n', "is not an IP address"),
    ('[cloud.hosts]\n"web-1" = 3\n', "cloud.hosts"),
])
def test_bad_cloud_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "imds.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(config))
    code, _, err = scan_cli("--config", str(config), str(TRAIL))
    assert code == 2 and message.split()[0] in err and err.count("\n") == 1


def test_inventory_files_of_the_three_clis(tmp_path: Path) -> None:
    aws = {"Reservations": [{"Instances": [{
        "InstanceId": "i-0aaa1111bbbb22223", "PrivateIpAddress": "10.0.1.5", "PublicIpAddress": "54.200.10.20",
        "PrivateDnsName": "ip-10-0-1-5.us-west-2.compute.internal", "Tags": [{"Key": "Name", "Value": "web-1"}],
        "NetworkInterfaces": [{"PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.6",
                                                       "Association": {"PublicIp": "54.200.10.21"}}]}]}]}]}
    gcp = [{"name": "vm-1",
            "networkInterfaces": [{"networkIP": "10.128.0.2", "accessConfigs": [{"natIP": "34.82.9.9"}]}],
            "serviceAccounts": [{"email": "App@demo.iam.gserviceaccount.com"}]}]
    azure = [{"name": "web-vm",
              "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/web-vm",
              "privateIps": "10.1.0.4", "publicIps": "20.42.1.1,20.42.1.2", "identity": {"principalId": "OID-1"}}]
    inventory = Inventory()
    for name, data in (("aws.json", aws), ("gcp.json", gcp), ("azure.json", azure)):
        (tmp_path / name).write_text(json.dumps(data))
        load_inventory(str(tmp_path / name), inventory)
    assert inventory.addresses("i-0aaa1111bbbb22223") == {"10.0.1.5", "54.200.10.20", "10.0.1.6", "54.200.10.21"}
    hosts = inventory.hosts()
    assert hosts["web-1"] == hosts["ip-10-0-1-5"] == "i-0aaa1111bbbb22223"
    assert [w.id for w in inventory.with_identity("app@demo.iam.gserviceaccount.com")] == ["vm-1"]
    assert inventory.addresses("web-vm") == {"10.1.0.4", "20.42.1.1", "20.42.1.2"}
    assert [w.id for w in inventory.with_identity("oid-1")] == ["web-vm"]
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="describe-instances"):
        load_inventory(str(tmp_path / "other.json"), inventory)


def test_ranges_formats_and_longest_match(tmp_path: Path) -> None:
    ranges = load_ranges(str(RANGES))
    assert ranges.lookup("54.200.1.1", "aws") is not None
    assert ranges.lookup("54.200.1.1", "aws").service == "EC2"  # type: ignore[union-attr]  # specific over AMAZON
    assert ranges.lookup("2600:1f14::1") is not None and ranges.lookup("203.0.113.1") is None
    load_ranges(str(FIXTURES / "gcp" / "cloud.json"), ranges)
    load_ranges(str(FIXTURES / "azure" / "ServiceTags.json"), ranges)
    assert ranges.providers == {"aws", "gcp", "azure"}
    assert ranges.lookup("34.82.1.2", "gcp") is not None and ranges.lookup("20.42.9.9", "azure") is not None
    assert load_cloud({}, tmp_path).ranges.providers == set()
