"""The scan config's `[rules] files`: user rule files, relative to the config file, bounded in number."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsvc.errors import ConfigError
from secretsvc.scan.config import MAX_RULE_FILES, load_config, parse_config


def test_rule_files_are_taken_relative_to_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "ci" / "scan.toml"
    config.parent.mkdir()
    config.write_text(f'[rules]\nfiles = ["rules/acme.toml", "{tmp_path / "abs.toml"}"]\ndisabled = ["acme-key"]\n')
    loaded = load_config(config)
    assert loaded.rule_files == (tmp_path / "ci" / "rules" / "acme.toml", tmp_path / "abs.toml")
    assert loaded.disabled_rules == frozenset({"acme-key"})


def test_without_a_file_rule_files_stay_as_given() -> None:
    assert parse_config({"rules": {"files": ["a.toml"]}}).rule_files == (Path("a.toml"),)
    assert parse_config({}).rule_files == ()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ("a.toml", "rules.files must be a list of strings"),
        ([1], "rules.files must be a list of strings"),
        ([""], "rules.files contains an empty entry"),
        ([f"r{i}.toml" for i in range(MAX_RULE_FILES + 1)], "MAX_RULE_FILES"),
    ],
)
def test_bad_rule_files_are_config_errors(files: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"rules": {"files": files}}, source="scan.toml")
