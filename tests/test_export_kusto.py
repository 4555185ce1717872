"""Every generated KQL (native Sentinel content and pySigma's Kusto output) is checked by Microsoft's
Kusto.Language parser and semantic analyser (npm @kusto/language-service-next, run by tools/kusto/check.js)
against the Defender XDR and Sentinel table schemas in tools/kusto/schemas.json: zero diagnostics."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("sigma")
pytest.importorskip("yaml")

from imds_detect import load_config
from imds_detect.export.targets import build_export

KUSTO = Path(__file__).resolve().parent.parent / "tools" / "kusto"
PACKAGE = KUSTO / "node_modules" / "@kusto" / "language-service-next" / "Kusto.Language.Bridge.min.js"
TUNING = Path(__file__).resolve().parent / "fixtures" / "export" / "tuning.toml"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (needed for the Kusto checker)"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="@kusto/language-service-next is not installed: "
                       "run `npm ci` (or `npm install`) in tools/kusto (.ci/run does)"),
]


def check(queries: list[dict[str, str]]) -> dict[str, list[dict[str, object]]]:
    done = subprocess.run(["node", str(KUSTO / "check.js")], input=json.dumps({"queries": queries}),
                          capture_output=True, text=True, timeout=300, check=True)
    return {item["name"]: item["diagnostics"] for item in json.loads(done.stdout)}


def _queries(files: dict[str, str]) -> list[dict[str, str]]:
    import yaml

    queries = []
    rule = yaml.safe_load(files["sentinel/imds_metadata_access.yaml"])
    for database in ("defender", "sentinel"):
        queries.append({"name": f"analytic@{database}", "database": database, "query": rule["query"]})
    for path, text in files.items():
        if path.startswith("sentinel/hunting/"):
            queries.append({"name": path, "database": "sentinel", "query": yaml.safe_load(text)["query"]})
        elif path.startswith("kql/"):
            queries.append({"name": path, "database": "defender", "query": text})
        elif path.startswith("kql-asim/"):
            queries.append({"name": path, "database": "sentinel", "query": text})
    return queries


@pytest.mark.parametrize("tuning", [None, str(TUNING)], ids=["defaults", "tuned"])
def test_every_generated_kql_has_zero_diagnostics(tuning: str | None) -> None:
    files = build_export(load_config(tuning), ["sentinel-rule", "hunting", "kql", "kql-asim"])
    queries = _queries(files)
    assert len(queries) >= 2 + 3 + 10 + 13
    results = check(queries)
    assert {name: diags for name, diags in results.items() if diags} == {}


def test_checker_reports_errors() -> None:
    results = check([
        {"name": "unknown-column", "database": "defender", "query": "DeviceProcessEvents | where Nope == 1"},
        {"name": "asim-only-in-sentinel", "database": "defender", "query": "imProcessCreate | take 1"},
        {"name": "syntax", "database": "sentinel", "query": "DeviceNetworkEvents | where ("},
        {"name": "ok", "database": "sentinel", "query": "DeviceNetworkEvents | where RemotePort == 80 | take 1"},
    ])
    assert results["unknown-column"] and results["asim-only-in-sentinel"] and results["syntax"]
    assert results["ok"] == []
