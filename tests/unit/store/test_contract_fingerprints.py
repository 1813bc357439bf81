"""Contract tests for value fingerprints in `SecretStore`: stored with a version, gone with it, found by
digest, backfilled only beside a kept envelope, and the fingerprint key moved by the rewrap scan."""

from __future__ import annotations

import random

import pytest

from secretsvc.errors import InvalidArgument, LimitExceeded, StorageError
from secretsvc.store.base import Fingerprint, SecretStore, VersionState, iter_all_envelopes

NS = "team-a"
T0 = 1_700_000_000.0


def put(
    store: SecretStore, path: str, version: int, digest: bytes | None, rng: random.Random, max_versions: int = 10
) -> None:
    store.insert_version(
        NS,
        path,
        version,
        rng.randbytes(48),
        expected_version=version - 1,
        now=T0,
        max_versions=max_versions,
        fingerprint=None if digest is None else Fingerprint(1, digest),
    )


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


@pytest.fixture
def keyed(store: SecretStore, rng: random.Random) -> SecretStore:
    store.add_fingerprint_key(1, rng.randbytes(80), now=T0)
    return store


def test_a_fingerprint_is_found_with_its_version_state(keyed: SecretStore, rng: random.Random) -> None:
    d1, d2 = rng.randbytes(32), rng.randbytes(32)
    put(keyed, "p", 1, d1, rng)
    put(keyed, "p", 2, d2, rng)
    keyed.set_versions_deleted(NS, "p", [1], deleted=True, now=T0)
    hits = {h.digest: h for h in keyed.find_fingerprints([d1, d2, rng.randbytes(32)])}
    assert (hits[d1].version, hits[d1].state, hits[d1].current_version) == (1, VersionState.DELETED, 2)
    assert (hits[d2].version, hits[d2].state) == (2, VersionState.ACTIVE)
    assert len(hits) == 2


def test_destroy_prune_and_removal_take_the_fingerprint(keyed: SecretStore, rng: random.Random) -> None:
    digests = [rng.randbytes(32) for _ in range(3)]
    for v, d in enumerate(digests, start=1):
        put(keyed, "p", v, d, rng, max_versions=2)  # v1 pruned by the v3 put
    assert [h.version for h in keyed.find_fingerprints(digests)] == [2, 3]
    keyed.destroy_versions(NS, "p", [2], now=T0)
    assert [h.version for h in keyed.find_fingerprints(digests)] == [3]
    keyed.delete_secret(NS, "p")
    assert keyed.find_fingerprints(digests) == []


def test_a_fingerprint_needs_a_stored_key_version(store: SecretStore, rng: random.Random) -> None:
    with pytest.raises(StorageError):
        put(store, "p", 1, rng.randbytes(32), rng)
    assert store.read_meta(NS, "p") is None  # the whole insert was refused


def test_malformed_fingerprints_are_refused(keyed: SecretStore, rng: random.Random) -> None:
    with pytest.raises(InvalidArgument):
        put(keyed, "p", 1, rng.randbytes(31), rng)
    with pytest.raises(InvalidArgument):
        keyed.insert_version(
            NS,
            "p",
            1,
            rng.randbytes(48),
            expected_version=0,
            now=T0,
            max_versions=1,
            fingerprint=Fingerprint(0, rng.randbytes(32)),
        )
    with pytest.raises(LimitExceeded):
        keyed.find_fingerprints([rng.randbytes(32)] * 10_001)


def test_adding_a_key_version_twice_keeps_the_first(store: SecretStore, rng: random.Random) -> None:
    first, second = rng.randbytes(80), rng.randbytes(80)
    assert store.add_fingerprint_key(1, first, now=T0).sealed_key == first
    assert store.add_fingerprint_key(1, second, now=T0).sealed_key == first
    assert [k.version for k in store.fingerprint_keys()] == [1]


def test_backfill_lists_versions_without_a_fingerprint_and_resumes(keyed: SecretStore, rng: random.Random) -> None:
    put(keyed, "a", 1, None, rng)
    put(keyed, "b", 1, rng.randbytes(32), rng)
    put(keyed, "c", 1, None, rng)
    put(keyed, "c", 2, None, rng)
    keyed.destroy_versions(NS, "c", [1], now=T0)
    refs = keyed.versions_without_fingerprint(after=None, limit=10)
    assert [(r.path, r.version) for r in refs] == [("a", 1), ("c", 2)]
    assert [r.path for r in keyed.versions_without_fingerprint(after=(NS, "a", 1), limit=10)] == ["c"]
    digest = rng.randbytes(32)
    assert keyed.add_fingerprint(NS, "a", 1, Fingerprint(1, digest)) is True
    assert keyed.add_fingerprint(NS, "a", 1, Fingerprint(1, rng.randbytes(32))) is False  # has one already
    assert keyed.add_fingerprint(NS, "c", 1, Fingerprint(1, digest)) is False  # destroyed
    assert [(r.path, r.version) for r in keyed.versions_without_fingerprint(after=None, limit=10)] == [("c", 2)]


def test_the_fingerprint_key_is_in_the_rewrap_scan(keyed: SecretStore, rng: random.Random) -> None:
    put(keyed, "p", 1, None, rng)
    kinds = [r.kind for r in iter_all_envelopes(keyed, batch=1)]
    assert kinds == ["secret", "fingerprint_key"]
    ref = keyed.scan_envelopes(after=("secret", NS, "p", 1), limit=5)[0]
    assert keyed.replace_envelope(ref, rng.randbytes(80)) is True
    assert keyed.replace_envelope(ref, rng.randbytes(80)) is False  # compare-and-swap on the old bytes
    assert keyed.scan_envelopes(after=("fingerprint_key", "", "", 1), limit=5) == []
    assert keyed.holds_envelopes()
