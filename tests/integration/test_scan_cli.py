"""`secretsvc scan` as a user runs it: a real subprocess on hand-built images, every format and exit code."""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from tests import fakecreds
from tests import scanimages as si
from tests.leakyimage import EXPECTED, Leaks, leaky_image, plant_leaks

ROOT = Path(__file__).parents[2]
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif-2.1.0.json"
FINDING_KEYS = {
    "rule_id",
    "severity",
    "layer_digest",
    "layer_index",
    "path",
    "line",
    "location",
    "fingerprint",
    "redacted",
}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, object]:
        document = json.loads(self.out)
        assert isinstance(document, dict)
        return document


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "secretsvc.cli", "scan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def leaks() -> Leaks:
    return plant_leaks(2024)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, leaks: Leaks) -> dict[str, str]:
    root = tmp_path_factory.mktemp("images")
    gz = leaky_image(leaks)
    zst = leaky_image(leaks, compression="zstd")
    clean = si.build_image([[si.file("srv/app/README", "nothing to see\n")]])
    return {
        "docker-old": f"docker-archive:{si.write_docker_archive(root / 'old.tar', gz, style='old')}",
        "docker-new": f"docker-archive:{si.write_docker_archive(root / 'new.tar', gz, style='new')}",
        "oci-zstd": f"oci:{si.write_oci_layout(root / 'layout', [zst])}:latest",
        "oci-archive": f"oci-archive:{si.write_oci_archive(root / 'app.oci.tar', [gz])}",
        "clean": f"oci:{si.write_oci_layout(root / 'clean', [clean])}",
    }


def assert_no_secret(leaks: Leaks, *texts: str) -> None:
    for text in texts:
        for secret in leaks.all():
            assert secret not in text


@pytest.mark.parametrize("kind", ["docker-old", "docker-new", "oci-zstd", "oci-archive"])
def test_json_report_finds_every_location(kind: str, images: dict[str, str], leaks: Leaks) -> None:
    result = run(images[kind], "--format", "json")
    assert result.code == 1, result.err
    assert_no_secret(leaks, result.out, result.err)
    document = result.json()
    assert set(document) == {"image", "findings", "stats", "warnings"}
    assert document["image"] == images[kind]
    findings = document["findings"]
    assert isinstance(findings, list)
    for finding in findings:
        assert set(finding) >= FINDING_KEYS
        assert len(finding["fingerprint"]) == 64
    by_path = {f["path"]: f for f in findings}
    for path, (location, layer, line) in EXPECTED.items():
        assert path in by_path, (path, sorted(by_path))
        finding = by_path[path]
        assert (finding["location"], finding["layer_index"], finding["line"]) == (location, layer, line), path
        assert finding["layer_digest"].startswith("sha256:")
    config_locations = {f["location"] for f in findings if f["layer_index"] is None}
    assert config_locations == {"config_env", "config_label", "config_history", "config_other"}
    assert all(f["layer_digest"] is None for f in findings if f["layer_index"] is None)
    stats = document["stats"]
    assert isinstance(stats, dict)
    assert stats["layers"] == 3 and stats["findings"] == len(findings)


