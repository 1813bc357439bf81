"""Known-secret matching: fingerprints kept on put, removed on destroy, backfilled for older versions, and
`MatchService` answering only for secrets the caller holds `match` on; over a real store and keyring."""

from __future__ import annotations

import logging
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import limits
from secretsvc.service.access import AdminPolicyOnly, Capability, Resource
from secretsvc.service.fingerprints import FingerprintBackfill, FingerprintKeys
from secretsvc.service.matching import MatchService, ValueMatch
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.store.base import VersionState
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock

NS = "payments"
SCANNER = Principal(principal_id=PrincipalId("token:scanner"), name="scanner", kind="token", policies=("scan",))


@dataclass
class Grants:
    """Allows the admin everything, and the scanner exactly the (resource, capability) pairs granted."""

    allowed: set[tuple[Resource, Capability]] = field(default_factory=set)

    def allows(self, caller: Principal, resource: Resource, capability: Capability) -> bool:
        return caller is ADMIN or (resource, capability) in self.allowed


def word(rng: random.Random, n: int) -> bytes:
    return "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n)).encode()


@pytest.fixture
def keys(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock) -> FingerprintKeys:
    return FingerprintKeys(store, keyring, clock)


@pytest.fixture
def grants() -> Grants:
    return Grants()


@pytest.fixture
def svc(
    store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, grants: Grants, keys: FingerprintKeys
) -> SecretService:
    return SecretService(store, keyring, clock, grants, fingerprints=keys)


@pytest.fixture
def matcher(store: SqliteStore, keys: FingerprintKeys, grants: Grants) -> MatchService:
    return MatchService(store, keys, grants)


def test_a_put_value_matches_and_decoys_do_not(svc: SecretService, matcher: MatchService) -> None:
    rng = random.Random(11)
    short, long = word(rng, 8), word(rng, 64)
    svc.put(ADMIN, NS, "db/password", SecretBytes(short))
    svc.put(ADMIN, NS, "api/token", SecretBytes(long))
    decoy = word(rng, 8)
    result = matcher.match(ADMIN, [decoy, long, short, short + b"x"])
    assert list(result.matches) == [
        ValueMatch(1, NS, "api/token", 1, True, VersionState.ACTIVE),
        ValueMatch(2, NS, "db/password", 1, True, VersionState.ACTIVE),
    ]
    assert result.complete
    assert list(result.secrets) == [f"{NS}/api/token", f"{NS}/db/password"]


def test_older_deleted_and_destroyed_versions(svc: SecretService, matcher: MatchService) -> None:
    rng = random.Random(12)
    v1, v2, v3, v4 = (word(rng, 12) for _ in range(4))
    for v in (v1, v2, v3, v4):
        svc.put(ADMIN, NS, "db/password", SecretBytes(v))
    svc.delete_versions(ADMIN, NS, "db/password", [2])
    svc.destroy_versions(ADMIN, NS, "db/password", [3])
    found = {m.candidate: m for m in matcher.match(ADMIN, [v1, v2, v3, v4]).matches}
    assert (found[0].version, found[0].current, found[0].state) == (1, False, VersionState.ACTIVE)
    assert (found[1].version, found[1].current, found[1].state) == (2, False, VersionState.DELETED)
    assert 2 not in found  # destroyed: its fingerprint went with its envelope
    assert (found[3].version, found[3].current) == (4, True)


def test_pruned_versions_and_removed_secrets_stop_matching(svc: SecretService, matcher: MatchService) -> None:
    rng = random.Random(13)
    old, new = word(rng, 10), word(rng, 10)
    svc.put(ADMIN, NS, "pruned", SecretBytes(old), max_versions=1)
    svc.put(ADMIN, NS, "pruned", SecretBytes(new))
    assert [m.candidate for m in matcher.match(ADMIN, [old, new]).matches] == [1]
    svc.delete_secret(ADMIN, NS, "pruned")
    assert list(matcher.match(ADMIN, [old, new]).matches) == []


def test_one_value_in_two_secrets_names_both(svc: SecretService, matcher: MatchService) -> None:
    shared = word(random.Random(14), 16)
    svc.put(ADMIN, NS, "a", SecretBytes(shared))
    svc.put(ADMIN, "other", "b", SecretBytes(shared))
    names = [(m.namespace, m.path) for m in matcher.match(ADMIN, [shared]).matches]
    assert names == [("other", "b"), (NS, "a")]


