"""The audit keys in the data directory: created once with the right modes, loaded after, refused when wrong."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest

from secretsvc.audit.keys import (
    HMAC_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNING_KEY_FILE,
    AuditKeys,
    load_hmac_key,
    load_public_key,
)
from secretsvc.errors import AuditUnavailable, InvalidArgument
from tests.fakecreds import broken_pem


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_the_three_files_with_their_modes(tmp_path: Path) -> None:
    keys = AuditKeys.load_or_create(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SIGNING_KEY_FILE, PUBLIC_KEY_FILE, HMAC_KEY_FILE])
    assert _mode(tmp_path / SIGNING_KEY_FILE) == 0o600
    assert _mode(tmp_path / HMAC_KEY_FILE) == 0o600
    assert _mode(tmp_path / PUBLIC_KEY_FILE) == 0o644
    assert load_public_key(tmp_path / PUBLIC_KEY_FILE) == keys.public_key
    assert load_hmac_key(tmp_path / HMAC_KEY_FILE) == keys.hmac_key


def test_later_starts_load_the_same_keys(tmp_path: Path) -> None:
    first = AuditKeys.load_or_create(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    again = AuditKeys.load_or_create(tmp_path)
    assert again.public_key == first.public_key and again.hmac_key == first.hmac_key
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_keys_stay_out_of_reprs_and_pickles(tmp_path: Path) -> None:
    keys = AuditKeys.load_or_create(tmp_path)
    hmac_hex = keys.hmac_key.reveal().hex()
    text = repr(keys)
    assert hmac_hex not in text and "PRIVATE" not in text and "redacted" in text
    with pytest.raises(TypeError):
        pickle.dumps(keys)


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    AuditKeys.load_or_create(tmp_path)
    os.chmod(tmp_path / SIGNING_KEY_FILE, 0o640)
    with pytest.raises(AuditUnavailable, match="chmod 600"):
        AuditKeys.load_or_create(tmp_path)


def test_a_public_key_without_its_private_key_is_not_replaced(tmp_path: Path) -> None:
    AuditKeys.load_or_create(tmp_path)
    public = (tmp_path / PUBLIC_KEY_FILE).read_bytes()
    (tmp_path / SIGNING_KEY_FILE).unlink()
    with pytest.raises(AuditUnavailable, match="exists but its private key"):
        AuditKeys.load_or_create(tmp_path)
    assert (tmp_path / PUBLIC_KEY_FILE).read_bytes() == public


def test_a_public_key_of_another_private_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    AuditKeys.load_or_create(tmp_path / "a")
    AuditKeys.load_or_create(tmp_path / "b")
    os.replace(tmp_path / "b" / PUBLIC_KEY_FILE, tmp_path / "a" / PUBLIC_KEY_FILE)
    with pytest.raises(AuditUnavailable, match="does not belong"):
        AuditKeys.load_or_create(tmp_path / "a")


def test_a_public_key_lost_in_a_crash_is_derived_again(tmp_path: Path) -> None:
    keys = AuditKeys.load_or_create(tmp_path)
    (tmp_path / PUBLIC_KEY_FILE).unlink()
    assert AuditKeys.load_or_create(tmp_path).public_key == keys.public_key
    assert load_public_key(tmp_path / PUBLIC_KEY_FILE) == keys.public_key


@pytest.mark.parametrize("content", [b"", b"secretsvc.audit.hmac.v1\n", b"other.header " + b"ab" * 32 + b"\n",
                                     b"secretsvc.audit.hmac.v1 " + b"zz" * 32 + b"\n",
                                     b"secretsvc.audit.hmac.v1 " + b"ab" * 31 + b"\n"])
def test_a_corrupt_hmac_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    AuditKeys.load_or_create(tmp_path)
    (tmp_path / HMAC_KEY_FILE).write_bytes(content)
    with pytest.raises(AuditUnavailable, match="not an audit HMAC key"):
        AuditKeys.load_or_create(tmp_path)
    with pytest.raises(InvalidArgument, match="not an audit HMAC key"):
        load_hmac_key(tmp_path / HMAC_KEY_FILE)


def test_a_corrupt_signing_key_is_refused(tmp_path: Path) -> None:
    AuditKeys.load_or_create(tmp_path)
    (tmp_path / SIGNING_KEY_FILE).write_bytes(broken_pem("PRIVATE KEY", "nope"))
    with pytest.raises(AuditUnavailable, match="audit signing key"):
        AuditKeys.load_or_create(tmp_path)


def test_public_key_loading_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_public_key(tmp_path / "missing.pub")
    (tmp_path / "bad.pub").write_bytes(b"not a key")
    with pytest.raises(InvalidArgument, match=r"bad\.pub"):
        load_public_key(tmp_path / "bad.pub")
    (tmp_path / "huge.pub").write_bytes(b"x" * 100_000)
    with pytest.raises(InvalidArgument, match="MAX_KEY_PEM_BYTES"):
        load_public_key(tmp_path / "huge.pub")
