"""Contract tests for the rest of `SecretStore`: rewrap scan and replace, transit keys, tokens, lifecycle.
Backend-agnostic: a store comes from the `store` / `store_factory` fixtures only."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from secretsvc.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    StorageError,
    VersionConflict,
)
from secretsvc.store.base import EnvelopeRef, SecretStore, TokenRecord, iter_all_envelopes

NS = "team-a"
T0 = 1_700_000_000.0


# --- rewrap -------------------------------------------------------------------------------------------------
def fill_for_scan(store: SecretStore, rng: random.Random) -> dict[tuple[str, str, str, int], bytes]:
    stored: dict[tuple[str, str, str, int], bytes] = {}
    for ns, path, count in [("b", "x", 2), ("a", "z", 1), ("a", "y", 3), ("a", "y/", 1)]:
        for v in range(1, count + 1):
            env = rng.randbytes(48)
            store.insert_version(ns, path, v, env, expected_version=v - 1, now=T0, max_versions=10)
            stored[("secret", ns, path, v)] = env
    for name in ("k2", "k1"):
        material = rng.randbytes(48)
        store.create_transit_key(name, material, now=T0)
        stored[("transit_key", "", name, 1)] = material
    material = rng.randbytes(48)
    store.add_transit_key_version("k1", 2, material, now=T0 + 1)
    stored[("transit_key", "", "k1", 2)] = material
    return stored


def test_scan_visits_every_envelope_in_key_order_at_any_batch_size(store: SecretStore) -> None:
    stored = fill_for_scan(store, random.Random(21))
    store.destroy_versions("a", "y", [2], now=T0 + 5)
    del stored[("secret", "a", "y", 2)]
    expected = sorted(stored)
    for batch in (1, 2, 3, 100):
        refs = list(iter_all_envelopes(store, batch=batch))
        assert [(r.kind, r.namespace, r.path, r.version) for r in refs] == expected
        assert all(r.envelope == stored[(r.kind, r.namespace, r.path, r.version)] for r in refs)


def test_scan_resumes_after_a_key_that_no_longer_exists(store: SecretStore) -> None:
    stored = fill_for_scan(store, random.Random(22))
    store.delete_secret("a", "y")
    refs = store.scan_envelopes(after=("secret", "a", "y", 2), limit=100)
    keys = [(r.kind, r.namespace, r.path, r.version) for r in refs]
    assert keys == sorted(k for k in stored if k > ("secret", "a", "y", 2) and k[2] != "y")
    tail = store.scan_envelopes(after=("transit_key", "", "k1", 2), limit=100)
    assert [(r.path, r.version) for r in tail] == [("k2", 1)]


@pytest.mark.parametrize("limit", [0, -5, 10**9])
def test_scan_rejects_bad_limits(store: SecretStore, limit: int) -> None:
    with pytest.raises(InvalidArgument):
        store.scan_envelopes(after=None, limit=limit)


def test_scan_rejects_an_unknown_kind(store: SecretStore) -> None:
    with pytest.raises(InvalidArgument):
        store.scan_envelopes(after=("bogus", "", "", 1), limit=5)


def test_replace_envelope_swaps_only_the_unchanged_envelope(store: SecretStore) -> None:
    rng = random.Random(23)
    stored = fill_for_scan(store, rng)
    refs = {(r.kind, r.namespace, r.path, r.version): r for r in iter_all_envelopes(store)}
    secret_ref = refs[("secret", "a", "y", 1)]
    new = rng.randbytes(60)
    assert store.replace_envelope(secret_ref, new) is True
    assert store.read_version("a", "y", 1).envelope == new
    # The same stale ref again: the stored bytes moved on, so nothing is undone.
    assert store.replace_envelope(secret_ref, rng.randbytes(60)) is False
    assert store.read_version("a", "y", 1).envelope == new
    assert store.read_version("a", "y", 2).envelope == stored[("secret", "a", "y", 2)]

    key_ref = refs[("transit_key", "", "k1", 2)]
    material = rng.randbytes(60)
    assert store.replace_envelope(key_ref, material) is True
    record = store.read_transit_key("k1")
    assert record is not None
    assert [v.wrapped_material for v in record.versions] == [stored[("transit_key", "", "k1", 1)], material]
    assert store.replace_envelope(key_ref, rng.randbytes(60)) is False


def test_replace_envelope_never_resurrects_a_destroyed_or_deleted_secret(store: SecretStore) -> None:
    rng = random.Random(24)
    fill_for_scan(store, rng)
    refs = {(r.kind, r.namespace, r.path, r.version): r for r in iter_all_envelopes(store)}
    store.destroy_versions("b", "x", [1], now=T0 + 1)
    assert store.replace_envelope(refs[("secret", "b", "x", 1)], rng.randbytes(60)) is False
    assert store.read_version("b", "x", 1).envelope is None
    store.delete_secret("a", "z")
    assert store.replace_envelope(refs[("secret", "a", "z", 1)], rng.randbytes(60)) is False
    assert store.read_meta("a", "z") is None
    missing = EnvelopeRef("transit_key", "", "nokey", 1, b"\x01")
    assert store.replace_envelope(missing, b"\x02") is False


def test_replace_envelope_rejects_unknown_kind_and_empty_envelope(store: SecretStore) -> None:
    with pytest.raises(InvalidArgument):
        store.replace_envelope(EnvelopeRef("bogus", "", "k", 1, b"\x01"), b"\x02")
    with pytest.raises(InvalidArgument):
        store.replace_envelope(EnvelopeRef("secret", NS, "p", 1, b"\x01"), b"")


# --- transit keys -------------------------------------------------------------------------------------------
def test_transit_key_lifecycle(store: SecretStore) -> None:
    rng = random.Random(25)
    m1, m2, m3 = rng.randbytes(40), rng.randbytes(40), rng.randbytes(40)
    assert store.read_transit_key("orders") is None
    record = store.create_transit_key("orders", m1, now=T0)
    assert (record.name, record.created_at, record.min_decryption_version, record.latest_version) == (
        "orders", T0, 1, 1)
    assert [(v.version, v.wrapped_material, v.created_at) for v in record.versions] == [(1, m1, T0)]
    store.add_transit_key_version("orders", 2, m2, now=T0 + 1)
    record = store.add_transit_key_version("orders", 3, m3, now=T0 + 2)
    assert [v.version for v in record.versions] == [1, 2, 3]
    assert record.latest_version == 3
    record = store.set_transit_min_decryption_version("orders", 3)
    assert record.min_decryption_version == 3
    assert store.read_transit_key("orders") == record
    store.create_transit_key("billing", m1, now=T0)
    assert store.list_transit_keys() == ["billing", "orders"]


def test_transit_key_errors(store: SecretStore) -> None:
    store.create_transit_key("k", b"\x01", now=T0)
    with pytest.raises(AlreadyExists):
        store.create_transit_key("k", b"\x02", now=T0)
    with pytest.raises(VersionConflict, match="expected to add version 2"):
        store.add_transit_key_version("k", 3, b"\x02", now=T0)
    with pytest.raises(VersionConflict):
        store.add_transit_key_version("k", 1, b"\x02", now=T0)
    with pytest.raises(InvalidArgument):
        store.add_transit_key_version("k", 0, b"\x02", now=T0)
    with pytest.raises(NotFound):
        store.add_transit_key_version("missing", 2, b"\x02", now=T0)
    with pytest.raises(NotFound):
        store.set_transit_min_decryption_version("missing", 1)
    for bad in (0, 2):
        with pytest.raises(InvalidArgument):
            store.set_transit_min_decryption_version("k", bad)
    record = store.read_transit_key("k")
    assert record is not None
    assert (record.latest_version, record.min_decryption_version) == (1, 1)
    assert record.versions[0].wrapped_material == b"\x01"


def test_transit_key_names_are_not_secret_paths(store: SecretStore) -> None:
    store.create_transit_key("shared-name", b"\x01", now=T0)
    assert store.read_meta("", "shared-name") is None
    assert store.list_paths("", "", page_size=10, page_token="").paths == []


# --- tokens -------------------------------------------------------------------------------------------------
def fake_token_hash(rng: random.Random) -> bytes:
    return hashlib.sha256(rng.randbytes(32)).digest()


def test_tokens_put_find_count_and_replace(store: SecretStore) -> None:
    rng = random.Random(26)
    assert store.count_tokens() == 0
    assert store.find_token("t-1") is None
    first = TokenRecord("t-1", "ci", fake_token_hash(rng), T0, ("read", "write"))
    store.put_token(first)
    store.put_token(TokenRecord("t-2", "ops", fake_token_hash(rng), T0 + 1))
    assert store.count_tokens() == 2
    found = store.find_token("t-1")
    assert found is not None
    assert (found.token_id, found.name, found.token_hash, found.created_at, tuple(found.policies)) == (
        first.token_id, first.name, first.token_hash, first.created_at, ("read", "write"))
    second = store.find_token("t-2")
    assert second is not None
    assert tuple(second.policies) == ()
    replacement = TokenRecord("t-1", "ci-renamed", fake_token_hash(rng), T0 + 2, ("admin",))
    store.put_token(replacement)
    assert store.count_tokens() == 2
    found = store.find_token("t-1")
    assert found is not None
    assert (found.name, found.token_hash, tuple(found.policies)) == (
        "ci-renamed", replacement.token_hash, ("admin",))


def test_put_token_rejects_empty_ids(store: SecretStore) -> None:
    with pytest.raises(InvalidArgument):
        store.put_token(TokenRecord("", "n", b"\x01" * 32, T0))
    assert store.count_tokens() == 0


# --- lifecycle ----------------------------------------------------------------------------------------------
def test_data_survives_close_and_reopen(store_factory: Callable[[], SecretStore]) -> None:
    rng = random.Random(27)
    env = rng.randbytes(64)
    first = store_factory()
    first.insert_version(NS, "p", 1, env, expected_version=0, now=T0, max_versions=3)
    first.create_transit_key("k", b"\x07", now=T0)
    first.put_token(TokenRecord("t", "n", b"\x01" * 32, T0))
    first.close()
    second = store_factory()
    try:
        assert second.read_version(NS, "p", None).envelope == env
        record = second.read_transit_key("k")
        assert record is not None
        assert record.versions[0].wrapped_material == b"\x07"
        assert second.count_tokens() == 1
    finally:
        second.close()


def test_two_handles_see_each_others_writes(store_factory: Callable[[], SecretStore]) -> None:
    a, b = store_factory(), store_factory()
    try:
        a.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=3)
        b.insert_version(NS, "p", 2, b"\x02", expected_version=1, now=T0, max_versions=3)
        assert a.read_version(NS, "p", None).envelope == b"\x02"
        with pytest.raises(VersionConflict):
            a.insert_version(NS, "p", 2, b"\x03", expected_version=1, now=T0, max_versions=3)
    finally:
        a.close()
        b.close()


def test_a_closed_store_refuses_work(store_factory: Callable[[], SecretStore]) -> None:
    store = store_factory()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.read_meta(NS, "p")
    with pytest.raises(StorageError, match="closed"):
        store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=3)
    store.close()  # twice is harmless


def test_token_names_are_unique_and_tokens_are_listed_and_deleted_by_name(store: SecretStore) -> None:
    rng = random.Random(80)
    store.put_token(TokenRecord("t-1", "ci", fake_token_hash(rng), T0, ("deploy",), expires_at=T0 + 60))
    store.put_token(TokenRecord("t-2", "admin", fake_token_hash(rng), T0))
    with pytest.raises(AlreadyExists):
        store.put_token(TokenRecord("t-3", "ci", fake_token_hash(rng), T0))
    listed = store.list_tokens()
    assert [(r.name, r.token_id, r.expires_at) for r in listed] == [("admin", "t-2", None), ("ci", "t-1", T0 + 60)]
    removed = store.delete_token("ci")
    assert removed is not None and removed.token_id == "t-1"
    assert store.find_token("t-1") is None
    assert store.delete_token("ci") is None
    store.put_token(TokenRecord("t-3", "ci", fake_token_hash(rng), T0))  # the name is free again
    assert store.count_tokens() == 2
