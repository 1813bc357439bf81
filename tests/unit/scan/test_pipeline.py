"""The scan use case end to end in-process: real images built with tarfile, real rules, real walker."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan import pipeline
from secretsvc.scan.model import Finding, Location, Severity
from secretsvc.scan.pipeline import ScanOptions, ScanReport, scan
from secretsvc.scan.reporters import write_report
from tests import fakecreds
from tests import scanimages as si
from tests.leakyimage import EXPECTED, Leaks, leaky_image, plant_leaks


@pytest.fixture(scope="module")
def planted() -> Leaks:
    return plant_leaks(11)


@pytest.fixture(scope="module")
def image(planted: Leaks) -> si.BuiltImage:
    return leaky_image(planted)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, image: si.BuiltImage) -> Path:
    return si.write_docker_archive(tmp_path_factory.mktemp("img") / "app.tar", image)


@pytest.fixture(scope="module")
def report(archive: Path) -> ScanReport:
    return scan(f"docker-archive:{archive}", ScanOptions(fingerprint_key=b"k" * 32))


def _one(report: ScanReport, path: str) -> Finding:
    found = [f for f in report.findings if f.path == path]
    assert len(found) == 1, (path, [(f.path, f.rule_id) for f in report.findings])
    return found[0]


def test_every_location_is_found_and_attributed(report: ScanReport, image: si.BuiltImage) -> None:
    # The digests of the very image scanned: a rebuild may differ (tar mtimes follow the clock).
    digests = image.diff_ids
    expected = {path: (Location(location), layer, line) for path, (location, layer, line) in EXPECTED.items()}
    for path, (location, layer, line) in expected.items():
        finding = _one(report, path)
        assert (finding.location, finding.layer_index, finding.line) == (location, layer, line), path
        assert finding.layer_digest == digests[layer]
    config = {f.location: f for f in report.findings if f.layer_index is None}
    assert set(config) == {
        Location.CONFIG_ENV,
        Location.CONFIG_LABEL,
        Location.CONFIG_HISTORY,
        Location.CONFIG_OTHER,
    }
    assert all(f.layer_digest is None and f.line is None for f in config.values())
    assert report.stats.layers == 3 and report.stats.images == 1
    assert report.stats.files_scanned >= 6
    assert report.stats.bytes_scanned >= sum(len(t) for t in image.tars)
    assert report.findings == tuple(
        sorted(report.findings, key=lambda f: (-1 if f.layer_index is None else f.layer_index, f.path))
    )
    assert report.exit_code == 1


def test_no_output_format_contains_a_planted_secret(report: ScanReport, planted: Leaks) -> None:
    outputs = []
    for fmt in ("json", "sarif", "text"):
        out = io.StringIO()
        write_report(report, fmt, out)
        outputs.append(out.getvalue())
    outputs.append(repr(report))
    for text in outputs:
        for secret in planted.all():
            assert secret not in text
    # created_by of the layer that echoed a secret is shown with the secret redacted.
    created = [layer.created_by or "" for layer in report.layers]
    assert any("ghp_…(40 chars)" in c for c in created)


def test_fingerprints_are_keyed(archive: Path, report: ScanReport) -> None:
    again = scan(f"docker-archive:{archive}", ScanOptions(fingerprint_key=b"k" * 32))
    assert [f.fingerprint for f in again.findings] == [f.fingerprint for f in report.findings]
    random_key = scan(f"docker-archive:{archive}")
    assert {f.fingerprint for f in random_key.findings}.isdisjoint({f.fingerprint for f in report.findings})


def test_fail_on_threshold(archive: Path, report: ScanReport) -> None:
    top = max(f.severity for f in report.findings)
    assert scan(f"docker-archive:{archive}", ScanOptions(fail_on=top)).exit_code == 1
    if top < Severity.CRITICAL:
        above = Severity(top + 1)
        quiet = scan(f"docker-archive:{archive}", ScanOptions(fail_on=above))
        assert quiet.exit_code == 0 and quiet.findings


def test_baseline_round_trip_across_a_rebuild(tmp_path: Path, planted: Leaks, report: ScanReport) -> None:
    first = si.write_docker_archive(tmp_path / "v1.tar", leaky_image(planted))
    baseline = tmp_path / "baseline.json"
    written = scan(f"docker-archive:{first}", ScanOptions(write_baseline=baseline))
    assert written.baseline_written == len(report.findings)
    document = json.loads(baseline.read_text())
    assert all(secret not in baseline.read_text() for secret in planted.all())
    assert len(document["findings"]) == len(report.findings)

    suppressed = scan(f"docker-archive:{first}", ScanOptions(baseline=baseline))
    assert suppressed.findings == ()
    assert suppressed.stats.suppressed_by_baseline == len(report.findings)
    assert suppressed.exit_code == 0

    # A rebuild with zstd layers (new digests) and one new leak: only the new leak is reported.
    rng = random.Random(99)
    extra = fakecreds.fake_github_token(rng)
    image = leaky_image(planted, compression="zstd")
    layout = si.write_oci_layout(tmp_path / "v2", [image])
    rebuilt = scan(f"oci:{layout}", ScanOptions(baseline=baseline))
    assert rebuilt.findings == ()
    image2 = si.build_image([*image.tars, [si.file("new/.env", f"T={extra}\n")]])
    layout2 = si.write_oci_layout(tmp_path / "v3", [image2])
    fresh = scan(f"oci:{layout2}", ScanOptions(baseline=baseline))
    assert [f.path for f in fresh.findings] == ["new/.env"]


def test_bad_baseline_is_an_input_error(tmp_path: Path, archive: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text('{"version": 9}')
    with pytest.raises(errors.InvalidArgument, match="version 9"):
        scan(f"docker-archive:{archive}", ScanOptions(baseline=bad))


def test_config_ignores_paths_and_rules(tmp_path: Path, archive: Path, report: ScanReport) -> None:
    config = tmp_path / "scan.toml"
    env_rule = next(f.rule_id for f in report.findings if f.location is Location.CONFIG_ENV)
    config.write_text(f'[ignore]\npaths = ["*.jar", "srv/app"]\nrules = ["{env_rule}"]\n')
    filtered = scan(f"docker-archive:{archive}", ScanOptions(config=config))
    paths = {f.path for f in filtered.findings}
    assert "srv/app/.env" not in paths and "opt/lib/app.jar!config/app.properties" not in paths
    assert all(f.rule_id != env_rule for f in filtered.findings)
    assert filtered.stats.suppressed_by_config == len(report.findings) - len(filtered.findings)
    config.write_text(f'[rules]\ndisabled = ["{env_rule}"]\n')
    disabled = scan(f"docker-archive:{archive}", ScanOptions(config=config))
    assert all(f.rule_id != env_rule for f in disabled.findings)
    assert env_rule not in {r.rule_id for r in disabled.rules}
    config.write_text('[rules]\ndisabled = ["no-such-rule"]\n')
    with pytest.raises(errors.ConfigError, match="no-such-rule"):
        scan(f"docker-archive:{archive}", ScanOptions(config=config))


def test_multi_platform_layout(tmp_path: Path) -> None:
    rng = random.Random(5)
    amd, arm = fakecreds.fake_github_token(rng), fakecreds.fake_slack_token(rng)
    images = [
        si.build_image([[si.file("a.env", f"T={amd}\n")]], platform=("linux", "amd64", None)),
        si.build_image([[si.file("b.env", f"T={arm}\n")]], platform=("linux", "arm64", "v8")),
    ]
    layout = si.write_oci_layout(tmp_path / "multi", images, multi_platform=True)
    both = scan(f"oci:{layout}")
    assert {f.path for f in both.findings} == {"a.env", "b.env"}
    assert both.stats.images == 2
    assert {layer.platform for layer in both.layers} == {"linux/amd64", "linux/arm64/v8"}
    arm_only = scan(f"oci:{layout}", ScanOptions(platform="linux/arm64"))
    assert [f.path for f in arm_only.findings] == ["b.env"]


def test_plain_directory(tmp_path: Path) -> None:
    rng = random.Random(6)
    token = fakecreds.fake_github_token(rng)
    (tmp_path / "src" / "conf").mkdir(parents=True)
    (tmp_path / "src" / "conf" / "app.yaml").write_text(fakecreds.in_context("yaml", "token", token))
    (tmp_path / "src" / "README.md").write_text("nothing here\n")
    result = scan(str(tmp_path / "src"))
    (finding,) = result.findings
    assert (finding.path, finding.line, finding.layer_digest, finding.layer_index) == (
        "conf/app.yaml",
        3,
        None,
        0,
    )
    assert finding.location is Location.FILE
    assert result.stats.files_scanned == 2 and result.stats.layers == 0


def test_progress_reports_uncompressed_layer_bytes(archive: Path, planted: Leaks) -> None:
    seen: list[int] = []
    scan(f"docker-archive:{archive}", ScanOptions(progress=seen.append))
    assert all(step > 0 for step in seen)
    assert sum(seen) == sum(len(t) for t in leaky_image(planted).tars)


def test_warnings_are_reported_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = si.raw_tar([(f"../../escape{i}", b"x") for i in range(5)])
    image = si.build_image([hostile])
    path = si.write_docker_archive(tmp_path / "hostile.tar", image)
    monkeypatch.setattr(pipeline, "MAX_WARNINGS", 2)
    result = scan(f"docker-archive:{path}")
    assert result.stats.warnings >= 5
    assert [w.code for w in result.warnings][-1] == "limit.warnings"
    assert len(result.warnings) == 3


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("nosuchtransport:thing", errors.InvalidArgument),
        ("docker-archive:/nonexistent/app.tar", errors.SecretsvcError),
        ("/nonexistent/path", errors.NotFound),
    ],
)
def test_bad_references(ref: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        scan(ref)


def test_options_hide_credentials_and_check_the_key() -> None:
    options = ScanOptions(creds="user:hunter2-password", fingerprint_key=b"s" * 32)
    assert "hunter2" not in repr(options) and "sss" not in repr(options)
    with pytest.raises(errors.InvalidArgument, match="fingerprint key"):
        ScanOptions(fingerprint_key=b"short")