def test_sarif_validates_and_carries_layers(images: dict[str, str], leaks: Leaks, tmp_path: Path) -> None:
    output = tmp_path / "scan.sarif"
    result = run(images["docker-new"], "--output", str(output))
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("Summary: ")
    text = output.read_text()
    assert_no_secret(leaks, text, result.err)
    document = json.loads(text)
    schema = json.loads(SARIF_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(document)
    results = document["runs"][0]["results"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert "srv/app/.env" in uris
    deleted = [r for r in results if r["properties"]["location"] == "deleted_file"]
    assert len(deleted) == 2
    assert all(r["locations"][0]["logicalLocations"][0]["name"].startswith("sha256:") for r in deleted)


def test_text_report(images: dict[str, str], leaks: Leaks) -> None:
    result = run(images["docker-old"], "--format", "text")
    assert result.code == 1
    assert_no_secret(leaks, result.out, result.err)
    lines = result.out.splitlines()
    assert lines[0] == f"Image: {images['docker-old']}"
    assert "Image config" in lines
    layer_headings = [line for line in lines if line.startswith("Layer ")]
    assert [h.split()[1] for h in layer_headings] == ["0", "1"]
    assert "  created by: ADD rootfs.tar /" in lines
    # The history line that held a token is shown, redacted.
    assert any(line.startswith("  created by: /bin/sh -c curl -H 'token: ghp_…(40 chars)'") for line in lines)
    assert any("root/.slack:1  [deleted_file]" in line for line in lines)
    assert lines[-1].startswith("Summary: ") and lines[-1].endswith("FAIL: findings at or above low")
    assert "\x1b[" not in result.out


def test_exit_codes_and_fail_on(images: dict[str, str]) -> None:
    clean = run(images["clean"], "--format", "json")
    assert clean.code == 0 and clean.json()["findings"] == []
    document = run(images["docker-new"], "--format", "json").json()
    severities = {f["severity"] for f in document["findings"]}  # type: ignore[union-attr, index]
    order = ["low", "medium", "high", "critical"]
    top = max(severities, key=order.index)
    assert run(images["docker-new"], "--format", "json", "--fail-on", top).code == 1
    if top != "critical":
        above = order[order.index(top) + 1]
        assert run(images["docker-new"], "--format", "json", "--fail-on", above).code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch:thing"], "unknown image reference transport"),
        (["docker-archive:/nonexistent/app.tar"], ""),
        (["/nonexistent/dir"], "does not exist"),
        (["{clean}", "--fail-on", "urgent"], "unknown severity"),
        (["{clean}", "--fingerprint-key", "xyz"], "not hex"),
        (["{clean}", "--fingerprint-key", "00"], "must be 16 to"),
        (["{clean}", "--baseline", "/nonexistent/baseline.json"], "cannot read baseline"),
        (["{clean}", "--config", "/nonexistent/scan.toml"], "cannot read scan config"),
        (["{clean}", "--platform", "linux"], "bad platform"),
    ],
)
def test_input_errors_exit_2_with_one_line(images: dict[str, str], args: list[str], message: str) -> None:
    result = run(*[a.format(clean=images["clean"]) for a in args])
    assert result.code == 2, result
    assert result.out == ""
    assert result.err.startswith("secretsvc scan: error: ")
    assert result.err.count("\n") == 1
    assert message in result.err
    assert "Traceback" not in result.err


def test_usage_errors_exit_2(images: dict[str, str]) -> None:
    assert run().code == 2
    assert run(images["clean"], "--format", "xml").code == 2
    assert run(images["clean"], "--fingerprint-key", "00" * 16, "--fingerprint-key-file", "/x").code == 2


def test_help_explains_refs_and_exit_codes() -> None:
    result = run("--help")
    assert result.code == 0
    for needle in ("docker-archive:PATH", "oci:DIR", "docker://", "exit status", "--fail-on", "examples:"):
        assert needle in result.out


def test_baseline_round_trip(images: dict[str, str], leaks: Leaks, tmp_path: Path) -> None:
    baseline = tmp_path / ".secretsvc-baseline.json"
    first = run(images["docker-old"], "--format", "json", "--write-baseline", str(baseline))
    assert first.code == 1
    count = len(first.json()["findings"])  # type: ignore[arg-type]
    assert_no_secret(leaks, baseline.read_text())
    assert len(json.loads(baseline.read_text())["findings"]) == count
    # The same leaks in a differently packed image (zstd, OCI layout) are the same findings.
    again = run(images["oci-zstd"], "--format", "json", "--baseline", str(baseline))
    assert again.code == 0, again.err
    document = again.json()
    assert document["findings"] == []
    assert document["stats"]["suppressed_by_baseline"] == count  # type: ignore[index]
    broken = tmp_path / "broken.json"
    broken.write_text("[]")
    bad = run(images["docker-old"], "--baseline", str(broken))
    assert bad.code == 2 and "expected a JSON object" in bad.err


