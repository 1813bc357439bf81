"""The text report: findings grouped by layer with the layer's `created_by`, then warnings and a summary.

A warning that lost content is marked "[incomplete]", and the summary lists, by code, what was not read; its
verdict is the exit status in words: "FAIL: findings at or above ...", "FAIL: incomplete scan" or "PASS".

On a terminal it is drawn with rich (colour, tables); elsewhere (CI logs, files) it is plain lines that grep
and diff well. Paths and created_by lines come from the image, which may be hostile: control characters are
escaped and nothing is interpreted as rich markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from secretsvc.scan.model import Finding, LayerSummary, ScanReport, ScanWarning, Severity

_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


def safe(text: str) -> str:
    """`text` with control and other non-printable characters escaped, so it cannot drive a terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def render_text(report: ScanReport, stream: TextIO, *, terminal: bool = False) -> None:
    if terminal:
        _render_rich(report, stream)
    else:
        for line in plain_lines(report):
            stream.write(line + "\n")


def groups(report: ScanReport) -> Iterator[tuple[str, LayerSummary | None, list[Finding]]]:
    """(heading, layer, findings) per image config / layer, in report order."""
    summaries = {(s.index, s.diff_id): s for s in report.layers}
    current: tuple[int | None, str | None] | None = None
    bucket: list[Finding] = []
    for finding in report.findings:
        key = (finding.layer_index, finding.layer_digest)
        if key != current and bucket:
            yield _heading(current, summaries), _layer(current, summaries), bucket
            bucket = []
        current = key
        bucket.append(finding)
    if bucket:
        yield _heading(current, summaries), _layer(current, summaries), bucket


def plain_lines(report: ScanReport) -> Iterator[str]:
    yield f"Image: {safe(report.image)}"
    for heading, layer, findings in groups(report):
        yield ""
        yield heading
        if layer is not None and layer.created_by:
            yield f"  created by: {safe(layer.created_by)}"
        for f in findings:
            where = safe(f.path) + (f":{f.line}" if f.line is not None else "")
            yield (
                f"  {f.severity.label.upper():<8} {f.rule_id:<28} {where}  [{f.location.value}]  "
                f"{f.redacted}  fingerprint {f.fingerprint[:16]}  "
                f"{safe(str(f.origin))} ({f.confidence.label} confidence)"
            )
            if f.description:
                yield f"           {safe(f.description)}"
    if report.warnings:
        yield ""
        yield f"Warnings ({report.stats.warnings}):"
        for w in report.warnings:
            yield _warning_line(w)
    yield ""
    yield summary(report)


def summary(report: ScanReport) -> str:
    stats = report.stats
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    by_severity = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n)
    found = f"{stats.findings} finding{'s' if stats.findings != 1 else ''}"
    if by_severity:
        found += f" ({by_severity})"
    scope = (
        f"{stats.layers} layer{'s' if stats.layers != 1 else ''}, " if stats.images else ""
    ) + f"{stats.files_scanned} files, {_size(stats.bytes_scanned)} in {stats.duration_s:.2f} s"
    parts = [f"{found} in {scope}"]
    if stats.suppressed_by_baseline or stats.suppressed_by_config:
        parts.append(f"suppressed: {stats.suppressed_by_baseline} by baseline, {stats.suppressed_by_config} by config")
    if stats.hidden:
        total = sum(n for _, n in stats.hidden)
        listing = ", ".join(f"{n} {reason}" for reason, n in stats.hidden)
        parts.append(
            f"{total} hidden below {stats.min_confidence.label} confidence: {listing}; --min-confidence low shows them"
        )
    if stats.warnings:
        parts.append(f"{stats.warnings} warning{'s' if stats.warnings != 1 else ''}")
    if stats.not_read:
        listing = ", ".join(f"{code} ({count})" for code, count in stats.not_read)
        accepted = "" if report.incomplete_fails else " (accepted)"
        parts.append(f"incomplete{accepted}: not read: {listing}")
    if report.baseline_written is not None:
        parts.append(f"baseline written with {report.baseline_written} entries")
    if report.failed:
        verdict = f"FAIL: findings at or above {report.fail_on.label}"
    elif report.incomplete_fails:
        verdict = "FAIL: incomplete scan"
    else:
        verdict = "PASS"
    return f"Summary: {'; '.join(parts)}. {verdict}"


def _render_rich(report: ScanReport, stream: TextIO) -> None:
    console = Console(file=stream, highlight=False, soft_wrap=False)
    console.print(Text.assemble(("Image: ", "bold"), safe(report.image)))
    for heading, layer, findings in groups(report):
        console.print()
        console.print(Text(heading, style="bold underline"))
        if layer is not None and layer.created_by:
            console.print(Text.assemble(("  created by: ", "dim"), safe(layer.created_by)))
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2, 0, 2))
        for column in ("severity", "rule", "path", "location", "redacted", "fingerprint", "origin", "confidence"):
            table.add_column(column, overflow="fold")
        for f in findings:
            where = safe(f.path) + (f":{f.line}" if f.line is not None else "")
            rule = Text(f.rule_id)
            if f.description:  # what the rule found; for stored-secret, which secret and version
                rule.append("\n" + safe(f.description), style="dim")
            table.add_row(
                Text(f.severity.label.upper(), style=_SEVERITY_STYLE[f.severity]),
                rule,
                Text(where),
                Text(f.location.value),
                Text(f.redacted),
                Text(f.fingerprint[:16], style="dim"),
                Text(safe(str(f.origin))),
                Text(f.confidence.label),
            )
        console.print(table)
    if report.warnings:
        console.print()
        console.print(Text(f"Warnings ({report.stats.warnings})", style="bold yellow"))
        for w in report.warnings:
            console.print(Text(_warning_line(w), style="red" if w.incomplete else ""))
    console.print()
    console.print(Text(summary(report), style="bold red" if report.exit_code else "bold green"))


_Key = tuple[int | None, str | None]
_Summaries = dict[tuple[int, str | None], LayerSummary]


def _heading(key: _Key | None, summaries: _Summaries) -> str:
    if key is None:
        return "Image config"
    index, digest = key
    if index is None:
        return "Image config"
    layer = summaries.get((index, digest))
    if digest is None and layer is None:
        return "Files" if index == 0 else f"Layer {index}"
    text = f"Layer {index}  {digest or ''}".rstrip()
    if layer is not None and layer.platform:
        text += f"  ({layer.platform})"
    return text


def _layer(key: _Key | None, summaries: _Summaries) -> LayerSummary | None:
    if key is None:
        return None
    index, digest = key
    return None if index is None else summaries.get((index, digest))


def _warning_line(w: ScanWarning) -> str:
    mark = "  [incomplete]" if w.incomplete else ""
    return f"  {w.code}: {safe(w.message)}{_warning_place(w.layer_index, w.path)}{mark}"


def _warning_place(layer_index: int | None, path: str | None) -> str:
    parts = []
    if layer_index is not None:
        parts.append(f"layer {layer_index}")
    if path:
        parts.append(safe(path))
    return f" ({', '.join(parts)})" if parts else ""


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
