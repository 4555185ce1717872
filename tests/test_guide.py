"""Responder guides: every rule has one, `explain` shows it, every alert points at it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.detect.rules import RULES
from imds_detect.guide import guide_for
from imds_detect.guide.content import hunting_queries

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"


def test_every_rule_has_its_own_guide() -> None:
    for rule in RULES:
        guide = guide_for(rule.id)
        assert guide.investigate, f"{rule.id}: no investigation steps (add guide/data/{rule.id}.toml)"
        assert guide.respond and guide.never_allow and guide.allow_safely, rule.id
    queries = hunting_queries()
    for rule in RULES:
        assert set(guide_for(rule.id).hunting) <= set(queries), rule.id


def test_playbook_names_the_revocation_and_hardening_steps() -> None:
    guide = guide_for("imds-command-line")
    text = json.dumps(guide.as_dict())
    assert "AWSRevokeOlderSessions" in text
    assert "--http-put-response-hop-limit 1" in text and "--http-tokens required" in text
    assert set(guide.revoke) == {"aws", "azure", "gcp"}
    assert any("container" in step.lower() for step in guide.harden)


def test_explain_text_includes_hunting_kql() -> None:
    result = CliRunner().invoke(main, ["explain", "imds-network-connection"])
    assert result.exit_code == 0
    assert "INVESTIGATION GUIDE" in result.stdout and "RESPONSE PLAYBOOK" in result.stdout
    assert "HUNTING QUERY imds_rare_process_metadata_access" in result.stdout
    assert "DeviceNetworkEvents" in result.stdout
    assert "imds-detect hunt rare-processes" in result.stdout


def test_explain_json_markdown_list_and_unknown() -> None:
    data = json.loads(CliRunner().invoke(main, ["explain", "imds-agent-masquerade", "--format", "json"]).stdout)
    assert data["rule_id"] == "imds-agent-masquerade"
    assert list(data["hunting_queries"]) == ["imds_agent_masquerade"]
    markdown = CliRunner().invoke(main, ["explain", "imds-dns-query", "--format", "markdown", "--no-queries"]).stdout
    assert markdown.startswith("# `imds-dns-query`") and "## Tuning: never allowlist" in markdown
    listing = CliRunner().invoke(main, ["explain", "--list"]).stdout.splitlines()
    assert len(listing) == len(RULES)
    unknown = CliRunner().invoke(main, ["explain", "imds-nope"])
    assert unknown.exit_code == 2 and "unknown rule 'imds-nope'" in unknown.stderr


def test_every_alert_links_its_guide() -> None:
    result = CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl"])
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(alerts) == 18
    assert all(alert["guide"] == f"imds-detect explain {alert['rule_id']}" for alert in alerts)