def test_only_secrets_the_caller_may_match_are_reported(
    svc: SecretService, matcher: MatchService, grants: Grants
) -> None:
    rng = random.Random(15)
    mine, theirs = word(rng, 9), word(rng, 9)
    svc.put(ADMIN, NS, "mine", SecretBytes(mine))
    svc.put(ADMIN, NS, "theirs", SecretBytes(theirs))
    grants.allowed.add((Resource.secret(NS, "mine"), Capability.MATCH))
    grants.allowed.add((Resource.secret(NS, "theirs"), Capability.READ))  # read is not match
    result = matcher.match(SCANNER, [theirs, mine])
    assert [(m.candidate, m.path) for m in result.matches] == [(1, "mine")]
    assert list(result.secrets) == [f"{NS}/mine"]


def test_match_is_a_capability_of_secrets_only_and_admin_holds_it() -> None:
    from secretsvc.policy.model import APPLICABLE, ResourceKind

    assert Capability.MATCH in APPLICABLE[ResourceKind.SECRET]
    assert Capability.MATCH not in APPLICABLE[ResourceKind.TRANSIT_KEY]
    assert AdminPolicyOnly().allows(ADMIN, Resource.secret(NS, "x"), Capability.MATCH)


def test_bounds_are_named(matcher: MatchService) -> None:
    with pytest.raises(LimitExceeded, match="MAX_MATCH_CANDIDATES"):
        matcher.match(ADMIN, [b"abcdef"] * (limits.MAX_MATCH_CANDIDATES + 1))
    with pytest.raises(LimitExceeded, match="MAX_MATCH_CANDIDATE_BYTES"):
        matcher.match(ADMIN, [b"a" * (limits.MAX_MATCH_CANDIDATE_BYTES + 1)])
    with pytest.raises(LimitExceeded, match="MAX_MATCH_CANDIDATE_BYTES"):
        matcher.match(ADMIN, [b"abcdef", b""])
    per = limits.MAX_MATCH_CANDIDATE_BYTES
    with pytest.raises(LimitExceeded, match="MAX_MATCH_TOTAL_BYTES"):
        matcher.match(ADMIN, [b"b" * per] * (limits.MAX_MATCH_TOTAL_BYTES // per + 1))
    with pytest.raises(InvalidArgument):
        matcher.match(ADMIN, ["text"])  # type: ignore[list-item]


def test_no_key_is_made_by_matching(store: SqliteStore, matcher: MatchService) -> None:
    assert list(matcher.match(ADMIN, [b"abcdefgh"]).matches) == []
    assert store.fingerprint_keys() == []


def test_the_key_is_stored_sealed_and_shared_by_a_second_process(
    svc: SecretService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock
) -> None:
    value = word(random.Random(16), 20)
    svc.put(ADMIN, NS, "k", SecretBytes(value))
    [record] = store.fingerprint_keys()
    assert value not in record.sealed_key and len(record.sealed_key) > 32
    other = MatchService(store, FingerprintKeys(store, keyring, clock), AdminPolicyOnly())
    assert [m.path for m in other.match(ADMIN, [value]).matches] == ["k"]


def test_fingerprints_are_keyed_not_plain_hashes(svc: SecretService, store: SqliteStore, keys: FingerprintKeys) -> None:
    import hashlib

    value = word(random.Random(17), 20)
    svc.put(ADMIN, NS, "k", SecretBytes(value))
    assert store.find_fingerprints([hashlib.sha256(value).digest()]) == []
    assert len(store.find_fingerprints([keys.fingerprint(SecretBytes(value)).digest])) == 1


def test_backfill_fingerprints_versions_written_without(
    store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, keys: FingerprintKeys, grants: Grants
) -> None:
    rng = random.Random(18)
    legacy = SecretService(store, keyring, clock, grants)  # stores no fingerprints, like a pre-upgrade server
    values = [word(rng, 10) for _ in range(7)]
    for i, v in enumerate(values):
        legacy.put(ADMIN, NS, f"s{i % 3}", SecretBytes(v))
    legacy.destroy_versions(ADMIN, NS, "s0", [1])
    legacy.delete_versions(ADMIN, NS, "s1", [1])
    backfill = FingerprintBackfill(store, keyring, keys)
    matcher = MatchService(store, keys, grants, backfill.done.is_set)
    assert matcher.match(ADMIN, values).complete is False
    # Two versions per batch, stopped after the first batch: the next pass carries on.
    stop = _StopAfter(1)
    first = backfill.run(batch=2, stop=stop)  # type: ignore[arg-type]
    assert (first.added, backfill.done.is_set()) == (2, False)
    second = backfill.run(batch=2)
    assert (second.added, second.skipped) == (4, 0)
    assert backfill.done.is_set()
    result = matcher.match(ADMIN, values)
    assert result.complete
    assert sorted(m.candidate for m in result.matches) == [1, 2, 3, 4, 5, 6]  # 0: s0 v1 was destroyed
    assert backfill.run().scanned == 0  # nothing left


def test_backfill_skips_a_version_destroyed_meanwhile(
    store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, keys: FingerprintKeys
) -> None:
    legacy = SecretService(store, keyring, clock, AdminPolicyOnly())
    legacy.put(ADMIN, NS, "gone", SecretBytes(b"value-one"))
    [ref] = store.versions_without_fingerprint(after=None, limit=10)
    legacy.destroy_versions(ADMIN, NS, "gone", [1])
    assert store.add_fingerprint(NS, "gone", 1, keys.fingerprint(SecretBytes(b"value-one"))) is False
    assert store.versions_without_fingerprint(after=None, limit=10) == []
    assert ref.version == 1


def test_root_key_rewrap_moves_the_fingerprint_key_and_matching_still_works(
    svc: SecretService, store: SqliteStore, keyring: LocalKeyring, clock: ManualClock
) -> None:
    value = word(random.Random(19), 20)
    svc.put(ADMIN, NS, "k", SecretBytes(value))
    rootkey = RootKeyService(store, keyring, AdminPolicyOnly())
    rootkey.rotate(ADMIN)
    before = store.fingerprint_keys()[0].sealed_key
    progress = list(rootkey.rewrap_stored(ADMIN))
    assert progress[-1].rewrapped == 2  # the secret version and the fingerprint key
    assert store.fingerprint_keys()[0].sealed_key != before
    fresh = MatchService(store, FingerprintKeys(store, keyring, clock), AdminPolicyOnly())
    assert [m.path for m in fresh.match(ADMIN, [value]).matches] == ["k"]


def test_no_log_line_holds_a_candidate(
    svc: SecretService, matcher: MatchService, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(20)
    stored, decoy = word(rng, 14), word(rng, 14)
    svc.put(ADMIN, NS, "k", SecretBytes(stored))
    with caplog.at_level(logging.DEBUG):
        matcher.match(ADMIN, [stored, decoy])
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "values matched" in text
    assert stored.decode() not in text and decoy.decode() not in text


class _StopAfter:
    """An Event-like stop flag that turns on after `n` checks."""

    def __init__(self, n: int) -> None:
        self._left = n

    def is_set(self) -> bool:
        self._left -= 1
        return self._left < 0


def test_a_schema_4_database_is_migrated_and_its_versions_backfilled(
    db_path: Path, keyring: LocalKeyring, clock: ManualClock
) -> None:
    rng = random.Random(21)
    values = [word(rng, 12) for _ in range(3)]
    with SqliteStore(db_path) as first:
        legacy = SecretService(first, keyring, clock, AdminPolicyOnly())
        for i, v in enumerate(values):
            legacy.put(ADMIN, NS, f"old{i}", SecretBytes(v))
    # Take the file back to what the release before fingerprints wrote.
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE secret_fingerprints")
        conn.execute("DROP TABLE fingerprint_keys")
        conn.execute("UPDATE schema_version SET version = 4")
    with SqliteStore(db_path) as upgraded:
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT version FROM schema_version").fetchone() == (5,)
        keys = FingerprintKeys(upgraded, keyring, clock)
        backfill = FingerprintBackfill(upgraded, keyring, keys)
        assert backfill.run().added == 3
        found = MatchService(upgraded, keys, AdminPolicyOnly(), backfill.done.is_set).match(ADMIN, values)
        assert [m.path for m in found.matches] == ["old0", "old1", "old2"] and found.complete


def test_the_wire_answer_has_no_field_that_could_carry_a_value() -> None:
    from google.protobuf.descriptor import FieldDescriptor

    from secretsvc.v1 import matching_pb2

    for message in (matching_pb2.MatchValuesResponse.DESCRIPTOR, matching_pb2.ValueMatch.DESCRIPTOR):
        assert all(f.type != FieldDescriptor.TYPE_BYTES for f in message.fields)


def test_a_refused_put_makes_no_fingerprint_key(svc: SecretService, store: SqliteStore) -> None:
    from secretsvc.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        svc.put(SCANNER, NS, "x", SecretBytes(b"value-123"))
    assert store.fingerprint_keys() == []
