"""The image-layer leak detector, as a library.

    from secretsvc.scan import ScanOptions, scan
    report = scan("docker-archive:app.tar", ScanOptions(fail_on=Severity.HIGH))
    for finding in report.findings: ...

Names are loaded on first use, so importing `secretsvc.scan.model` (as the service does) does not load the
rule engine or the image sources.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secretsvc.scan.model import Finding, Location, ScanReport, ScanStats, ScanWarning, Severity
    from secretsvc.scan.pipeline import ScanOptions, scan

__all__ = ["Finding", "Location", "ScanOptions", "ScanReport", "ScanStats", "ScanWarning", "Severity", "scan"]

_HOMES = {
    "Finding": "secretsvc.scan.model",
    "Location": "secretsvc.scan.model",
    "ScanWarning": "secretsvc.scan.model",
    "Severity": "secretsvc.scan.model",
    "ScanOptions": "secretsvc.scan.pipeline",
    "ScanReport": "secretsvc.scan.model",
    "ScanStats": "secretsvc.scan.model",
    "scan": "secretsvc.scan.pipeline",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'secretsvc.scan' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
