"""Exported Sigma rules: generated from the knowledge base and the tuning file, valid for pySigma and the
SigmaHQ validators, stable, deterministic and versioned."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

pytest.importorskip("sigma")
yaml = pytest.importorskip("yaml")

from sigma.collection import SigmaCollection  # noqa: E402
from sigma.plugins import InstalledSigmaPlugins  # noqa: E402

from imds_detect import load_config  # noqa: E402
from imds_detect.export import hostforms, meta  # noqa: E402
from imds_detect.export.sigma_rules import build_rules  # noqa: E402
from imds_detect.export.targets import sigma_text  # noqa: E402
from imds_detect.knowledge.endpoints import ADDRESSES, NAMES  # noqa: E402

TUNING = Path(__file__).resolve().parent / "fixtures" / "export" / "tuning.toml"

# Validators left out, each because it downloads reference data at run time (tests run offline): MITRE
# ATT&CK and D3FEND STIX bundles (attacktag, d3_fendtag, sigmahq_tags_techniques_without_tactics) and the SigmaHQ
# taxonomy JSON (sigmahq_fieldname_cast, sigmahq_invalid_fieldname, sigmahq_logsource_unknown,
# sigmahq_redundant_field). Run `sigma check` online for them; note that the taxonomy
# has no CommandLine/ParentImage for network_connection, which the network rules use on purpose (Defender
# and Sysmon-style network records carry the initiating command line, and the script-run agents need it).
NEEDS_DOWNLOAD = frozenset({
    "attacktag", "d3_fendtag", "sigmahq_tags_techniques_without_tactics",
    "sigmahq_fieldname_cast", "sigmahq_invalid_fieldname", "sigmahq_logsource_unknown", "sigmahq_redundant_field",
})


def _all_text(config_path: str | None = None) -> str:
    return "\n---\n".join(sigma_text(doc) for doc in build_rules(load_config(config_path)))


def test_every_rule_parses_without_errors() -> None:
    collection = SigmaCollection.from_yaml(_all_text())
    assert len(collection.rules) == len(build_rules(load_config(None)))
    assert [error for rule in collection.rules for error in rule.errors] == []


def test_validators_report_no_issue() -> None:
    """pySigma's built-in validators and every SigmaHQ validator, except NEEDS_DOWNLOAD: zero issues."""
    collection = SigmaCollection.from_yaml(_all_text(str(TUNING)))
    validators = InstalledSigmaPlugins.autodiscover().validators
    assert any(name.startswith("sigmahq_") for name in validators), "pysigma-validators-sigmahq is not installed"
    assert set(validators) >= NEEDS_DOWNLOAD
    ran, issues = [], []
    for name, validator_class in sorted(validators.items()):
        if name in NEEDS_DOWNLOAD:
            continue
        validator = validator_class()
        for rule in collection.rules:
            issues += [f"{name}: {issue}" for issue in validator.validate(rule)]
        issues += [f"{name}: {issue}" for issue in validator.finalize()]
        ran.append(name)
    assert issues == []
    assert len(ran) >= 60  # built-in and SigmaHQ validators


def test_ids_are_stable_uuid5_and_unique() -> None:
    docs = build_rules(load_config(None))
    ids = [doc.data["id"] for doc in docs]
    assert len(set(ids)) == len(ids)
    for doc in docs:
        assert doc.data["id"] == str(uuid.uuid5(meta.NAMESPACE, doc.name))
        assert doc.data["date"] == meta.release_date()
        assert "attack.t1552.005" in doc.data["tags"] and "attack.credential-access" in doc.data["tags"]
        assert doc.data["falsepositives"]
        assert "engine" in doc.data["description"]  # what a plain SIEM query cannot see, or no engine counterpart


def test_levels_follow_the_path_class() -> None:
    levels = {doc.name: doc.data["level"] for doc in build_rules(load_config(None))}
    assert levels["imds_command_line_high"] == "high"
    assert levels["imds_command_line_medium"] == "medium"
    assert levels["imds_command_line_low"] == "low"
    assert levels["imds_dns_query_metadata_name"] == "informational"
    high = next(d for d in build_rules(load_config(None)) if d.name == "imds_command_line_high")
    values = high.data["detection"]["selection_path_high"]["CommandLine|contains"]
    assert "/latest/meta-data/iam/security-credentials/" in values and "/metadata/identity/oauth2/token" in values


def test_rules_carry_every_address_and_name_of_the_knowledge_base() -> None:
    text = _all_text()
    for info in ADDRESSES:
        assert info.address in text
    for name in NAMES:
        assert name.name in text
    encoded = hostforms.encoded_host_values()
    for spelling in ("0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "169.254.43518",
                     "0251.0xfe.169.254", "::ffff:a9fe:a9fe", "0:0:0:0:0:ffff:a9fe:a9fe",
                     "169%2e254%2e169%2e254", "%31%36%39%2e%32%35%34%2e%31%36%39%2e%32%35%34",
                     "169-254-169-254.nip.io", "0x64.0x6464c8"):
        assert spelling in encoded, spelling


def test_allowlist_uses_folder_paths_and_the_users_tuning() -> None:
    default = _all_text()
    assert "/usr/bin/amazon-ssm-agent" in default and "C:\\program files\\amazon\\ssm\\\\*.exe" in default
    assert "filter_main_aws_ssm_agent" in default and "filter_optional" not in default
    tuned = _all_text(str(TUNING))
    assert "filter_optional_corp_inventory" in tuned and "/opt/corp/inventory/bin/collector" in tuned
    command_line = next(d for d in build_rules(load_config(str(TUNING))) if d.name == "imds_command_line_high")
    assert "filter_main_datadog_agent" not in command_line.data["detection"]  # disabled in the tuning file
    assert "filter_optional_corp_inventory" in command_line.data["detection"]


def test_sigma_files_are_deterministic_and_versioned() -> None:
    assert _all_text() == _all_text()
    for doc in build_rules(load_config(None)):
        assert sigma_text(doc).startswith(f"# generated by imds-detect {meta.tool_version()} ")
