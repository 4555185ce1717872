"""The HTML report: its data, its safety, and (in headless Chromium) what an analyst sees."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from imds_detect.cli import main
from imds_detect.engine.scan import scan
from imds_detect.model import Alert
from imds_detect.report.html import render_html
from imds_detect.report.html_data import report_data

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "defender-sample.jsonl"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--disable-gpu"]
INCIDENT = {"incident_id": "inc-1", "title": "Role credentials of i-0abc used from 203.0.113.9", "severity": "high",
            "timeline": [{"time": "2026-11-27T08:37:07Z", "side": "host", "summary": "curl read credentials"},
                         {"time": "2026-11-27T09:00:00Z", "side": "cloud",
                          "summary": "s3:ListBuckets from 203.0.113.9"}]}


def sample_alerts() -> list[Alert]:
    return scan([str(SAMPLE)]).alerts


def test_data_counts_every_alert_and_explains_the_allowlist() -> None:
    result = scan([str(SAMPLE)])
    data = report_data(result.alerts, result.summary, incidents=[INCIDENT])
    assert data["totals"]["alerts"] == 18
    assert data["totals"]["by_severity"] == {"critical": 0, "high": 14, "medium": 4, "low": 0, "informational": 0}
    assert sum(sum(b["counts"].values()) for b in data["timeline"]["buckets"]) == 18
    assert data["timeline"]["bucket_seconds"] == 60
    assert [row["host"] for row in data["hosts"]] == ["web-01.contoso.local"]
    assert data["processes"][0]["process"] == "/usr/bin/curl" and data["processes"][0]["alerts"] == 8
    curl = next(a for a in data["alerts"] if a["process"]["path"] == "/usr/bin/curl")
    assert "aws-ec2-instance-connect" in curl["why_not_allowlisted"]
    assert "parent: needs eic_curl_authorized_keys, has bash" in curl["why_not_allowlisted"]
    masquerade = next(a for a in data["alerts"] if a["rule_id"] == "imds-network-connection"
                      and a["process"]["path"] == "/tmp/.cache/cloud-init")
    assert "path: needs /usr/bin/cloud-init" in masquerade["why_not_allowlisted"]
    assert set(data["guides"]) == {a.rule_id for a in result.alerts}
    assert data["incidents"][0]["incident_id"] == "inc-1"


def test_large_inputs_are_listed_up_to_the_limit_and_counted_in_full() -> None:
    base = sample_alerts()
    many = [replace(alert, timestamp=alert.timestamp + timedelta(hours=index)) for index in range(300)
            for alert in base]
    data = report_data(many, scan([str(SAMPLE)]).summary, limit=1000)
    assert data["totals"] == {**data["totals"], "alerts": 5400, "listed": 1000, "not_listed": 4400}
    assert sum(sum(b["counts"].values()) for b in data["timeline"]["buckets"]) == 5400
    assert len(data["timeline"]["buckets"]) <= 60
    assert all(a["severity"] == "high" for a in data["alerts"])  # the worst first


def test_log_text_cannot_break_out_of_the_page() -> None:
    alert = sample_alerts()[0]
    hostile = replace(alert, raw='</script><script>alert(1)</script><!--', host="<img src=x onerror=alert(1)>")
    page = render_html(report_data([hostile], scan([str(SAMPLE)]).summary, title="<b>t</b>"))
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>t</b>" not in page
    embedded = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1))["alerts"][0]["raw"].startswith("</script>")
    shell = page.replace(embedded.group(1), "").replace("http://www.w3.org/2000/svg", "")
    assert "http://" not in shell and "https://" not in shell  # nothing to fetch: no CDN, fonts or images


def test_cli_writes_the_report_next_to_the_alerts(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["scan", str(SAMPLE), "--output", "jsonl", "--html", str(target)])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 18
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '"alerts":18' in page


def _artifact_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("IMDS_DETECT_ARTIFACTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="the Python playwright package is not installed")
    result = scan([str(SAMPLE)])
    base = result.alerts
    many = [replace(alert, timestamp=alert.timestamp + timedelta(minutes=7 * index)) for index in range(10)
            for alert in base]
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report_data(many, result.summary, incidents=[INCIDENT])), encoding="utf-8")
    errors: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1600})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: errors.append("request " + request.url)
                    if not request.url.startswith("file:") else None)
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=15000)
            counts = page.eval_on_selector_all("#timeline rect.bar", "rs => rs.map(r => +r.dataset.count)")
            assert sum(counts) == 180
            assert page.locator("#card-total .n").inner_text() == "180"
            assert page.locator("#card-high .n").inner_text() == "140"
            assert page.locator("#hosts tbody tr").count() == 1
            assert page.locator("#processes tbody tr").count() == 8
            assert page.locator("#alerts details.alert").count() == 50
            assert page.locator("#page").inner_text() == "page 1 of 4"
            page.select_option("#f-severity", "medium")
            assert page.locator("#alert-status").inner_text() == "40 matching"
            assert page.locator("#alerts details.alert").count() == 40
            assert page.locator("#incidents .incident li.step").count() == 2
            assert page.locator("#files tbody tr").count() == 1
            first = page.locator("#alerts details.alert").first
            first.locator("summary").click()
            assert "why not allowlisted" in first.inner_text()
            first.locator("a[href^='#guide-']").click()
            assert page.locator("#guide-imds-command-line").get_attribute("open") is not None
            page.screenshot(path=str(_artifact_dir(tmp_path) / "report-screenshot.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
