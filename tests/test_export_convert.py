"""Conversions through pySigma back ends, the native Sentinel content, the export command, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

pytest.importorskip("sigma")
yaml = pytest.importorskip("yaml")

from click.testing import CliRunner  # noqa: E402

from imds_detect import load_config  # noqa: E402
from imds_detect.export import meta  # noqa: E402
from imds_detect.export.command import export_command  # noqa: E402
from imds_detect.export.convert import NAMED, backend_targets  # noqa: E402
from imds_detect.export.targets import build_export  # noqa: E402

TUNING = Path(__file__).resolve().parent / "fixtures" / "export" / "tuning.toml"

# Rules a pipeline cannot take, by design of the pipeline (its tables have no such log source).
XDR_UNSUPPORTED = {"imds_http_request_high", "imds_http_request_medium", "imds_http_request_low",
                   "imds_ssrf_webserver_high", "imds_ssrf_webserver_medium", "imds_ssrf_webserver_low",
                   "imds_dns_query_embedded_address", "imds_dns_query_metadata_name",
                   "imds_cloudtrail_metadata_options_weakened"}
ASIM_UNSUPPORTED = {"imds_ssrf_webserver_high", "imds_ssrf_webserver_medium", "imds_ssrf_webserver_low",
                    "imds_dns_query_embedded_address", "imds_dns_query_metadata_name",
                    "imds_cloudtrail_metadata_options_weakened"}


@pytest.fixture(scope="module")
def export() -> dict[str, str]:
    return build_export(load_config(None), ["all"])


def test_named_backends_are_installed_and_discovered() -> None:
    targets = backend_targets()
    for name in NAMED:
        assert name in targets, f"{name}: back end {NAMED[name][0]} not installed"


def test_every_target_converts_what_its_pipeline_supports(export: dict[str, str]) -> None:
    manifest = json.loads(export["manifest.json"])
    for target, info in manifest["targets"].items():
        failed = set(info.get("not_converted", {}))
        if target == "kql":
            assert failed == XDR_UNSUPPORTED
        elif target == "kql-asim":
            assert failed == ASIM_UNSUPPORTED
        else:
            assert failed == set(), (target, info.get("not_converted"))
        assert info["files"]
    assert set(manifest["targets"]) >= {"sigma", "sentinel-rule", "arm", "hunting", *NAMED}
    assert export["kql/proc_creation_imds_command_line_high.kql"].count("DeviceProcessEvents") == 1
    assert "imNetworkSession" in export["kql-asim/net_connection_imds_network_connection_low.kql"]
    assert "RemotePort in~" not in export["kql/net_connection_imds_network_connection_low.kql"]


def test_every_file_carries_the_version(export: dict[str, str]) -> None:
    version = meta.tool_version()
    for path, text in export.items():
        assert f"imds-detect {version}" in text, path


def test_export_is_byte_identical_on_rerun(export: dict[str, str]) -> None:
    assert build_export(load_config(None), ["all"]) == export


def test_sentinel_rule_has_every_field_and_generated_query(export: dict[str, str]) -> None:
    rule = yaml.safe_load(export["sentinel/imds_metadata_access.yaml"])
    for key in ("id", "name", "description", "severity", "requiredDataConnectors", "queryFrequency", "queryPeriod",
                "triggerOperator", "triggerThreshold", "tactics", "relevantTechniques", "query", "entityMappings",
                "customDetails", "alertDetailsOverride", "eventGroupingSettings", "version", "kind"):
        assert key in rule, key
    assert {m["entityType"] for m in rule["entityMappings"]} == {"Host", "Account", "Process", "IP"}
    query = rule["query"]
    for text in ("DeviceNetworkEvents", "DeviceProcessEvents", "169.254.170.23", "100.100.100.200", "fd00:ec2::254",
                 "metadata.google.internal", "PathClassSeverity", "allowlist aws-ssm-agent (default)",
                 "InitiatingProcessFolderPath matches regex", "cloud-init-script"):
        assert text in query, text
    arm = json.loads(export["sentinel/imds_metadata_access.arm.json"])
    resource = arm["resources"][0]
    assert resource["kind"] == "Scheduled" and resource["properties"]["query"] == query
    assert rule["id"] in resource["name"]
    hunting = [p for p in export if p.startswith("sentinel/hunting/")]
    assert len(hunting) == 3
    for path in hunting:
        doc = yaml.safe_load(export[path])
        assert {"id", "name", "description", "requiredDataConnectors", "tactics", "relevantTechniques",
                "query"} <= set(doc)


def test_tuning_reaches_every_target() -> None:
    files = build_export(load_config(str(TUNING)), ["sigma", "sentinel-rule", "kql"])
    assert "/opt/corp/inventory/bin/collector" in files["sentinel/imds_metadata_access.yaml"]
    assert "allowlist datadog-agent" not in files["sentinel/imds_metadata_access.yaml"]
    assert "/opt/corp/inventory/bin/collector" in files["kql/proc_creation_imds_command_line_low.kql"]


def _group() -> click.Group:
    @click.group()
    def main() -> None:
        """Test group standing in for imds_detect.cli.main."""

    main.add_command(export_command, "export")
    return main


def test_command_writes_the_export(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_group(), ["export", "--to", "sigma", "--to", "kql", "--config", str(TUNING),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "manifest.json" in written and "sigma/proc_creation_imds_command_line_high.yml" in written
    assert any(p.startswith("kql/") for p in written) and not any(p.startswith("splunk/") for p in written)
    first = {p: (tmp_path / "out" / p).read_bytes() for p in written}
    assert runner.invoke(_group(), ["export", "--to", "sigma", "--to", "kql", "--config", str(TUNING),
                                    "-o", str(tmp_path / "out")]).exit_code == 0
    assert {p: (tmp_path / "out" / p).read_bytes() for p in written} == first


def test_command_lists_targets_and_refuses_unknown_ones(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(export_command, ["--list"])
    assert listed.exit_code == 0
    assert {"sigma", "sentinel-rule", "arm", "hunting", "kql", "kql-asim", "splunk", "esql", "eql",
            "lucene"} <= set(listed.output.split())
    bad = runner.invoke(export_command, ["--to", "nope", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown export target" in bad.output
    bad_config = runner.invoke(export_command, ["--config", str(tmp_path / "missing.toml"), "-o", str(tmp_path)])
    assert bad_config.exit_code == 2
