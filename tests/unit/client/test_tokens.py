"""Bearer tokens for the client: from the environment, or from a file read again when it changes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from secretsvc.client.tokens import MAX_TOKEN_FILE_BYTES, FileToken, StaticToken, token_source
from secretsvc.errors import ConfigError


class _Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_environment_token_and_its_absence(tmp_path: Path) -> None:
    assert token_source(None, {"SECRETSVC_TOKEN": " svc_a_b \n"}).token() == "svc_a_b"
    with pytest.raises(ConfigError, match="SECRETSVC_TOKEN or pass --token-file"):
        token_source(None, {"SECRETSVC_TOKEN": "  "})
    with pytest.raises(ConfigError, match="SECRETSVC_TOKEN or pass --token-file"):
        token_source(None, {})


def test_the_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert token_source(path, {"SECRETSVC_TOKEN": "from-env"}).token() == "from-file"


def test_tokens_stay_out_of_reprs(tmp_path: Path) -> None:
    assert "abc" not in repr(StaticToken("abc"))
    path = tmp_path / "token"
    path.write_text("abc")
    assert "abc" not in repr(FileToken(path))


@pytest.mark.parametrize("content", [b"", b"\n\n", b"two tokens", b"tok\x00en", "tökén".encode()])
def test_files_that_hold_no_usable_token(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"token file {path}"):
        FileToken(path)


def test_a_missing_or_huge_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read token file"):
        FileToken(tmp_path / "absent")
    huge = tmp_path / "huge"
    huge.write_bytes(b"a" * (MAX_TOKEN_FILE_BYTES + 1))
    with pytest.raises(ConfigError, match="MAX_TOKEN_FILE_BYTES"):
        FileToken(huge)


def test_a_rewritten_file_is_read_again_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    clock = _Clock()
    source = FileToken(path, monotonic=clock, interval=1.0)
    path.write_text("second-and-longer")
    assert source.token() == "first"  # not looked at yet
    clock.now += 1.0
    assert source.token() == "second-and-longer"


def test_a_symlink_swap_is_a_change(tmp_path: Path) -> None:
    """Projected service-account tokens: token -> ..data/token, and ..data is swapped atomically."""
    for version, text in (("..v1", "one"), ("..v2", "two")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "token").write_text(text)
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "token").symlink_to("..data/token")
    clock = _Clock()
    source = FileToken(tmp_path / "token", monotonic=clock, interval=0.5)
    assert source.token() == "one"
    (tmp_path / "..tmp").symlink_to("..v2")
    os.rename(tmp_path / "..tmp", tmp_path / "..data")
    clock.now += 1
    assert source.token() == "two"


def test_a_broken_update_keeps_the_last_good_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token"
    path.write_text("good")
    clock = _Clock()
    source = FileToken(path, monotonic=clock, interval=1.0)
    path.write_text("")
    clock.now += 1
    with caplog.at_level(logging.WARNING, logger="secretsvc.client"):
        assert source.token() == "good"
    assert "keeping the previous token" in caplog.text
    assert "good" not in caplog.text
    path.unlink()
    clock.now += 1
    assert source.token() == "good"
    path.write_text("better")
    clock.now += 1
    assert source.token() == "better"
