"""`Keyset`: versioned AES-256 keys as a key-encryption key."""

from __future__ import annotations

import hashlib
import pickle
import threading

import pytest

from secretsvc import errors
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo, WrappedKey


def _key(label: str) -> SecretBytes:
    return SecretBytes(hashlib.sha256(label.encode()).digest())


def _keyset(*versions: int) -> Keyset:
    return Keyset("test:ks", [(v, 100.0 + v, _key(f"v{v}")) for v in versions], clock=lambda: 500.0)


def test_implements_the_kek_protocol() -> None:
    kek: KeyEncryptionKey = _keyset(1)
    assert kek.key_id == "test:ks"


def test_wrap_uses_the_primary_and_unwrap_finds_any_version() -> None:
    ks = _keyset(1, 3)
    assert ks.primary_version() == 3
    wrapped = ks.wrap(_key("data"), b"aad")
    assert (wrapped.key_id, wrapped.key_version) == ("test:ks", 3)
    assert ks.unwrap(wrapped, b"aad") == _key("data")
    old = _keyset(1).wrap(_key("data"), b"aad")
    assert ks.unwrap(old, b"aad") == _key("data")


@pytest.mark.parametrize(
    "change",
    [
        lambda w: WrappedKey("test:other", w.key_version, w.blob),
        lambda w: WrappedKey(w.key_id, 2, w.blob),
        lambda w: WrappedKey(w.key_id, 1, w.blob),
        lambda w: WrappedKey(w.key_id, w.key_version, w.blob[:-1]),
        lambda w: WrappedKey(w.key_id, w.key_version, b""),
        lambda w: WrappedKey(w.key_id, w.key_version, bytes([w.blob[0] ^ 1]) + w.blob[1:]),
    ],
)
def test_unwrap_failures_are_uniform(change: object) -> None:
    ks = _keyset(1, 3)
    wrapped = change(ks.wrap(_key("data"), b"aad"))  # type: ignore[operator]
    with pytest.raises(errors.DecryptionFailed):
        ks.unwrap(wrapped, b"aad")


def test_unwrap_with_other_aad_fails() -> None:
    ks = _keyset(1)
    with pytest.raises(errors.DecryptionFailed):
        ks.unwrap(ks.wrap(_key("data"), b"aad"), b"aad2")


def test_rotate_adds_a_random_primary_and_keeps_old_versions() -> None:
    ks = _keyset(1)
    before = ks.wrap(_key("data"), b"")
    assert ks.rotate() == 2
    assert ks.primary_version() == 2
    assert ks.versions() == [KeyVersionInfo(1, 101.0), KeyVersionInfo(2, 500.0)]
    assert ks.material(2) != ks.material(1)
    assert len(ks.material(2)) == 32
    assert ks.unwrap(before, b"") == _key("data")
    assert ks.wrap(_key("data"), b"").key_version == 2


def test_concurrent_rotations_give_distinct_versions() -> None:
    ks = _keyset(1)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(ks.rotate())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(2, 10))
    assert ks.primary_version() == 9


def test_add_version_must_be_newer() -> None:
    ks = _keyset(1, 2)
    with pytest.raises(errors.InvalidArgument, match="not newer"):
        ks.add_version(2, 1.0, _key("x"))
    ks.add_version(5, 1.0, _key("x"))
    assert ks.primary_version() == 5
    assert ks.next_version() == 6


def test_material_of_unknown_version() -> None:
    with pytest.raises(errors.NotFound, match="no version 4"):
        _keyset(1).material(4)


def test_generate() -> None:
    ks = Keyset.generate("test:gen", clock=lambda: 42.0)
    assert ks.versions() == [KeyVersionInfo(1, 42.0)]
    assert Keyset.generate("test:gen").material(1) != ks.material(1)


@pytest.mark.parametrize(
    ("key_id", "versions"),
    [
        ("test:ks", []),
        ("", [(1, 0.0, _key("a"))]),
        ("has space", [(1, 0.0, _key("a"))]),
        ("caf\u00e9", [(1, 0.0, _key("a"))]),
        ("x" * 256, [(1, 0.0, _key("a"))]),
        ("test:ks", [(0, 0.0, _key("a"))]),
        ("test:ks", [(2**32, 0.0, _key("a"))]),
        ("test:ks", [(True, 0.0, _key("a"))]),
        ("test:ks", [(1, -1.0, _key("a"))]),
        ("test:ks", [(1, 0.0, SecretBytes(bytes(16)))]),
        ("test:ks", [(1, 0.0, bytes(32))]),
        ("test:ks", [(2, 0.0, _key("a")), (1, 0.0, _key("b"))]),
        ("test:ks", [(1, 0.0, _key("a")), (1, 0.0, _key("b"))]),
    ],
)
def test_constructor_validates(key_id: str, versions: list[tuple[int, float, SecretBytes]]) -> None:
    with pytest.raises(errors.InvalidArgument):
        Keyset(key_id, versions)


def test_repr_and_pickle_never_show_keys() -> None:
    ks = _keyset(1, 2)
    text = repr(ks)
    assert "test:ks" in text
    assert ks.material(1).reveal().hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(ks)
