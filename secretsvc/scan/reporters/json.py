"""The JSON report: exactly PRODUCT.md's {"image", "findings", "stats"}, plus the scan's "warnings"."""

from __future__ import annotations

import json

from secretsvc.scan.model import ScanReport


def render_json(report: ScanReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
