"""A scan that could not read part of the image says so and does not pass: `report.complete`, exit status 3."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan import pipeline
from secretsvc.scan.config import ScanConfig
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import INFORMATIONAL_WARNINGS, ScanWarning, Severity, loses_content
from secretsvc.scan.pipeline import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    ScanOptions,
    ScanReport,
    ScanStats,
    scan,
)
from secretsvc.scan.rules import MAX_HITS_PER_SCAN, RuleSet
from tests import fakecreds
from tests import scanimages as si


@pytest.fixture(scope="module")
def token() -> str:
    return fakecreds.fake_github_token(random.Random(901))


def _missing_blob_layout(root: Path, layers: list[list[si.Entry]], missing: int) -> str:
    image = si.build_image(layers)
    layout = si.write_oci_layout(root, [image])
    os.unlink(layout / "blobs" / "sha256" / si.sha256(image.blobs[missing]).split(":", 1)[1])
    return f"oci:{layout}"


@pytest.fixture(scope="module")
def missing_blob(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An OCI layout whose second layer blob is gone; the first layer is clean."""
    root = tmp_path_factory.mktemp("missing") / "layout"
    return _missing_blob_layout(root, [[si.file("a.txt", "hello\n")], [si.file("b.txt", "world\n")]], 1)


@pytest.fixture(scope="module")
def leak_and_missing_blob(tmp_path_factory: pytest.TempPathFactory, token: str) -> str:
    """A leak in the first layer, and the second layer's blob gone."""
    root = tmp_path_factory.mktemp("both") / "layout"
    return _missing_blob_layout(root, [[si.file("app/.env", f"T={token}\n")], [si.file("b.txt", "x\n")]], 1)


def test_a_missing_layer_blob_makes_the_scan_incomplete(missing_blob: str) -> None:
    report = scan(missing_blob)
    assert report.findings == ()
    assert [w.code for w in report.warnings] == ["layer.unreadable"]
    assert not report.complete
    assert report.stats.incomplete
    assert dict(report.stats.not_read) == {"layer.unreadable": 1}
    assert report.incomplete_fails
    assert not report.failed  # no finding: the failure is the incomplete read
    assert report.exit_code == EXIT_INCOMPLETE == 3
    document = report.to_json()
    stats = document["stats"]
    assert isinstance(stats, dict)
    assert stats["incomplete"] is True
    assert stats["not_read"] == {"layer.unreadable": 1}
    assert stats["incomplete_accepted"] is False
    (warning,) = document["warnings"]  # type: ignore[misc]
    assert warning["incomplete"] is True


def test_a_pax_header_over_the_limit_makes_the_scan_incomplete(tmp_path: Path, token: str) -> None:
    tar = si.huge_pax_header_tar(2 << 20, [("app/.env", f"T={token}\n".encode())])
    layout = si.write_oci_layout(tmp_path / "pax", [si.build_image([tar], compression="none")])
    report = scan(f"oci:{layout}")
    if any(f.path == "app/.env" for f in report.findings):
        # A reader that skips the oversized header reads the secret behind it: a finding, exit 1.
        assert report.exit_code == EXIT_FINDINGS
    else:
        assert not report.complete and report.exit_code == EXIT_INCOMPLETE
        assert "limit.tar_header" in dict(report.stats.not_read)


def test_allow_incomplete_option(missing_blob: str) -> None:
    report = scan(missing_blob, ScanOptions(allow_incomplete=True))
    assert not report.complete  # still said, never hidden
    assert not report.incomplete_fails
    assert report.exit_code == EXIT_CLEAN
    stats = report.to_json()["stats"]
    assert isinstance(stats, dict)
    assert stats["incomplete"] is True and stats["incomplete_accepted"] is True


