"""`LocalKeyring`: the keyring file, its permissions, sealing, rotation and corruption handling."""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secretsvc import errors
from secretsvc.crypto import aead, envelope
from secretsvc.crypto.envelope import EnvelopeContext
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek import KeyEncryptionKey, LocalKeyring
from secretsvc.kek import local as local_mod

FAST = aead.ScryptParams(n=16, r=1, p=1)
CTX = EnvelopeContext.for_secret("default", "app/db", 1)


def _passphrase(seed: int = 1) -> SecretBytes:
    return SecretBytes(random.Random(seed).randbytes(20).hex().encode())


def _open(path: Path, passphrase: SecretBytes | None = None, **kwargs: Any) -> LocalKeyring:
    return LocalKeyring.open_or_create(path, passphrase, scrypt_params=FAST, **kwargs)


def _doc(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _write_doc(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def test_created_in_a_directory_with_mode_0600(tmp_path: Path) -> None:
    ring = _open(tmp_path, clock=lambda: 1234.5)
    assert ring.path == tmp_path / "keyring.json"
    assert stat.S_IMODE(os.stat(ring.path).st_mode) == 0o600
    assert ring.key_id.startswith("local:")
    assert len(ring.key_id) == len("local:") + 16
    int(ring.key_id[len("local:") :], 16)
    assert ring.primary_version() == 1
    assert [(v.version, v.created_at) for v in ring.versions()] == [(1, 1234.5)]
    kek: KeyEncryptionKey = ring
    assert kek.key_id == ring.key_id


def test_mode_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ring = _open(tmp_path / "k.json")
        ring.rotate()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ring.path).st_mode) == 0o600


def test_reload_gives_the_same_keys(tmp_path: Path) -> None:
    ring = _open(tmp_path)
    sealed = envelope.seal(ring, b"value", CTX)
    again = _open(tmp_path)
    assert again.key_id == ring.key_id
    assert again.versions() == ring.versions()
    assert envelope.open_envelope(again, sealed, CTX).reveal() == b"value"


def test_distinct_keyrings_have_distinct_ids(tmp_path: Path) -> None:
    assert _open(tmp_path / "a.json").key_id != _open(tmp_path / "b.json").key_id


