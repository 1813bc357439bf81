"""`secretsvc scan` on an image whose packages ship credential-shaped docs and test fixtures: origins,
confidences, hidden counts, --min-confidence and exit codes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests import fakecreds
from tests import scanimages as si
from tests.integration.test_scan_cli import run

SP = "usr/lib/python3/dist-packages"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    rng = random.Random(909)
    tok = [fakecreds.fake_github_token(rng) for _ in range(4)]
    files = [
        si.file("usr/share/doc/cloudcli/examples/auth.txt", f"Example:\n  export GITHUB_TOKEN={tok[0]}\n"),
        si.file(f"{SP}/ghlib/tests/fixtures/token.txt", f"token = {tok[1]}\n"),
        si.file("app/node_modules/ghclient/test/fixture.js", f"const t = '{tok[2]}';\n"),
        si.file("app/node_modules/ghclient/package.json", json.dumps({"name": "ghclient"})),
        si.file("app/.env", fakecreds.in_context("env", "GITHUB_TOKEN", tok[3])),
    ]
    # Ownership arrives in a later layer than the files it names.
    owners = [
        si.file("var/lib/dpkg/info/cloudcli.list", "/.\n/usr/share/doc/cloudcli/examples/auth.txt\n"),
        si.file(f"{SP}/ghlib-1.0.dist-info/RECORD", "ghlib/__init__.py,,\nghlib/tests/fixtures/token.txt,,\n"),
    ]
    root = tmp_path_factory.mktemp("origin")
    return f"docker-archive:{si.write_docker_archive(root / 'img.tar', si.build_image([files, owners]))}"


def _by_path(document: dict[str, object]) -> dict[str, dict[str, object]]:
    findings = document["findings"]
    assert isinstance(findings, list)
    return {f["path"]: f for f in findings}


def test_default_hides_package_docs_and_tests(image: str) -> None:
    result = run(image, "--format", "json")
    assert result.code == 1, result.err
    doc = result.json()
    found = _by_path(doc)
    assert set(found) == {"app/.env"}
    assert found["app/.env"]["origin"] == {"kind": "application", "name": None}
    assert found["app/.env"]["confidence"] == "high"
    stats = doc["stats"]
    assert isinstance(stats, dict)
    assert stats["hidden"] == {
        "total": 3,
        "by_reason": {"os-package doc": 1, "language-package test": 2},
    }
    assert stats["min_confidence"] == "medium"


def test_min_confidence_low_shows_all_with_origins(image: str) -> None:
    result = run(image, "--format", "json", "--min-confidence", "low")
    assert result.code == 1, result.err
    found = _by_path(result.json())
    assert found["usr/share/doc/cloudcli/examples/auth.txt"]["origin"] == {"kind": "os-package", "name": "cloudcli"}
    assert found[f"{SP}/ghlib/tests/fixtures/token.txt"]["origin"] == {
        "kind": "language-package",
        "name": "pypi:ghlib",
    }
    assert found["app/node_modules/ghclient/test/fixture.js"]["origin"] == {
        "kind": "language-package",
        "name": "npm:ghclient",
    }
    assert {f["confidence"] for p, f in found.items() if p != "app/.env"} == {"low"}


def test_fail_on_sees_only_shown_findings(tmp_path: Path, image: str) -> None:
    # Only the application finding is high confidence; hiding medium too leaves it, so the scan still fails.
    assert run(image, "--min-confidence", "high").code == 1
    # An image with only package-owned findings passes by default and fails with --min-confidence low.
    rng = random.Random(7)
    layer = [
        si.file("usr/share/doc/pkg/README", f"token {fakecreds.fake_github_token(rng)}\n"),
        si.file("var/lib/dpkg/info/pkg.list", "/usr/share/doc/pkg/README\n"),
    ]
    ref = f"docker-archive:{si.write_docker_archive(tmp_path / 'p.tar', si.build_image([layer]))}"
    quiet = run(ref, "--format", "text")
    assert quiet.code == 0, quiet.out + quiet.err
    assert "1 hidden below medium confidence: 1 os-package doc" in quiet.out
    assert run(ref, "--min-confidence", "low").code == 1
    assert run(ref, "--min-confidence", "certain").code == 2


def test_sarif_carries_origin_confidence_and_hidden(image: str) -> None:
    result = run(image, "--format", "sarif")
    sarif = json.loads(result.out)
    (res,) = sarif["runs"][0]["results"]
    assert res["properties"]["origin"] == {"kind": "application", "name": None}
    assert res["properties"]["confidence"] == "high"
    assert res["rank"] == 90.0
    assert sarif["runs"][0]["properties"]["stats"]["hidden"]["total"] == 3


def test_baseline_covers_hidden_findings_too(tmp_path: Path, image: str) -> None:
    base = tmp_path / "baseline.json"
    assert run(image, "--write-baseline", str(base)).code == 1
    again = run(image, "--format", "json", "--baseline", str(base), "--min-confidence", "low")
    assert again.code == 0, again.err
    stats = again.json()["stats"]
    assert isinstance(stats, dict)
    assert stats["findings"] == 0
    assert stats["suppressed_by_baseline"] == 4
    assert stats["hidden"] == {"total": 0, "by_reason": {}}