def test_config_file_ignores(images: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "scan.toml"
    config.write_text('[ignore]\npaths = ["*.jar", "srv/app/.env"]\n')
    document = run(images["docker-new"], "--format", "json", "--config", str(config)).json()
    paths = {f["path"] for f in document["findings"]}  # type: ignore[union-attr, index]
    assert "srv/app/.env" not in paths
    assert not any(p.startswith("opt/lib/app.jar") for p in paths)
    assert document["stats"]["suppressed_by_config"] == 2  # type: ignore[index]
    config.write_text("[ignore]\npath = []\n")
    bad = run(images["docker-new"], "--config", str(config))
    assert bad.code == 2 and "unknown key(s) in [ignore]: path" in bad.err


def test_fingerprint_key_sources(images: dict[str, str], tmp_path: Path) -> None:
    key = "ab" * 32

    def prints(*args: str, env: dict[str, str] | None = None) -> list[str]:
        document = run(images["docker-new"], "--format", "json", *args, env=env).json()
        return [f["fingerprint"] for f in document["findings"]]  # type: ignore[union-attr, index]

    given = prints("--fingerprint-key", key)
    key_file = tmp_path / "fp.key"
    key_file.write_text(key + "\n")
    assert prints("--fingerprint-key-file", str(key_file)) == given
    assert prints(env={"SECRETSVC_FINGERPRINT_KEY": key}) == given
    assert set(prints()).isdisjoint(given)


def test_plain_directory_scan(tmp_path: Path) -> None:
    rng = random.Random(77)
    token = fakecreds.fake_github_token(rng)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "deploy.sh").write_text(fakecreds.in_context("shell", "gh_token", token))
    result = run(str(tmp_path / "repo"), "--format", "json")
    assert result.code == 1
    assert token not in result.out
    (finding,) = result.json()["findings"]  # type: ignore[misc]
    assert finding["path"] == "deploy.sh" and finding["layer_digest"] is None and finding["line"] == 2


def test_terminal_gets_rich_text_and_a_progress_bar(images: dict[str, str], leaks: Leaks) -> None:
    """On a terminal the default format is text, drawn with rich, and a progress bar runs on stderr."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secretsvc.cli", "scan", images["docker-new"]],
        stdout=secondary,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm-256color"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=120) == 1
    screen = b"".join(chunks).decode("utf-8", errors="replace")
    assert_no_secret(leaks, screen)
    assert "Image config" in screen and "Summary:" in screen
    assert "\x1b[" in screen  # colour: it is rich, not the plain format
    assert not screen.lstrip().startswith("{")


@pytest.fixture(scope="module")
def basic_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real docker-registry on loopback behind basic auth: (host, "user:password")."""
    from tests.integration import test_scan_registry as reg

    if reg.REGISTRY is None or reg.SKOPEO is None:
        pytest.skip("docker-registry or skopeo is not installed (Debian packages docker-registry, skopeo)")
    password = "pw" + str(random.Random(31).getrandbits(48))
    line = reg.bcrypt_line("ci", password)
    if line is None:
        pytest.skip("cannot make a bcrypt htpasswd line: install python3-bcrypt or apache2-utils")
    server = reg.start_registry(tmp_path_factory.mktemp("registry") / "basic", line)
    server.creds = f"ci:{password}"
    yield server.host, server.creds
    server.proc.terminate()
    server.proc.wait(timeout=10)