def test_rotate_persists_before_returning(tmp_path: Path) -> None:
    ring = _open(tmp_path, clock=lambda: 10.0)
    old = envelope.seal(ring, b"old", CTX)
    assert ring.rotate() == 2
    reloaded = LocalKeyring.load(tmp_path, None)
    assert reloaded.primary_version() == 2
    assert [v.version for v in reloaded.versions()] == [1, 2]
    new = envelope.seal(ring, b"new", CTX)
    assert envelope.parse_header(new).key_version == 2
    assert envelope.open_envelope(reloaded, new, CTX).reveal() == b"new"
    assert envelope.open_envelope(reloaded, old, CTX).reveal() == b"old"
    moved = envelope.rewrap(reloaded, old, CTX)
    assert envelope.parse_header(moved).key_version == 2


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    ring = _open(tmp_path)
    for _ in range(3):
        ring.rotate()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_a_failed_write_keeps_the_old_file_and_the_old_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = _open(tmp_path)
    before = ring.path.read_bytes()

    def refuse(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(errors.KeyringError, match="cannot write keyring file"):
        ring.rotate()
    assert ring.primary_version() == 1
    assert ring.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_creation_does_not_overwrite_a_file_that_appeared(tmp_path: Path) -> None:
    first = _open(tmp_path)
    path = tmp_path / "keyring.json"
    # The second creator loses the race: its hard link fails and it loads the winner's file.
    loser = LocalKeyring._create(path, None, lambda: 0.0, os.urandom, FAST)
    assert loser is None
    assert _open(tmp_path).key_id == first.key_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_a_file_others_can_reach_is_refused(tmp_path: Path, mode: int) -> None:
    ring = _open(tmp_path)
    ring.path.chmod(mode)
    with pytest.raises(errors.KeyringError, match="chmod 600") as info:
        _open(tmp_path)
    assert oct(mode)[2:] in str(info.value)


def test_owner_read_only_is_accepted(tmp_path: Path) -> None:
    ring = _open(tmp_path)
    ring.path.chmod(0o400)
    assert _open(tmp_path).key_id == ring.key_id


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    ring = _open(tmp_path / "real.json")
    link = tmp_path / "keyring.json"
    link.symlink_to(ring.path)
    with pytest.raises(errors.KeyringError, match="cannot open"):
        LocalKeyring.load(link, None)


def test_a_missing_file_cannot_be_loaded(tmp_path: Path) -> None:
    with pytest.raises(errors.KeyringError, match="cannot open"):
        LocalKeyring.load(tmp_path / "absent.json", None)


def test_a_missing_directory_is_a_keyring_error(tmp_path: Path) -> None:
    with pytest.raises(errors.KeyringError, match="cannot write"):
        _open(tmp_path / "no" / "such" / "keyring.json")


# --- sealing ---


def test_sealed_keyring_round_trip(tmp_path: Path) -> None:
    ring = _open(tmp_path, _passphrase())
    assert ring.sealed
    ring.rotate()
    sealed = envelope.seal(ring, b"value", CTX)
    doc = _doc(ring.path)
    assert doc["sealing"]["kdf"] == "scrypt"
    assert (doc["sealing"]["n"], doc["sealing"]["r"], doc["sealing"]["p"]) == (16, 1, 1)
    for v in (1, 2):
        stored = base64.b64decode(doc["versions"][v - 1]["key"])
        assert len(stored) == 32 + aead.OVERHEAD_BYTES
        assert ring._keyset.material(v).reveal() not in ring.path.read_bytes()
        assert ring._keyset.material(v).reveal() not in stored
    again = _open(tmp_path, _passphrase())
    assert envelope.open_envelope(again, sealed, CTX).reveal() == b"value"


def test_sealed_keyring_uses_the_default_kdf_cost_unless_told(tmp_path: Path) -> None:
    ring = LocalKeyring.open_or_create(tmp_path, _passphrase())
    sealing = _doc(ring.path)["sealing"]
    assert (sealing["n"], sealing["r"], sealing["p"]) == (2**15, 8, 1)
    assert LocalKeyring.load(tmp_path, _passphrase()).key_id == ring.key_id


def test_wrong_passphrase(tmp_path: Path) -> None:
    _open(tmp_path, _passphrase(1))
    with pytest.raises(errors.KeyringError, match="wrong passphrase"):
        _open(tmp_path, _passphrase(2))


def test_missing_passphrase(tmp_path: Path) -> None:
    _open(tmp_path, _passphrase())
    with pytest.raises(errors.KeyringError, match="sealed with a passphrase, and none was given"):
        _open(tmp_path, None)


def test_passphrase_for_an_unsealed_keyring_is_refused(tmp_path: Path) -> None:
    _open(tmp_path, None)
    with pytest.raises(errors.KeyringError, match="not sealed"):
        _open(tmp_path, _passphrase())


@pytest.mark.parametrize("passphrase", [b"", b"x" * (local_mod.MAX_PASSPHRASE_BYTES + 1)])
def test_passphrase_length_is_bounded(tmp_path: Path, passphrase: bytes) -> None:
    with pytest.raises(errors.KeyringError, match="passphrase must be"):
        _open(tmp_path, SecretBytes(passphrase))
    assert list(tmp_path.iterdir()) == []


def test_sealed_material_swapped_between_versions_is_detected(tmp_path: Path) -> None:
    ring = _open(tmp_path, _passphrase())
    ring.rotate()
    doc = _doc(ring.path)
    v1, v2 = doc["versions"]
    v1["key"], v2["key"] = v2["key"], v1["key"]
    _write_doc(ring.path, doc)
    with pytest.raises(errors.KeyringError, match="does not authenticate"):
        _open(tmp_path, _passphrase())


# --- corruption ---


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(doc: dict[str, Any]) -> Any:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return doc

    return change


def _drop(path: list[Any]) -> Callable[[dict[str, Any]], Any]:
    def change(doc: dict[str, Any]) -> Any:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
        return doc

    return change


def _flip_key_byte(doc: dict[str, Any]) -> Any:
    raw = bytearray(base64.b64decode(doc["versions"][0]["key"]))
    raw[3] ^= 0x10
    doc["versions"][0]["key"] = base64.b64encode(bytes(raw)).decode()
    return doc


CORRUPTIONS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "top level is a list": (lambda d: [d], "top level"),
    "format unknown": (_set(["format"], "secretsvc.keyring.v9"), "format"),
    "format missing": (_drop(["format"]), "lacks 'format'"),
    "key id wrong type": (_set(["key_id"], 7), "key_id has the wrong type"),
    "key id foreign": (_set(["key_id"], "vault:x"), "key_id"),
    "sealing missing": (_drop(["sealing"]), "sealing"),
    "sealing wrong type": (_set(["sealing"], "scrypt"), "sealing is not an object"),
    "versions missing": (_drop(["versions"]), "lacks 'versions'"),
    "versions empty": (_set(["versions"], []), "versions must hold"),
    "versions not a list": (_set(["versions"], {}), "versions has the wrong type"),
    "version entry not an object": (_set(["versions", 0], 1), "versions[0] is not an object"),
    "version number a string": (_set(["versions", 0, "version"], "1"), "version has the wrong type"),
    "version number a bool": (_set(["versions", 0, "version"], True), "version has the wrong type"),
    "version number zero": (_set(["versions", 0, "version"], 0), "out of range"),
    "version number huge": (_set(["versions", 0, "version"], 2**40), "out of range"),
    "created_at a string": (_set(["versions", 0, "created_at"], "now"), "created_at has the wrong type"),
    "created_at negative": (_set(["versions", 0, "created_at"], -5), "created_at"),
    "created_at not finite": (_set(["versions", 0, "created_at"], float("nan")), "created_at"),
    "key not base64": (_set(["versions", 0, "key"], "***"), "not valid base64"),
    "key too short": (_set(["versions", 0, "key"], base64.b64encode(bytes(16)).decode()), "not 32 bytes"),
    "key too long text": (_set(["versions", 0, "key"], "A" * 1000), "too long"),
    "key byte changed": (_flip_key_byte, "key check value does not match"),
    "kcv not hex": (_set(["versions", 0, "kcv"], "zz"), "kcv is not hex"),
    "kcv changed": (_set(["versions", 0, "kcv"], "00" * 16), "key check value does not match"),
    "kcv missing": (_drop(["versions", 0, "kcv"]), "lacks 'kcv'"),
    "duplicate versions": (lambda d: {**d, "versions": d["versions"] * 2}, "unique and increasing"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_documents_are_keyring_errors(tmp_path: Path, name: str) -> None:
    change, message = CORRUPTIONS[name]
    ring = _open(tmp_path)
    material = ring._keyset.material(1).reveal()
    _write_doc(ring.path, change(_doc(ring.path)))
    with pytest.raises(errors.KeyringError, match="keyring") as info:
        _open(tmp_path)
    text = str(info.value)
    assert message in text
    assert material.hex() not in text
    assert base64.b64encode(material).decode() not in text


SEALED_CORRUPTIONS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "kdf unknown": (_set(["sealing", "kdf"], "argon2"), "kdf"),
    "n not a power of two": (_set(["sealing", "n"], 1000), "scrypt n"),
    "n huge": (_set(["sealing", "n"], 2**40), "scrypt n"),
    "r a string": (_set(["sealing", "r"], "8"), "r has the wrong type"),
    "salt short": (_set(["sealing", "salt"], base64.b64encode(bytes(4)).decode()), "salt"),
    "salt not base64": (_set(["sealing", "salt"], "!"), "salt is not valid base64"),
    "check changed": (_set(["sealing", "check"], base64.b64encode(bytes(32)).decode()), "wrong passphrase"),
    "sealed key byte changed": (_flip_key_byte, "does not authenticate"),
}


@pytest.mark.parametrize("name", list(SEALED_CORRUPTIONS))
def test_corrupt_sealed_documents_are_keyring_errors(tmp_path: Path, name: str) -> None:
    change, message = SEALED_CORRUPTIONS[name]
    ring = _open(tmp_path, _passphrase())
    _write_doc(ring.path, change(_doc(ring.path)))
    with pytest.raises(errors.KeyringError, match=message):
        _open(tmp_path, _passphrase())


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe", b"null", b"[]", b"42", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "truncated", "not utf8", "null", "list", "number", "deeply nested"],
)
def test_files_that_are_not_keyring_json(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "keyring.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(errors.KeyringError, match="corrupt"):
        _open(tmp_path)


def test_a_truncated_keyring_is_refused(tmp_path: Path) -> None:
    ring = _open(tmp_path)
    data = ring.path.read_bytes()
    for cut in range(0, len(data) - 2, 7):
        ring.path.write_bytes(data[:cut])
        with pytest.raises(errors.KeyringError):
            _open(tmp_path)


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.ftruncate(fd, local_mod.MAX_KEYRING_FILE_BYTES + 1)
    os.close(fd)
    with pytest.raises(errors.KeyringError, match="MAX_KEYRING_FILE_BYTES"):
        _open(tmp_path)


def test_repr_and_pickle_never_show_keys(tmp_path: Path) -> None:
    ring = _open(tmp_path)
    text = repr(ring)
    assert ring.key_id in text
    assert ring._keyset.material(1).reveal().hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(ring)
