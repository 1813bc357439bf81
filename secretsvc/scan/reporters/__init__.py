"""Render a `ScanReport` for people (text) and machines (json, sarif).

Reporters see only `Finding`s, which hold a redacted form and a keyed fingerprint, never a secret. Text that
came from the image (paths, created_by lines, warning messages) is escaped before it reaches a terminal.
"""

from __future__ import annotations

from typing import TextIO

from secretsvc.scan.model import ScanReport
from secretsvc.scan.reporters.json import render_json
from secretsvc.scan.reporters.sarif import render_sarif
from secretsvc.scan.reporters.text import render_text

FORMATS = ("text", "json", "sarif")


def write_report(report: ScanReport, fmt: str, stream: TextIO, *, terminal: bool = False) -> None:
    """Write `report` to `stream` in `fmt`; `terminal` selects colour and tables for the text format."""
    if fmt == "text":
        render_text(report, stream, terminal=terminal)
    elif fmt == "json":
        stream.write(render_json(report))
    elif fmt == "sarif":
        stream.write(render_sarif(report))
    else:
        raise ValueError(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")
