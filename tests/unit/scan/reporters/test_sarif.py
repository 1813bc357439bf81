"""The SARIF report validates against the SARIF 2.1.0 schema and carries what GitHub code scanning needs.

tests/data/sarif-2.1.0.json is the OASIS SARIF 2.1.0 JSON schema (rtm.5, draft-04) as shipped in the npm package
@microsoft/jest-sarif 1.0.0-beta.0 (MIT licence), unchanged.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from secretsvc.scan.model import Finding, Location, ScanReport, ScanStats, ScanWarning, Severity
from secretsvc.scan.reporters.sarif import FINGERPRINT_KEY, render_sarif, sarif_document

SCHEMA_PATH = Path(__file__).parents[3] / "data" / "sarif-2.1.0.json"
# RFC 3986 relative reference: no spaces, controls, brackets or backslashes, no scheme-like first segment.
URI_REFERENCE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")


def validate(document: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator_class(schema, format_checker=validator_class.FORMAT_CHECKER).validate(document)


def test_document_validates_against_the_schema(report: ScanReport) -> None:
    validate(json.loads(render_sarif(report)))


def test_empty_report_validates() -> None:
    validate(sarif_document(ScanReport(image="oci:x", findings=(), warnings=(), stats=ScanStats())))


def test_the_schema_rejects_a_broken_document(report: ScanReport) -> None:
    document = sarif_document(report)
    document["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_rules_results_and_fingerprints(report: ScanReport) -> None:
    run = sarif_document(report)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    # generic-secret-assignment has a finding but no summary: it still gets a rule entry.
    assert "generic-secret-assignment" in ids
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in {"note", "warning", "error"}
        assert 0.0 < float(rule["properties"]["security-severity"]) <= 10.0
    critical = next(r for r in rules if r["id"] == "private-key")
    assert float(critical["properties"]["security-severity"]) >= 9.0
    assert len(run["results"]) == len(report.findings)
    for result, finding in zip(run["results"], report.findings, strict=True):
        assert ids[result["ruleIndex"]] == result["ruleId"] == finding.rule_id
        assert result["partialFingerprints"][FINGERPRINT_KEY] == finding.fingerprint
        assert result["level"] == (
            "error"
            if finding.severity >= Severity.HIGH
            else "warning"
            if finding.severity == Severity.MEDIUM
            else "note"
        )
        location = result["locations"][0]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert URI_REFERENCE.fullmatch(uri), uri
        assert ":" not in uri.split("/", 1)[0]
        if finding.line is None:
            assert "region" not in location["physicalLocation"]
        else:
            assert location["physicalLocation"]["region"]["startLine"] == finding.line
        assert location["logicalLocations"][0]["name"] == (finding.layer_digest or "image-config")
        assert result["properties"]["location"] == finding.location.value
        assert finding.redacted in result["message"]["text"]


def test_paths_become_uris_that_decode_back(report: ScanReport) -> None:
    from urllib.parse import unquote

    run = sarif_document(report)["runs"][0]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]]
    assert unquote(uris[5]) == "etc/app conf [x].ini"
    assert uris[6] == "opt/app.jar!BOOT-INF/classes/app.properties"
    assert unquote(uris[0]) == "image-config/Env[1]"


def test_warnings_become_notifications(report: ScanReport) -> None:
    invocation = sarif_document(report)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    (note,) = invocation["toolExecutionNotifications"]
    assert note["descriptor"]["id"] == "tar.unsafe_path"


def test_plain_directory_findings_have_no_layer() -> None:
    finding = Finding("jwt", Severity.MEDIUM, None, 0, "src/app.py", 4, Location.FILE, "e" * 64, "eyJ…(120 chars)")
    report = ScanReport(image="src", findings=(finding,), warnings=(), stats=ScanStats(files_scanned=1))
    document = sarif_document(report)
    validate(document)
    (location,) = document["runs"][0]["results"][0]["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "src/app.py"
    assert "logicalLocations" not in location


def test_an_incomplete_scan_is_an_unsuccessful_execution(report: ScanReport) -> None:
    lost = ScanWarning("layer.unreadable", "cannot be read", 2, None)
    kept = ScanWarning("path.unsafe", "normalised", 1, "etc/x")
    incomplete = replace(
        report,
        warnings=(lost, kept),
        stats=replace(report.stats, warnings=2, not_read=(("layer.unreadable", 1),)),
        findings=(),
    )
    document = sarif_document(incomplete)
    validate(document)
    invocation = document["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 3
    assert invocation["exitCodeDescription"] == "incomplete scan (not accepted): not read: layer.unreadable (1)"
    levels = [(n["descriptor"]["id"], n["level"]) for n in invocation["toolExecutionNotifications"]]
    assert levels == [("layer.unreadable", "error"), ("path.unsafe", "warning")]
    accepted = sarif_document(replace(incomplete, allow_incomplete=True))["runs"][0]["invocations"][0]
    assert accepted["executionSuccessful"] is False and accepted["exitCode"] == 0
