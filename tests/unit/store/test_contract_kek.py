"""Contract tests for the record of key-encryption-key versions that wrap stored data, in any `SecretStore`."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from secretsvc.errors import InvalidArgument
from secretsvc.store.base import SecretStore

T0 = 1_700_000_000.0


def test_versions_are_recorded_once_and_listed_in_order(store: SecretStore) -> None:
    assert store.kek_versions() == []
    for key_id, version in (("local:b", 1), ("local:a", 2), ("local:a", 1), ("local:a", 2)):
        store.record_kek_version(key_id, version, now=T0)
    assert store.kek_versions() == [("local:a", 1), ("local:a", 2), ("local:b", 1)]


def test_the_record_survives_reopening(store_factory: Callable[[], SecretStore]) -> None:
    first = store_factory()
    first.record_kek_version("local:a", 3, now=T0)
    first.close()
    again = store_factory()
    try:
        assert again.kek_versions() == [("local:a", 3)]
    finally:
        again.close()


@pytest.mark.parametrize(("key_id", "version"), [("", 1), ("local:a", 0), ("local:a", 2**63), ("local:a", True)])
def test_bad_records_are_refused(store: SecretStore, key_id: str, version: int) -> None:
    with pytest.raises(InvalidArgument):
        store.record_kek_version(key_id, version, now=T0)
    assert store.kek_versions() == []


def test_holds_envelopes_counts_live_secrets_and_transit_keys(store: SecretStore) -> None:
    rng = random.Random(70)
    assert store.holds_envelopes() is False
    store.insert_version("ns", "p", 1, rng.randbytes(80), expected_version=0, now=T0, max_versions=5)
    assert store.holds_envelopes() is True
    store.destroy_versions("ns", "p", [1], now=T0)
    assert store.holds_envelopes() is False  # a destroyed version holds nothing to decrypt
    store.create_transit_key("orders", rng.randbytes(80), now=T0)
    assert store.holds_envelopes() is True
