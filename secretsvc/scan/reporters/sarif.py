"""The SARIF 2.1.0 report, in the shape GitHub code scanning accepts.

One run; the driver lists every rule that was run (id, short description, default level and a numeric
`security-severity`, which GitHub uses to rank alerts). A result's physical location is the path inside the
layer; the layer digest and index, and where in the image the file was (deleted, overwritten, config), go in
a logical location and in properties. Our keyed fingerprint is the result's partial fingerprint, so the same
leak is one alert across uploads when a stable `--fingerprint-key` is used. Scan warnings become tool
execution notifications: level "error" for one that lost content, "warning" otherwise; and an incomplete scan
(some content not read, accepted or not) is an invocation with `executionSuccessful: false`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from secretsvc import __version__
from secretsvc.scan.model import Finding, Location, ScanReport, Severity
from secretsvc.scan.origin import Confidence

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "secretsvc/fingerprint/v1"

_LEVEL = {
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
_RANK = {Confidence.LOW: 20.0, Confidence.MEDIUM: 60.0, Confidence.HIGH: 90.0}
# GitHub buckets security-severity: >= 9.0 critical, >= 7.0 high, >= 4.0 medium, else low.
_SECURITY_SEVERITY = {
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}
_WHERE = {
    Location.FILE: "in a file",
    Location.DELETED_FILE: "in a file that a later layer deletes (still in the image)",
    Location.OVERWRITTEN_FILE: "in a file that a later layer overwrites (still in the image)",
    Location.CONFIG_ENV: "in the image config's Env",
    Location.CONFIG_LABEL: "in the image config's Labels",
    Location.CONFIG_HISTORY: "in the image history (created_by)",
    Location.CONFIG_OTHER: "in the image config",
}


def artifact_uri(finding: Finding) -> str:
    """A relative URI reference for the finding's path (config findings live under "image-config/")."""
    path = finding.path if finding.layer_index is not None else f"image-config/{finding.path}"
    return quote(path, safe="/!-._~")


def sarif_document(report: ScanReport) -> dict[str, Any]:
    rule_ids = [rule.rule_id for rule in report.rules]
    known = set(rule_ids)
    # A finding of a rule missing from the summaries (a rule set without metadata) still gets a rule entry.
    extra = sorted({f.rule_id for f in report.findings} - known)
    rules: list[dict[str, Any]] = []
    for rule in report.rules:
        rules.append(_rule(rule.rule_id, rule.severity, rule.description))
    for rule_id in extra:
        severity = max(f.severity for f in report.findings if f.rule_id == rule_id)
        rules.append(_rule(rule_id, severity, ""))
    index = {rule["id"]: number for number, rule in enumerate(rules)}
    notifications = [
        {
            "level": "error" if warning.incomplete else "warning",
            "message": {"text": warning.message or warning.code},
            "descriptor": {"id": warning.code},
            "properties": {
                "layer_index": warning.layer_index,
                "path": warning.path,
                "incomplete": warning.incomplete,
            },
        }
        for warning in report.warnings
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "secretsvc",
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "invocations": [_invocation(report, notifications)],
                "results": [_result(finding, index[finding.rule_id]) for finding in report.findings],
                "properties": {"image": report.image, "stats": report.stats.to_json()},
            }
        ],
    }


def _invocation(report: ScanReport, notifications: list[dict[str, Any]]) -> dict[str, Any]:
    invocation: dict[str, Any] = {
        "executionSuccessful": report.complete,
        "exitCode": report.exit_code,
        "toolExecutionNotifications": notifications,
    }
    if not report.complete:
        listing = ", ".join(f"{code} ({count})" for code, count in report.stats.not_read)
        accepted = "accepted" if not report.incomplete_fails else "not accepted"
        invocation["exitCodeDescription"] = f"incomplete scan ({accepted}): not read: {listing}"
    return invocation


def render_sarif(report: ScanReport) -> str:
    return json.dumps(sarif_document(report), indent=2, ensure_ascii=False) + "\n"


def _rule(rule_id: str, severity: Severity, description: str) -> dict[str, Any]:
    text = description or f"Credential matched by rule {rule_id}"
    return {
        "id": rule_id,
        "name": _camel(rule_id),
        "shortDescription": {"text": text},
        "fullDescription": {"text": f"{text} (severity {severity.label})."},
        "help": {
            "text": "A credential is stored in the image. Anyone who pulls the image can read it, even "
            "from a layer whose file a later layer deletes. Revoke and rotate it, then rebuild without it "
            "(use build secrets or inject at run time).",
        },
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[severity],
            "precision": "high",
            "tags": ["security", "secret", "external/cwe/cwe-798"],
        },
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    where = _WHERE[finding.location]
    layer = "image config" if finding.layer_index is None else f"layer {finding.layer_index}"
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(finding)}}
    if finding.line is not None:
        physical["region"] = {"startLine": finding.line}
    location: dict[str, Any] = {"physicalLocation": physical}
    if finding.layer_index is None or finding.layer_digest is not None:
        location["logicalLocations"] = [
            {
                "name": finding.layer_digest or "image-config",
                "kind": "module",
                "fullyQualifiedName": f"{layer}: {finding.path}",
            }
        ]
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.description or finding.rule_id} ({finding.redacted}) {where}, {layer}"},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {
            "severity": finding.severity.label,
            "location": finding.location.value,
            "layer_digest": finding.layer_digest,
            "layer_index": finding.layer_index,
            "redacted": finding.redacted,
            "origin": finding.origin.to_json(),
            "confidence": finding.confidence.label,
        },
        # SARIF's rank (0-100) orders results by how likely they are real: by confidence.
        "rank": _RANK[finding.confidence],
    }


def _camel(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.replace("_", "-").split("-") if part)
