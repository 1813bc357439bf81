"""Policy files and directories: what is read, in what order, and how failures name their files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secretsvc.errors import ConfigError
from secretsvc.policy import check_paths, limits, load_paths
from tests.unit.policy.support import secret, token

POLICY = "version: 1\npolicies:\n  - {name: NAME, rules: [{paths: ['NAME/**'], capabilities: [read], effect: allow}]}\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_directory_contributes_its_policy_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yml", POLICY.replace("NAME", "b"))
    write(tmp_path / "a.yaml", POLICY.replace("NAME", "a"))
    write(tmp_path / "c.json", '{"version": 1, "bindings": [{"identity": {"kind": "token", "pattern": "ci"},'
                               ' "policies": ["a", "b"]}]}')
    write(tmp_path / "README.md", "not a policy")
    write(tmp_path / ".swap.yaml", "not: [valid")  # editor files are skipped
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "x.yaml", "not: [valid")  # subdirectories are not read
    result = check_paths([tmp_path])
    assert result.ok, [str(p) for p in result.problems]
    assert [Path(f).name for f in result.files] == ["a.yaml", "b.yml", "c.json"]
    policies = load_paths([tmp_path])
    assert policies.allows(token("ci"), secret("b/x"), "read")


def test_a_kubernetes_configmap_mount_is_read_once(tmp_path: Path) -> None:
    """A mounted ConfigMap holds `..data` (a link to a timestamped directory) and links to its files."""
    stamped = tmp_path / "..2026_01_01_00_00_00.123"
    stamped.mkdir()
    write(stamped / "policies.yaml", POLICY.replace("NAME", "a"))
    os.symlink(stamped.name, tmp_path / "..data")
    os.symlink("..data/policies.yaml", tmp_path / "policies.yaml")
    result = check_paths([tmp_path])
    assert result.ok and [Path(f).name for f in result.files] == ["policies.yaml"]


def test_files_and_directories_mix_and_problems_name_each_file(tmp_path: Path) -> None:
    one = write(tmp_path / "one.yaml", POLICY.replace("NAME", "a"))
    directory = tmp_path / "more"
    directory.mkdir()
    write(directory / "two.yaml", POLICY.replace("NAME", "a"))
    write(directory / "three.yaml", "version: 1\nbindings:\n  - {identity: {kind: token, pattern: ci}, "
                                    "policies: [a, zzz]}\n")
    with pytest.raises(ConfigError) as raised:
        load_paths([one, directory])
    message = str(raised.value)
    assert f"{directory / 'two.yaml'}:3: policies[0] (a): policy 'a' is already defined at {one}:3" in message
    assert f"{directory / 'three.yaml'}:3: bindings[0].policies[1]: no document defines policy 'zzz'" in message


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: d / "missing.yaml", "cannot be read"),
    (lambda d: d, "holds no policy files"),
    (lambda d: write(d / "big.yaml", "#" * (limits.MAX_POLICY_FILE_BYTES + 1)), "MAX_POLICY_FILE_BYTES"),
    (lambda d: write(d / "empty.yaml", ""), "is empty"),
    (lambda d: write(d / "bad.json", "version: 1\n"), "JSON"),  # a .json file is read as JSON
])
def test_unusable_inputs_are_refused_naming_the_path(tmp_path: Path, setup: object, message: str) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    result = check_paths([path])
    assert not result.ok and message in str(result.problems[0]) and str(path) in str(result.problems[0])
    with pytest.raises(ConfigError, match=message):
        load_paths([path])


def test_too_many_files_in_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_POLICY_FILES", 2)
    for name in ("a", "b", "c"):
        write(tmp_path / f"{name}.yaml", POLICY.replace("NAME", name))
    result = check_paths([tmp_path])
    assert [str(p) for p in result.problems] == [f"{tmp_path}: holds more than MAX_POLICY_FILES=2 policy files"]
    assert result.problems[0].limit


def test_an_endless_file_costs_only_the_limit() -> None:
    result = check_paths([Path("/dev/zero")])
    assert "MAX_POLICY_FILE_BYTES" in str(result.problems[0])


def test_unsafe_bindings_are_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "p.yaml", POLICY.replace("NAME", "a") + "bindings:\n  - identity: {kind: serviceaccount, "
                 "pattern: '*/*'}\n    policies: [a]\n    unsafe_match_all: true\n")
    with caplog.at_level("WARNING"):
        load_paths([path])
    assert f"{path}:5: bindings[0] grants a to every serviceaccount identity (unsafe_match_all)" in caplog.text
