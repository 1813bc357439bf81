"""The text report: grouped by layer with created_by, a summary, and nothing that can drive a terminal."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from secretsvc.scan.model import ScanReport, ScanStats, ScanWarning, Severity
from secretsvc.scan.reporters.text import plain_lines, render_text, safe, summary
from tests.unit.scan.reporters.conftest import sample_report


def _plain(report: ScanReport) -> str:
    out = io.StringIO()
    render_text(report, out, terminal=False)
    return out.getvalue()


def test_plain_groups_by_layer_with_created_by(report: ScanReport) -> None:
    text = _plain(report)
    lines = text.splitlines()
    assert lines[0] == "Image: docker-archive:/tmp/app.tar"
    headings = [line for line in lines if line.startswith(("Image config", "Layer "))]
    assert headings == [
        "Image config",
        f"Layer 0  {report.layers[0].diff_id}  (linux/amd64)",
        f"Layer 1  {report.layers[1].diff_id}  (linux/amd64)",
        f"Layer 2  {report.layers[2].diff_id}  (linux/amd64)",
    ]
    assert "  created by: ADD rootfs.tar /" in lines
    assert any("root/.ssh/id_rsa:1  [deleted_file]" in line for line in lines)
    assert any("[config_history]" in line for line in lines)
    assert lines[-1].startswith("Summary: 8 findings (2 critical, 2 high, 3 medium, 1 low) in 3 layers, 321 files")
    assert "suppressed: 2 by baseline, 1 by config" in lines[-1]
    assert lines[-1].endswith("FAIL: findings at or above low")
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31m" in text


def test_summary_pass_when_below_fail_on() -> None:
    report = sample_report(fail_on=Severity.CRITICAL)
    assert report.failed
    empty = ScanReport(image="x", findings=(), warnings=(), stats=ScanStats(), fail_on=Severity.HIGH)
    assert not empty.failed and empty.exit_code == 0
    assert summary(empty).endswith("PASS")
    assert summary(empty).startswith("Summary: 0 findings in 0 files")


def test_rich_terminal_output_has_the_same_content_and_escapes(
    report: ScanReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    out = io.StringIO()
    render_text(report, out, terminal=True)
    text = out.getvalue()
    for needle in ("Image config", "created by", "root/.ssh/id_rsa:1", "deleted_file", "Summary:"):
        assert needle in text
    # rich markup in a hostile path is shown literally, never interpreted.
    assert "etc/app conf [x].ini:3" in text
    assert "\x1b[31m" not in text and "\x1b]0;" not in text and "\x1b[2J" not in text


def test_safe_escapes_controls_only() -> None:
    assert safe("ok/path é") == "ok/path é"
    assert safe("a\nb\x1b") == "a\\nb\\x1b"


def test_plain_lines_without_findings_is_a_summary() -> None:
    empty = ScanReport(image="dir", findings=(), warnings=(), stats=ScanStats(files_scanned=2))
    assert list(plain_lines(empty))[-1].startswith("Summary: 0 findings in 2 files")


def _incomplete(fail_on: Severity, **kw: object) -> ScanReport:
    report = sample_report(fail_on)
    stats = replace(report.stats, warnings=2, not_read=(("layer.unreadable", 1), ("limit.file_size", 1)))
    return replace(report, stats=stats, **kw)  # type: ignore[arg-type]


def test_summary_says_what_was_not_read_and_the_verdict_follows_the_exit_status() -> None:
    # Findings come first...
    both = summary(_incomplete(Severity.LOW))
    assert "; incomplete: not read: layer.unreadable (1), limit.file_size (1)." in both
    assert both.endswith("FAIL: findings at or above low")
    # ...then the incomplete read...
    assert summary(_incomplete(Severity.CRITICAL, findings=())).endswith("FAIL: incomplete scan")
    # ...unless it is accepted, which the summary still says.
    accepted = summary(_incomplete(Severity.LOW, findings=(), allow_incomplete=True))
    assert "incomplete (accepted): not read: layer.unreadable (1)" in accepted and accepted.endswith("PASS")
    partly = _incomplete(Severity.LOW, findings=(), accepted_warnings=frozenset({"limit.file_size"}))
    assert summary(partly).endswith("FAIL: incomplete scan")


def test_warnings_that_lost_content_are_marked(report: ScanReport) -> None:
    lost = ScanWarning("layer.unreadable", "cannot be read", 2, None)
    kept = ScanWarning("path.unsafe", "normalised", 1, "etc/x")
    lines = _plain(replace(report, warnings=(lost, kept)))
    assert "  layer.unreadable: cannot be read (layer 2)  [incomplete]\n" in lines
    assert "  path.unsafe: normalised (layer 1, etc/x)\n" in lines
