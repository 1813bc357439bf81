"""`secretsvc scan rules` and `--rules FILE` as a user runs them: a real subprocess, real rule files."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from secretsvc.scan.rules.loader import builtin_rules
from tests import scanimages as si

ROOT = Path(__file__).parents[2]
# A made-up vendor: its prefix occurs in no built-in rule and in no real credential format.
PREFIX = "acme" + "_live_"
GOOD_RULE = f"""
[[rule]]
id = "acme-api-key"
family = "Acme"
severity = "high"
description = "Acme API key"
keywords = ["{PREFIX}"]
pattern = '(?<![A-Za-z0-9_])(?P<secret>{PREFIX}[A-Za-z0-9]{{32}})(?![A-Za-z0-9_])'
min_entropy = 3.0
[rule.examples]
positive = ['ACME_API_KEY={PREFIX}{{alnum:32}}', 'acme:\\n  key: "{PREFIX}{{alnum:32}}"']
negative = ['ACME_API_KEY={PREFIX}{{alnum:20}}', 'ACME_API_KEY={PREFIX}{{alnum:32}}x']
"""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def run(*args: str, cwd: Path = ROOT) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "secretsvc.cli", "scan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SECRETSVC_RULE_CACHE": "0"},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def fake_acme_key(seed: int) -> str:
    rng = random.Random(seed)
    return PREFIX + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))


def rule_file(tmp_path: Path, text: str, name: str = "acme.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- listing -----------------------------------------------------------------------------------------------


def test_rules_json_lists_every_builtin_rule_with_its_metadata() -> None:
    result = run("rules", "--format", "json")
    assert result.code == 0, result.err
    listed = json.loads(result.out)["rules"]
    builtin = [r.rule.info for r in builtin_rules()]
    assert [r["id"] for r in listed] == [i.rule_id for i in builtin]
    first = listed[0]
    assert set(first) == {"id", "family", "severity", "description", "keywords", "source"}
    by_id = {r["id"]: r for r in listed}
    assert by_id["aws-access-key-id"]["source"] == "core.toml"
    assert by_id["aws-access-key-id"]["severity"] == "high"
    assert by_id["aws-access-key-id"]["keywords"]


def test_rules_text_and_markdown_and_user_rules_in_the_listing(tmp_path: Path) -> None:
    text = run("rules")
    assert text.code == 0, text.err
    line = next(x for x in text.out.splitlines() if x.startswith("github-classic-token "))
    assert "high" in line and "GitHub" in line and "core.toml" in line
    markdown = run("rules", "--format", "markdown")
    assert markdown.out.startswith("| Rule id | Family | Severity | Description |\n")
    assert "| `jwt` |" in markdown.out
    mine = run("rules", "--format", "json", "--rules", str(rule_file(tmp_path, GOOD_RULE)))
    listed = json.loads(mine.out)["rules"]
    assert listed[-1]["id"] == "acme-api-key"
    assert listed[-1]["source"].endswith("acme.toml")


def test_rules_help_explains_the_subcommand_and_the_image_called_rules() -> None:
    result = run("rules", "--help")
    assert result.code == 0
    assert "check" in result.out and "./rules" in result.out
    assert "./rules" in run("--help").out


# -- check -------------------------------------------------------------------------------------------------


def test_check_a_good_file_passes(tmp_path: Path) -> None:
    result = run("rules", "check", str(rule_file(tmp_path, GOOD_RULE)))
    assert result.code == 0, result.out + result.err
    assert "acme.toml: 1 rule, examples pass" in result.out


BAD_FILES = {
    "unknown key": (GOOD_RULE.replace('family = "Acme"', 'family = "Acme"\ncolour = "red"'), "'colour'"),
    "bad regex": (GOOD_RULE.replace("{32})(?!", "{32}(?!"), "does not compile"),
    "unbounded pattern": (GOOD_RULE.replace("]{32}", "]+"), "no length bound"),
    "unknown validator": (GOOD_RULE.replace("min_entropy = 3.0", 'validator = "crc64"'), "unknown validator 'crc64'"),
    "duplicate id": (GOOD_RULE + GOOD_RULE, "already used"),
    "clash with a built-in": (GOOD_RULE.replace('"acme-api-key"', '"github-classic-token"'), "built-in rule"),
    "not TOML": ("[[rule]\nid = 1\n", "not valid TOML"),
    "trigger outside Hyperscan's subset": (
        GOOD_RULE.replace("min_entropy = 3.0", f"trigger = '(?<![a-z]){PREFIX}'"),
        "is not supported by Hyperscan",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_check_an_invalid_file_exits_2_naming_file_and_rule(tmp_path: Path, case: str) -> None:
    text, message = BAD_FILES[case]
    path = rule_file(tmp_path, text)
    result = run("rules", "check", str(path))
    assert result.code == 2, result.out + result.err
    assert message in result.err
    assert str(path) in result.err
    if case not in ("not TOML", "trigger outside Hyperscan's subset"):
        assert "rule acme-api-key" in result.err or "rule github-classic-token" in result.err


def test_check_a_failing_example_exits_1_and_shows_the_template_not_the_value(tmp_path: Path) -> None:
    # The second negative is a real key: the rule finds it, so the example is wrong.
    text = GOOD_RULE.replace("{alnum:32}x']", "{alnum:32}']")
    result = run("rules", "check", str(rule_file(tmp_path, text)))
    assert result.code == 1, result.out + result.err
    (fail,) = [x for x in result.out.splitlines() if x.startswith("FAIL ")]
    assert "rule acme-api-key" in fail and "negative example" in fail and "{alnum:32}" in fail
    assert PREFIX + "{alnum:32}" in fail  # the template, never a filled-in value
    assert "1 with failing examples" in result.out


def test_check_two_files_with_the_same_id_and_an_unreadable_file(tmp_path: Path) -> None:
    a = rule_file(tmp_path, GOOD_RULE, "a.toml")
    b = rule_file(tmp_path, GOOD_RULE, "b.toml")
    result = run("rules", "check", str(a), str(b))
    assert result.code == 2
    assert "acme-api-key" in result.err and "already used" in result.err
    missing = run("rules", "check", str(tmp_path / "missing.toml"))
    assert missing.code == 2 and "missing.toml" in missing.err


# -- scanning with user rules ------------------------------------------------------------------------------


def findings(result: Result) -> list[tuple[str, str]]:
    assert result.code in (0, 1), result.err
    return [(f["rule_id"], f["path"]) for f in json.loads(result.out)["findings"]]


def test_scan_with_rules_reports_the_user_rule(tmp_path: Path) -> None:
    key = fake_acme_key(1)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.env").write_text(f"ACME_KEY={key}\n")
    rules = rule_file(tmp_path, GOOD_RULE)
    assert findings(run(str(tmp_path / "src"), "--format", "json")) == []
    result = run(str(tmp_path / "src"), "--rules", str(rules), "--format", "json")
    assert findings(result) == [("acme-api-key", "app.env")]
    assert result.code == 1
    assert key not in result.out + result.err


def test_scan_with_a_clashing_or_invalid_rule_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "README").write_text("nothing\n")
    clash = rule_file(tmp_path, GOOD_RULE.replace('"acme-api-key"', '"jwt"'), "clash.toml")
    result = run(str(tmp_path / "src"), "--rules", str(clash), "--format", "json")
    assert result.code == 2 and result.out == ""
    assert "clash.toml: rule jwt" in result.err and "built-in rule" in result.err
    bad = rule_file(tmp_path, GOOD_RULE.replace("]{32}", "]*"), "bad.toml")
    result = run(str(tmp_path / "src"), "--rules", str(bad))
    assert result.code == 2 and "bad.toml: rule acme-api-key" in result.err


def test_config_rule_files_are_relative_to_the_config_and_disabled_names_user_rules(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.env").write_text(f"ACME_KEY={fake_acme_key(2)}\n")
    (tmp_path / "conf" / "rules").mkdir(parents=True)
    rule_file(tmp_path / "conf" / "rules", GOOD_RULE)
    config = tmp_path / "conf" / "scan.toml"
    config.write_text('[rules]\nfiles = ["rules/acme.toml"]\n')
    src = str(tmp_path / "src")
    assert findings(run(src, "--config", str(config), "--format", "json")) == [("acme-api-key", "app.env")]
    # The same file on the command line as well is read once, not a duplicate id.
    both = run(
        src, "--config", str(config), "--rules", str(tmp_path / "conf" / "rules" / "acme.toml"), "--format", "json"
    )
    assert findings(both) == [("acme-api-key", "app.env")]
    config.write_text('[rules]\nfiles = ["rules/acme.toml"]\ndisabled = ["acme-api-key"]\n')
    result = run(src, "--config", str(config), "--format", "json")
    assert "acme-api-key" not in [rule for rule, _ in findings(result)]
    config.write_text('[rules]\ndisabled = ["acme-api-key"]\n')  # a user rule that was not loaded
    result = run(src, "--config", str(config), "--format", "json")
    assert result.code == 2 and "acme-api-key" in result.err


def test_an_image_called_rules_is_scanned_by_path_or_reference(tmp_path: Path) -> None:
    key = fake_acme_key(3)
    image = si.build_image([[si.file("srv/app/.env", f"ACME_KEY={key}\n")]])
    si.write_docker_archive(tmp_path / "rules", image, style="new")
    acme = str(rule_file(tmp_path, GOOD_RULE))
    for ref in ("./rules", "docker-archive:rules"):
        result = run(ref, "--rules", acme, "--format", "json", cwd=tmp_path)
        assert findings(result) == [("acme-api-key", "srv/app/.env")], ref
