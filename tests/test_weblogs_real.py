"""The real Apache combined log (10,000 lines, 2015, no metadata URLs) gives no alert: the false-positive count of
the web-log detections on real traffic. Skipped when ../shared/data is absent."""

from __future__ import annotations

import pytest
from weblog_support import REAL_APACHE

from imds_detect import ScanOptions, Severity, scan

pytestmark = pytest.mark.skipif(not REAL_APACHE.exists(), reason="../shared/data/weblogs is not present")


@pytest.mark.parametrize("prefilter", [True, False])
def test_real_apache_log_has_no_false_positive(prefilter: bool, capsys: pytest.CaptureFixture[str]) -> None:
    result = scan([str(REAL_APACHE)], ScanOptions(prefilter=prefilter, min_severity=Severity.INFORMATIONAL))
    with capsys.disabled():
        print(f"\nreal Apache log ({'prefilter' if prefilter else 'every line parsed'}): "
              f"{len(result.alerts)} false positive(s) in {result.summary.records} lines")
    assert result.summary.files[0].format == "access"  # recognised by content
    assert result.summary.records == 10_000 and result.summary.usable == 10_000
    assert not result.summary.skipped  # every line reads as a combined-format request
    assert [alert.as_dict() for alert in result.alerts] == []
    if prefilter:
        assert result.summary.parsed < 100  # percent-escaped lines are decoded and cleared, not parsed
