"""The scan config file: parsing, strictness, and path-glob semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsvc.errors import ConfigError
from secretsvc.scan import config as config_module
from secretsvc.scan.config import ScanConfig, load_config, parse_config, path_ignored
from secretsvc.scan.model import Finding, Location, Severity


def _finding(path: str, rule_id: str = "jwt") -> Finding:
    return Finding(rule_id, Severity.LOW, None, 0, path, 1, Location.FILE, "0" * 64, "…(9 chars)")


def test_load_a_full_config(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(
        '[ignore]\npaths = ["usr/share/doc", "*.md"]\nrules = ["jwt"]\n\n[rules]\ndisabled = ["private-key"]\n'
    )
    config = load_config(path)
    assert config == ScanConfig(("usr/share/doc", "*.md"), frozenset({"jwt"}), frozenset({"private-key"}))
    assert config.ignores(_finding("usr/share/doc/pkg/README"))
    assert config.ignores(_finding("srv/NOTES.md", rule_id="x"))
    assert config.ignores(_finding("srv/app.env", rule_id="jwt"))
    assert config.ignores(_finding("srv/app.env", rule_id="private-key"))
    assert not config.ignores(_finding("srv/app.env", rule_id="x"))
    assert config.rule_ids() == {"jwt", "private-key"}


def test_empty_config_ignores_nothing() -> None:
    assert parse_config({}) == ScanConfig()
    assert not ScanConfig().ignores(_finding("anything"))


@pytest.mark.parametrize(
    ("path", "pattern", "ignored"),
    [
        ("usr/share/doc/a/b.txt", "usr/share/doc", True),
        ("usr/share/doc/a/b.txt", "/usr/share/doc/", True),
        ("usr/share/docs/b.txt", "usr/share/doc", False),
        ("usr/share/doc/a/b.txt", "usr/*/b.txt", True),  # "*" crosses "/"
        ("srv/app/test/fixtures/key.pem", "fixtures", True),  # a bare name matches any component
        ("srv/app/test/fixtures/key.pem", "*.pem", True),
        ("srv/app/key.pem.bak", "*.pem", False),
        ("opt/app.jar!BOOT-INF/test.properties", "opt/app.jar", True),
        ("opt/app.jar!BOOT-INF/test.properties", "BOOT-INF/*.properties", True),
        ("opt/app.jar!BOOT-INF/test.properties", "*.properties", True),
        ("opt/app.jar!BOOT-INF/test.properties", "opt/other.jar", False),
        ("Env[2]", "Env*", True),
    ],
)
def test_path_globs(path: str, pattern: str, ignored: bool) -> None:
    assert path_ignored(path, [pattern]) is ignored


def test_unknown_rule_ids_are_refused() -> None:
    config = ScanConfig(ignore_rules=frozenset({"jtw"}))
    with pytest.raises(ConfigError, match="unknown rule ids: jtw"):
        config.check_rule_ids(["jwt", "private-key"])
    config.check_rule_ids(["jtw"])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"ignores": {}}, r"unknown table \[ignores\]"),
        ({"ignore": []}, r"\[ignore\] must be a table"),
        ({"ignore": {"path": ["a"]}}, r"unknown key\(s\) in \[ignore\]: path"),
        ({"rules": {"disable": ["a"]}}, r"unknown key\(s\) in \[rules\]: disable"),
        ({"ignore": {"paths": "a"}}, "must be a list of strings"),
        ({"ignore": {"paths": [1]}}, "must be a list of strings"),
        ({"ignore": {"paths": [" "]}}, "empty entry"),
        ({"ignore": {"rules": ["r" * 129]}}, "longer than 128"),
        ({"rules": {"disabled": [True]}}, "must be a list of strings"),
    ],
)
def test_bad_documents(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(document)


def test_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="cannot read scan config"):
        load_config(tmp_path / "absent.toml")
    path = tmp_path / "c.toml"
    path.write_text("[ignore\npaths = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    path.write_bytes(b"\xff[ignore]")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    path.write_text('[ignore]\npaths = ["a"]\n')
    monkeypatch.setattr(config_module, "MAX_CONFIG_FILE_BYTES", 5)
    with pytest.raises(ConfigError, match="MAX_CONFIG_FILE_BYTES"):
        load_config(path)
    monkeypatch.setattr(config_module, "MAX_CONFIG_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(config_module, "MAX_CONFIG_PATTERNS", 0)
    with pytest.raises(ConfigError, match="MAX_CONFIG_PATTERNS"):
        load_config(path)