def test_config_switches_accept_incomplete_scans(missing_blob: str, tmp_path: Path) -> None:
    config = tmp_path / "scan.toml"
    config.write_text("[scan]\nallow_incomplete = true\n")
    assert scan(missing_blob, ScanOptions(config=config)).exit_code == EXIT_CLEAN
    config.write_text('[scan]\naccept_warnings = ["layer.unreadable"]\n')
    assert scan(missing_blob, ScanOptions(config=config)).exit_code == EXIT_CLEAN
    # Accepting another code does not accept this one.
    config.write_text('[scan]\naccept_warnings = ["limit.file_size"]\n')
    assert scan(missing_blob, ScanOptions(config=config)).exit_code == EXIT_INCOMPLETE
    config.write_text("[scan]\nallow_incomplete = false\n")
    assert scan(missing_blob, ScanOptions(config=config)).exit_code == EXIT_INCOMPLETE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[scan]\nallow_incomplete = "yes"\n', "allow_incomplete must be true or false"),
        ("[scan]\naccept_warnings = [1]\n", "accept_warnings must be a list of strings"),
        ('[scan]\naccept_warnings = ["Layer Unreadable"]\n', "not a warning code"),
        ("[scan]\nallow_incompletes = true\n", "unknown key(s) in [scan]: allow_incompletes"),
    ],
)
def test_bad_scan_table_is_a_config_error(missing_blob: str, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "scan.toml"
    config.write_text(text)
    with pytest.raises(errors.ConfigError) as raised:
        scan(missing_blob, ScanOptions(config=config))
    assert message in str(raised.value)


def test_findings_take_precedence_over_an_incomplete_read(leak_and_missing_blob: str) -> None:
    report = scan(leak_and_missing_blob)
    assert [f.path for f in report.findings] == ["app/.env"]
    assert not report.complete and report.failed and report.incomplete_fails
    assert report.exit_code == EXIT_FINDINGS
    # Below --fail-on, the incomplete read decides.
    top = max(f.severity for f in report.findings)
    assert top < Severity.CRITICAL
    quiet = scan(leak_and_missing_blob, ScanOptions(fail_on=Severity(top + 1)))
    assert quiet.findings and not quiet.failed
    assert quiet.exit_code == EXIT_INCOMPLETE


def test_content_losses_past_max_warnings_still_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report keeps MAX_WARNINGS warnings, but every dropped one still counts towards `not_read`."""
    hostile = si.raw_tar([(f"../../escape{i}", b"x") for i in range(5)])
    image = si.build_image([hostile, [si.file("b.txt", "x\n")]])
    layout = si.write_oci_layout(tmp_path / "layout", [image])
    os.unlink(layout / "blobs" / "sha256" / si.sha256(image.blobs[1]).split(":", 1)[1])
    monkeypatch.setattr(pipeline, "MAX_WARNINGS", 2)
    report = scan(f"oci:{layout}")
    assert "layer.unreadable" not in {w.code for w in report.warnings}  # dropped from the list...
    assert dict(report.stats.not_read) == {"layer.unreadable": 1}  # ...but counted
    assert report.exit_code == EXIT_INCOMPLETE


def test_informational_warnings_leave_the_scan_complete(tmp_path: Path) -> None:
    hostile = si.raw_tar([("../../escape", b"nothing\n"), ("/abs/path", b"nothing\n")])
    path = si.write_docker_archive(tmp_path / "hostile.tar", si.build_image([hostile]))
    report = scan(f"docker-archive:{path}")
    assert {w.code for w in report.warnings} == {"path.unsafe"}
    assert report.complete and report.exit_code == EXIT_CLEAN
    assert report.to_json()["warnings"][0]["incomplete"] is False  # type: ignore[index]


def test_only_an_explicit_short_list_of_codes_is_informational() -> None:
    assert {"path.unsafe", "limit.warnings", "origin.truncated"} == INFORMATIONAL_WARNINGS
    for code in (
        "archive.corrupt",
        "archive.truncated",
        "digest.mismatch",
        "file.unreadable",
        "layer.corrupt",
        "layer.unreadable",
        "limit.compression_ratio",
        "limit.file_size",
        "limit.path",
        "limit.nested_depth",
        "limit.tar_header",
        "tar.truncated",
        "tar.corrupt",
        # codes this version has never heard of are content lost until someone says otherwise
        "limit.layer_size",
        "limit.image_size",
        "limit.layer_ratio",
        "limit.matches",
        "limit.blob_size",
        "layer.size_mismatch",
        "something.new",
        "",
    ):
        assert loses_content(code), code
        assert ScanWarning(code, "m").incomplete


def test_a_report_built_by_hand_follows_its_stats() -> None:
    clean = ScanReport(image="x", findings=(), warnings=(), stats=ScanStats())
    assert clean.complete and clean.exit_code == EXIT_CLEAN
    partial = ScanReport(
        image="x",
        findings=(),
        warnings=(ScanWarning("limit.file_size", "scanned in part", 0, "big.bin"),),
        stats=ScanStats(warnings=1, not_read=(("limit.file_size", 1),)),
        accepted_warnings=frozenset({"limit.file_size"}),
    )
    assert not partial.complete and not partial.incomplete_fails and partial.exit_code == EXIT_CLEAN


def test_config_parses_the_scan_table() -> None:
    from secretsvc.scan.config import parse_config

    config = parse_config({"scan": {"allow_incomplete": True, "accept_warnings": ["limit.file_size"]}})
    assert config == ScanConfig(allow_incomplete=True, accepted_warnings=frozenset({"limit.file_size"}))
    assert parse_config({}) == ScanConfig()


def _flood(lines: int) -> bytes:
    """Assignments of a placeholder: every line is a rule trigger, none is a secret."""
    return b"password=changeme\n" * lines


def test_rule_hits_past_the_cap_make_the_scan_incomplete(tmp_path: Path) -> None:
    flood = _flood(MAX_HITS_PER_SCAN + 100)  # about 370 KB: one chunk, more trigger hits than the default cap
    image = si.build_image([[si.file("etc/app.ini", flood), si.file("etc/other.ini", b"x=1\n")]])
    layout = si.write_oci_layout(tmp_path / "layout", [image])
    report = scan(f"oci:{layout}")
    assert report.findings == ()
    assert [(w.code, w.layer_index, w.path) for w in report.warnings] == [("limit.matches", 0, "etc/app.ini")]
    assert f"more than {MAX_HITS_PER_SCAN} rule trigger hits" in report.warnings[0].message
    assert report.warnings[0].incomplete
    assert dict(report.stats.not_read) == {"limit.matches": 1}
    assert report.exit_code == EXIT_INCOMPLETE
    accepted = scan(f"oci:{layout}", ScanOptions(accept_warnings=frozenset({"limit.matches"})))
    assert accepted.exit_code == EXIT_CLEAN


def test_the_hit_cap_is_a_rule_set_parameter(tmp_path: Path) -> None:
    image = si.build_image([[si.file("etc/app.ini", _flood(200))]])
    layout = si.write_oci_layout(tmp_path / "layout", [image])
    assert scan(f"oci:{layout}").complete
    report = scan(f"oci:{layout}", ScanOptions(rules=RuleSet.default(max_hits=50)))
    assert [(w.code, w.path) for w in report.warnings] == [("limit.matches", "etc/app.ini")]
    assert report.exit_code == EXIT_INCOMPLETE


def test_rule_hits_past_the_cap_warn_once_per_file(tmp_path: Path) -> None:
    """A file read in several chunks, each over the cap, gives one warning."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "flood.ini").write_bytes(_flood(2000))
    limits = ScanLimits(chunk_bytes=8 * 1024, chunk_overlap_bytes=64)
    report = scan(str(tmp_path / "src"), ScanOptions(rules=RuleSet.default(max_hits=20), limits=limits))
    assert [(w.code, w.path) for w in report.warnings] == [("limit.matches", "flood.ini")]
    assert report.exit_code == EXIT_INCOMPLETE
