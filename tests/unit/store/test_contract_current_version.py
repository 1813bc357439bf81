"""`current_version`: the narrow read a writer makes before sealing the next version, for any `SecretStore`."""

from __future__ import annotations

from secretsvc.store.base import SecretHead, SecretStore

NS = "ns"


def test_missing_secret_has_no_head(store: SecretStore) -> None:
    assert store.current_version(NS, "p") is None


def test_head_follows_writes_and_the_remembered_max_versions(store: SecretStore) -> None:
    store.insert_version(NS, "p", 1, b"e1", expected_version=0, now=1.0, max_versions=4)
    assert store.current_version(NS, "p") == SecretHead(current_version=1, max_versions=0)
    store.insert_version(NS, "p", 2, b"e2", expected_version=1, now=2.0, max_versions=4,
                         remember_max_versions=True)
    assert store.current_version(NS, "p") == SecretHead(current_version=2, max_versions=4)
    assert store.current_version("other", "p") is None
    assert store.current_version(NS, "p2") is None


def test_head_keeps_the_highest_version_after_deletes(store: SecretStore) -> None:
    for v in (1, 2, 3):
        store.insert_version(NS, "p", v, b"e%d" % v, expected_version=v - 1, now=float(v), max_versions=10)
    store.destroy_versions(NS, "p", [3], now=4.0)
    store.set_versions_deleted(NS, "p", [2], deleted=True, now=5.0)
    head = store.current_version(NS, "p")
    assert head is not None and head.current_version == 3
    store.delete_secret(NS, "p")
    assert store.current_version(NS, "p") is None
