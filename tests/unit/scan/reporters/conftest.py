"""A hand-built report covering every location, for the reporter tests."""

from __future__ import annotations

import pytest

from secretsvc.scan.model import (
    Finding,
    LayerSummary,
    Location,
    RuleSummary,
    ScanReport,
    ScanStats,
    ScanWarning,
    Severity,
)

DIGEST = ["sha256:" + str(i) * 64 for i in range(3)]


def _finding(rule: str, severity: Severity, where: tuple[int | None, str, int | None], loc: Location) -> Finding:
    layer, path, line = where
    return Finding(
        rule_id=rule,
        severity=severity,
        layer_digest=None if layer is None else DIGEST[layer],
        layer_index=layer,
        path=path,
        line=line,
        location=loc,
        fingerprint=f"{abs(hash((rule, path, line))):064x}"[:64],
        redacted="gh" + "p_…(40 chars)",
        description=f"{rule} description",
    )


def sample_report(fail_on: Severity = Severity.LOW) -> ScanReport:
    findings = (
        _finding("aws-access-key-id", Severity.CRITICAL, (None, "Env[1]", None), Location.CONFIG_ENV),
        _finding("jwt", Severity.MEDIUM, (None, "Labels.token", None), Location.CONFIG_LABEL),
        _finding(
            "github-classic-token",
            Severity.HIGH,
            (None, "history[2].created_by", None),
            Location.CONFIG_HISTORY,
        ),
        _finding("generic-secret-assignment", Severity.LOW, (None, "Cmd[2]", None), Location.CONFIG_OTHER),
        _finding("private-key", Severity.CRITICAL, (0, "root/.ssh/id_rsa", 1), Location.DELETED_FILE),
        _finding("slack-token", Severity.HIGH, (0, "etc/app conf [x].ini", 3), Location.OVERWRITTEN_FILE),
        _finding("jwt", Severity.MEDIUM, (1, "opt/app.jar!BOOT-INF/classes/app.properties", 7), Location.FILE),
        _finding("jwt", Severity.MEDIUM, (2, "usr/bin/tool\x1b[31m", None), Location.FILE),
    )
    return ScanReport(
        image="docker-archive:/tmp/app.tar",
        findings=findings,
        warnings=(ScanWarning("tar.unsafe_path", "member escapes the layer\x1b]0;x\x07", 1, "../../etc/passwd"),),
        stats=ScanStats(
            bytes_scanned=12_345_678,
            files_scanned=321,
            layers=3,
            images=1,
            duration_s=1.25,
            findings=len(findings),
            suppressed_by_baseline=2,
            suppressed_by_config=1,
            warnings=1,
        ),
        layers=(
            LayerSummary(0, DIGEST[0], "ADD rootfs.tar /", "linux/amd64"),
            LayerSummary(1, DIGEST[1], "RUN echo \x1b[2J done", "linux/amd64"),
            LayerSummary(2, DIGEST[2], None, "linux/amd64"),
        ),
        rules=tuple(
            RuleSummary(rule, severity, f"{rule} description")
            for rule, severity in (
                ("aws-access-key-id", Severity.CRITICAL),
                ("jwt", Severity.MEDIUM),
                ("github-classic-token", Severity.HIGH),
                ("private-key", Severity.CRITICAL),
                ("slack-token", Severity.HIGH),
            )
        ),
        fail_on=fail_on,
    )


@pytest.fixture
def report() -> ScanReport:
    return sample_report()
