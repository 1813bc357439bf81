"""Rewrapping many envelopes with one batched unwrap and one batched wrap: `envelope.rewrap_many` over a KEK
that batches, through the cache and the chain, and against a real Transit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey
from secretsvc.kek.cache import CacheLimits, CachingKek, DataKeyCache
from secretsvc.kek.chain import KekChain
from secretsvc.kek.transit import TransitKek, TransitSettings
from secretsvc.kek.vaultauth import TokenLogin
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.rootkey import RootKeyService
from secretsvc.store.sqlite import SqliteStore
from tests.baokit import OpenBao
from tests.unit.service.support import ADMIN


class BatchingKek:
    """A keyset offering batches, counting the calls a remote KEK would make."""

    def __init__(self, key_id: str) -> None:
        self.keyset = Keyset.generate(key_id)
        self.calls: list[str] = []

    @property
    def key_id(self) -> str:
        return self.keyset.key_id

    def primary_version(self) -> int:
        return self.keyset.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        return self.keyset.versions()

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        self.calls.append("wrap")
        return self.keyset.wrap(data_key, aad)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        self.calls.append("unwrap")
        return self.keyset.unwrap(wrapped, aad)

    def rotate(self) -> int:
        return self.keyset.rotate()

    def wrap_many(self, items: Sequence[tuple[SecretBytes, bytes]]) -> list[WrappedKey]:
        self.calls.append(f"wrap_many({len(items)})")
        return [self.keyset.wrap(k, a) for k, a in items]

    def unwrap_many(self, items: Sequence[tuple[WrappedKey, bytes]]) -> list[SecretBytes | errors.DecryptionFailed]:
        self.calls.append(f"unwrap_many({len(items)})")
        out: list[SecretBytes | errors.DecryptionFailed] = []
        for w, a in items:
            try:
                out.append(self.keyset.unwrap(w, a))
            except errors.DecryptionFailed as exc:
                out.append(exc)
        return out


def _contexts(n: int) -> list[envelope.EnvelopeContext]:
    return [envelope.EnvelopeContext.for_secret("ns", f"p{i}", 1) for i in range(n)]


def test_one_batched_unwrap_and_one_batched_wrap_for_all_envelopes() -> None:
    kek = BatchingKek("test:batch")
    ctxs = _contexts(10)
    sealed = [envelope.seal(kek.keyset, f"v{i}".encode(), c) for i, c in enumerate(ctxs)]
    kek.rotate()
    kek.calls.clear()
    out = envelope.rewrap_many(kek, list(zip(sealed, ctxs, strict=True)))
    assert kek.calls == ["unwrap_many(10)", "wrap_many(10)"]
    for i, (new, ctx) in enumerate(zip(out, ctxs, strict=True)):
        assert isinstance(new, bytes) and envelope.parse_header(new).key_version == 2
        assert envelope.open_envelope(kek.keyset, new, ctx).reveal() == f"v{i}".encode()


def test_bad_items_fail_alone_and_current_ones_come_back_unchanged() -> None:
    kek = BatchingKek("test:batch")
    ctxs = _contexts(4)
    old = envelope.seal(kek.keyset, b"old", ctxs[0])
    kek.rotate()
    current = envelope.seal(kek.keyset, b"current", ctxs[1])
    tampered = bytearray(envelope.seal(kek.keyset, b"x", ctxs[2]))
    tampered[30] ^= 1
    foreign = envelope.seal(Keyset.generate("test:other"), b"y", ctxs[3])
    items = [(old, ctxs[0]), (current, ctxs[1]), (bytes(tampered), ctxs[2]), (foreign, ctxs[3]), (b"\x01", ctxs[0])]
    out = envelope.rewrap_many(kek, items)
    assert isinstance(out[0], bytes) and envelope.parse_header(out[0]).key_version == 2
    assert out[1] == current
    assert all(isinstance(r, errors.DecryptionFailed) for r in out[2:])


def test_batches_pass_through_the_cache_and_the_chain() -> None:
    old, new = BatchingKek("local:old"), BatchingKek("vault-transit:transit/new")
    ctxs = _contexts(6)
    sealed = [envelope.seal(old.keyset, b"v", c) for c in ctxs]
    cache = DataKeyCache(CacheLimits())
    chain = KekChain(CachingKek(new, cache), [CachingKek(old, cache)])
    envelope.open_envelope(chain, sealed[0], ctxs[0])  # one key already cached: the batch holds the other five
    old.calls.clear()
    out = envelope.rewrap_many(chain, list(zip(sealed, ctxs, strict=True)))
    assert old.calls == ["unwrap_many(5)"] and new.calls == ["wrap_many(6)"]
    for moved, ctx in zip(out, ctxs, strict=True):
        assert isinstance(moved, bytes)
        assert envelope.open_envelope(new.keyset, moved, ctx).reveal() == b"v"
    # The moved envelopes' data keys were cached by the wrap: reading them needs no call to the new KEK.
    new.calls.clear()
    assert isinstance(out[3], bytes)
    envelope.open_envelope(chain, out[3], ctxs[3])
    assert new.calls == []


def test_rewrap_many_from_the_local_keyring_to_a_real_transit(openbao: OpenBao) -> None:
    name = f"batch-{os.getpid()}"
    openbao.create_key(name)
    transit = TransitKek.open(
        TransitSettings(openbao.addr, name, TokenLogin(token=SecretBytes(openbao.root_token.encode())))
    )
    local = Keyset.generate("local:0123456789abcdef")
    ctxs = _contexts(150)  # more than one Transit request's worth
    sealed = [envelope.seal(local, os.urandom(16), c) for c in ctxs]
    chain = KekChain(transit, [local])
    out = envelope.rewrap_many(chain, list(zip(sealed, ctxs, strict=True)))
    for before, moved, ctx in zip(sealed, out, ctxs, strict=True):
        assert isinstance(moved, bytes) and envelope.parse_header(moved).key_id == transit.key_id
        assert envelope.open_envelope(transit, moved, ctx) == envelope.open_envelope(local, before, ctx)
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(local, out[0], ctxs[0])


def test_root_key_rewrap_sends_one_batch_per_page_of_envelopes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    try:
        kek = BatchingKek("test:root")
        for i, ctx in enumerate(_contexts(7)):
            store.insert_version(
                "ns", f"p{i}", 1, envelope.seal(kek.keyset, b"v", ctx), expected_version=0, now=1.0, max_versions=10
            )
        kek.rotate()
        kek.calls.clear()
        progress = list(RootKeyService(store, kek, AdminPolicyOnly()).rewrap_stored(ADMIN, batch_size=3))
        assert [(p.scanned, p.rewrapped, p.done) for p in progress] == [(3, 3, False), (6, 6, False), (7, 7, True)]
        assert kek.calls == ["unwrap_many(3)", "wrap_many(3)"] * 2 + ["unwrap_many(1)", "wrap_many(1)"]
        for i, ctx in enumerate(_contexts(7)):
            stored = store.read_version("ns", f"p{i}", 1)
            assert envelope.parse_header(stored.envelope).key_version == 2
            assert envelope.open_envelope(kek.keyset, stored.envelope, ctx).reveal() == b"v"
    finally:
        store.close()
