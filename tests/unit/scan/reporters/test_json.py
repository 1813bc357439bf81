"""The JSON report keeps PRODUCT.md's schema exactly."""

from __future__ import annotations

import io
import json

from secretsvc.scan.model import Location, ScanReport
from secretsvc.scan.reporters import write_report
from secretsvc.scan.reporters.json import render_json

FINDING_KEYS = {
    "rule_id",
    "severity",
    "layer_digest",
    "layer_index",
    "path",
    "line",
    "location",
    "fingerprint",
    "redacted",
}


def test_top_level_and_finding_keys(report: ScanReport) -> None:
    document = json.loads(render_json(report))
    assert set(document) == {"image", "findings", "stats", "warnings"}
    assert document["image"] == report.image
    assert len(document["findings"]) == len(report.findings)
    for item, finding in zip(document["findings"], report.findings, strict=True):
        assert set(item) >= FINDING_KEYS
        assert item["severity"] in {"low", "medium", "high", "critical"}
        assert item["location"] in {loc.value for loc in Location}
        assert item["layer_digest"] == finding.layer_digest
        assert item["line"] is None or item["line"] >= 1
        assert not item["path"].startswith("/")
    config = [f for f in document["findings"] if f["layer_index"] is None]
    assert config and all(f["layer_digest"] is None for f in config)
    assert document["stats"]["files_scanned"] == 321
    assert document["stats"]["suppressed_by_baseline"] == 2
    assert document["warnings"][0]["code"] == "tar.unsafe_path"


def test_write_report_dispatches(report: ScanReport) -> None:
    out = io.StringIO()
    write_report(report, "json", out)
    assert json.loads(out.getvalue())["image"] == report.image