def test_registry_with_basic_auth(basic_auth_registry: tuple[str, str], leaks: Leaks, tmp_path: Path) -> None:
    from tests.integration import test_scan_registry as reg

    host, creds = basic_auth_registry
    layout = si.write_oci_layout(tmp_path / "layout", [leaky_image(leaks, compression="zstd")], tag="v1")
    server = reg.Registry(host, creds, proc=None)  # type: ignore[arg-type]
    ref = reg.push(layout, "v1", server, "team/app")
    result = run(ref, "--format", "json", env={"SECRETSVC_REGISTRY_CREDS": creds})
    assert result.code == 1, result.err
    assert_no_secret(leaks, result.out, result.err)
    by_path = {f["path"]: f for f in result.json()["findings"]}  # type: ignore[union-attr, index]
    for path, (location, layer, line) in EXPECTED.items():
        assert (by_path[path]["location"], by_path[path]["layer_index"], by_path[path]["line"]) == (
            location,
            layer,
            line,
        )
    anonymous = run(ref, "--format", "json", env={"SECRETSVC_REGISTRY_CREDS": ""})
    assert anonymous.code == 2 and anonymous.err.startswith("secretsvc scan: error: ")
    wrong = run(ref, "--creds", "ci:wrong-password")
    assert wrong.code == 2 and "wrong-password" not in wrong.err


# -- incomplete scans: exit status 3 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def incomplete(tmp_path_factory: pytest.TempPathFactory, leaks: Leaks) -> dict[str, str]:
    """Images the scanner cannot read in full."""
    root = tmp_path_factory.mktemp("incomplete")

    def missing_blob(name: str, first: list[si.Entry]) -> str:
        image = si.build_image([first, [si.file("b.txt", "world\n")]])
        layout = si.write_oci_layout(root / name, [image])
        os.unlink(layout / "blobs" / "sha256" / si.sha256(image.blobs[1]).split(":", 1)[1])
        return f"oci:{layout}"

    pax = si.huge_pax_header_tar(2 << 20, [("app/.env", f"GITHUB_TOKEN={leaks.file}\n".encode())])
    return {
        "missing-blob": missing_blob("missing", [si.file("a.txt", "hello\n")]),
        "leak-and-missing-blob": missing_blob("both", [si.file("app/.env", f"GITHUB_TOKEN={leaks.file}\n")]),
        "big-pax": f"oci:{si.write_oci_layout(root / 'pax', [si.build_image([pax], compression='none')])}",
    }


def test_missing_layer_blob_exits_3_and_says_what_was_not_read(incomplete: dict[str, str], tmp_path: Path) -> None:
    result = run(incomplete["missing-blob"], "--format", "json")
    assert result.code == 3, result
    document = result.json()
    stats = document["stats"]
    assert isinstance(stats, dict)
    assert stats["incomplete"] is True and stats["incomplete_accepted"] is False
    assert stats["not_read"] == {"layer.unreadable": 1}
    assert [(w["code"], w["layer_index"], w["incomplete"]) for w in document["warnings"]] == [  # type: ignore[union-attr, index]
        ("layer.unreadable", 1, True)
    ]

    text = run(incomplete["missing-blob"], "--format", "text")
    assert text.code == 3
    last = text.out.splitlines()[-1]
    assert "incomplete: not read: layer.unreadable (1)" in last
    assert last.endswith("FAIL: incomplete scan")

    output = tmp_path / "scan.sarif"
    sarif = run(incomplete["missing-blob"], "--output", str(output))
    assert sarif.code == 3 and "FAIL: incomplete scan" in sarif.err
    sarif_document = json.loads(output.read_text())
    schema = json.loads(SARIF_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(sarif_document)
    (invocation,) = sarif_document["runs"][0]["invocations"]
    assert invocation["exitCode"] == 3 and "layer.unreadable (1)" in invocation["exitCodeDescription"]
    assert invocation["executionSuccessful"] is False
    assert [(n["descriptor"]["id"], n["level"]) for n in invocation["toolExecutionNotifications"]] == [
        ("layer.unreadable", "error")
    ]


def test_big_pax_header_never_looks_clean(incomplete: dict[str, str], leaks: Leaks) -> None:
    """The header hides the rest of the layer, a secret included: the scan must not pass."""
    result = run(incomplete["big-pax"], "--format", "json")
    assert_no_secret(leaks, result.out, result.err)
    document = result.json()
    if any(f["path"] == "app/.env" for f in document["findings"]):  # type: ignore[union-attr, index]
        assert result.code == 1  # a reader that skips the oversized header finds the secret behind it
    else:
        assert result.code == 3, result
        stats = document["stats"]
        assert isinstance(stats, dict)
        assert stats["incomplete"] is True and "limit.tar_header" in stats["not_read"]  # type: ignore[operator]


def test_allow_incomplete_flag_and_config(incomplete: dict[str, str], tmp_path: Path) -> None:
    allowed = run(incomplete["missing-blob"], "--format", "text", "--allow-incomplete")
    assert allowed.code == 0, allowed
    last = allowed.out.splitlines()[-1]
    assert "incomplete (accepted): not read: layer.unreadable (1)" in last and last.endswith("PASS")
    config = tmp_path / "scan.toml"
    config.write_text("[scan]\nallow_incomplete = true\n")
    assert run(incomplete["missing-blob"], "--format", "json", "--config", str(config)).code == 0
    config.write_text('[scan]\naccept_warnings = ["layer.unreadable"]\n')
    accepted = run(incomplete["missing-blob"], "--format", "json", "--config", str(config))
    assert accepted.code == 0
    assert accepted.json()["stats"]["incomplete_accepted"] is True  # type: ignore[index]
    config.write_text('[scan]\naccept_warnings = ["limit.file_size"]\n')
    assert run(incomplete["missing-blob"], "--format", "json", "--config", str(config)).code == 3


def test_findings_exit_1_even_when_the_scan_is_incomplete(incomplete: dict[str, str], leaks: Leaks) -> None:
    result = run(incomplete["leak-and-missing-blob"], "--format", "text")
    assert result.code == 1, result
    assert_no_secret(leaks, result.out, result.err)
    last = result.out.splitlines()[-1]
    assert "incomplete: not read: layer.unreadable (1)" in last
    assert last.endswith("FAIL: findings at or above low")
    # With the finding below --fail-on, the incomplete read decides.
    assert run(incomplete["leak-and-missing-blob"], "--format", "json", "--fail-on", "critical").code == 3
    assert run(incomplete["leak-and-missing-blob"], "--fail-on", "critical", "--allow-incomplete").code == 0


def test_help_documents_exit_3() -> None:
    result = run("--help")
    assert "3  the scan could not read part of the image" in result.out
    assert "--allow-incomplete" in result.out


# -- secrets in names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file-name", "label-key", "nested-member"])
def test_a_secret_in_a_name_is_redacted_everywhere(where: str, tmp_path: Path) -> None:
    token = fakecreds.fake_github_token(random.Random(5151))
    if where == "file-name":
        image = si.build_image([[si.file(f"srv/{token}.txt", f"T={token}\n")]])
    elif where == "label-key":
        image = si.build_image([[si.file("a.txt", "hello\n")]], labels={f"deploy.{token}": "yes"})
    else:
        jar = si.make_zip({f"conf/{token}.properties": f"token={token}\n"})
        image = si.build_image([[si.file("opt/app.jar", jar)]])
    ref = f"oci:{si.write_oci_layout(tmp_path / 'layout', [image])}"
    baseline = tmp_path / "baseline.json"
    outputs = []
    for fmt in ("text", "json", "sarif"):
        result = run(ref, "--format", fmt, "--write-baseline", str(baseline))
        assert result.code == 1, result
        outputs += [result.out, result.err]
    to_file = run(ref, "--output", str(tmp_path / "scan.sarif"))
    outputs += [to_file.out, to_file.err, (tmp_path / "scan.sarif").read_text(), baseline.read_text()]
    for text in outputs:
        assert token not in text
    assert "ghp_…(40 chars)" in json.loads(baseline.read_text())["findings"][0]["path"]
    again = run(ref, "--format", "json", "--baseline", str(baseline))
    assert again.code == 0 and again.json()["stats"]["suppressed_by_baseline"] == 1  # type: ignore[index]
