"""`RootKeyService`: root key rotation and the rewrap of every stored envelope, racing real writers."""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from secretsvc.crypto.envelope import parse_header
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import CorruptRecord, LimitExceeded, VersionUnavailable
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import limits
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.rootkey import RewrapProgress, RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.transit import TransitService
from secretsvc.store.base import EnvelopeRef, iter_all_envelopes
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock, value

NS = "team-a"


def _fill(secrets_svc: SecretService, transit: TransitService, *, paths: int, versions: int) -> dict[
    tuple[str, int], SecretBytes
]:
    rng = random.Random(1)
    written: dict[tuple[str, int], SecretBytes] = {}
    for i in range(paths):
        for _ in range(versions):
            v = value(rng, 16)
            result = secrets_svc.put(ADMIN, NS, f"p/{i:03d}", v)
            written[(f"p/{i:03d}", result.version)] = v
    transit.create_key(ADMIN, "orders")
    transit.rotate_key(ADMIN, "orders")
    transit.create_key(ADMIN, "billing")
    return written


def _key_versions(store: SqliteStore, key_id: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for ref in iter_all_envelopes(store):
        header = parse_header(ref.envelope)
        assert header.key_id == key_id
        counts[header.key_version] = counts.get(header.key_version, 0) + 1
    return counts


def _drain(progress: object) -> list[RewrapProgress]:
    assert hasattr(progress, "__iter__")
    return list(progress)


def test_info_and_rotate(rootkey: RootKeyService, keyring: LocalKeyring, clock: ManualClock) -> None:
    info = rootkey.info(ADMIN)
    assert info.key_id == keyring.key_id
    assert info.primary_version == 1
    assert [v.version for v in info.versions] == [1]
    clock.advance(60)
    rotated = rootkey.rotate(ADMIN)
    assert rotated.primary_version == 2
    assert [(v.version, v.created_at) for v in rotated.versions][-1] == (2, clock.now)
    # The rotation is durable: a fresh load of the keyring file agrees.
    assert LocalKeyring.load(keyring.path, None).primary_version() == 2


def test_rotation_alone_leaves_old_data_readable(
    rootkey: RootKeyService, secrets_svc: SecretService, transit: TransitService
) -> None:
    written = _fill(secrets_svc, transit, paths=3, versions=2)
    ciphertext = transit.encrypt(ADMIN, "orders", b"payload").ciphertext
    rootkey.rotate(ADMIN)
    for (path, version), v in written.items():
        assert secrets_svc.get(ADMIN, NS, path, version).value == v
    assert transit.decrypt(ADMIN, "orders", ciphertext).reveal() == b"payload"
    assert secrets_svc.put(ADMIN, NS, "after", value(random.Random(2))).version == 1


def test_rewrap_moves_every_envelope_to_the_new_version(
    rootkey: RootKeyService,
    secrets_svc: SecretService,
    transit: TransitService,
    store: SqliteStore,
    keyring: LocalKeyring,
    clock: ManualClock,
) -> None:
    written = _fill(secrets_svc, transit, paths=7, versions=3)
    secrets_svc.destroy_versions(ADMIN, NS, "p/000", [1])
    ciphertext = transit.encrypt(ADMIN, "orders", b"payload", b"ctx").ciphertext
    total = len(written) - 1 + 3  # live secret versions + transit key material (orders v1, v2; billing v1)
    assert _key_versions(store, keyring.key_id) == {1: total}

    rootkey.rotate(ADMIN)
    steps = _drain(rootkey.rewrap_stored(ADMIN, batch_size=4))

    final = steps[-1]
    assert final.done
    assert (final.scanned, final.rewrapped, final.current, final.skipped) == (total, total, 0, 0)
    assert _key_versions(store, keyring.key_id) == {2: total}
    for (path, version), v in written.items():
        if (path, version) == ("p/000", 1):
            continue
        assert secrets_svc.get(ADMIN, NS, path, version).value == v
    # A fresh service (no cached transit keys) opens old application ciphertexts through rewrapped material.
    fresh = TransitService(store, keyring, clock, AdminPolicyOnly())
    assert fresh.decrypt(ADMIN, "orders", ciphertext, b"ctx").reveal() == b"payload"
    assert fresh.encrypt(ADMIN, "billing", b"x").key_version == 1


def test_rewrap_reports_progress_per_batch_and_counts_add_up(
    rootkey: RootKeyService, secrets_svc: SecretService, transit: TransitService
) -> None:
    _fill(secrets_svc, transit, paths=10, versions=1)  # 10 secret versions + 3 transit versions
    rootkey.rotate(ADMIN)
    steps = _drain(rootkey.rewrap_stored(ADMIN, batch_size=5))
    assert [s.done for s in steps] == [False, False, True]
    assert [s.scanned for s in steps] == [5, 10, 13]
    for step in steps:
        assert step.scanned == step.rewrapped + step.current + step.skipped
    assert [s.rewrapped for s in steps] == [5, 10, 13]
    for earlier, later in itertools.pairwise(steps):
        assert later.scanned >= earlier.scanned
        assert later.rewrapped >= earlier.rewrapped


def test_a_second_rewrap_finds_everything_current(
    rootkey: RootKeyService, secrets_svc: SecretService, transit: TransitService
) -> None:
    _fill(secrets_svc, transit, paths=4, versions=2)
    rootkey.rotate(ADMIN)
    first = _drain(rootkey.rewrap_stored(ADMIN))[-1]
    second = _drain(rootkey.rewrap_stored(ADMIN))[-1]
    assert first.rewrapped == first.scanned == 11
    assert (second.scanned, second.rewrapped, second.current, second.skipped) == (11, 0, 11, 0)


def test_rewrap_without_rotation_changes_nothing(
    rootkey: RootKeyService, secrets_svc: SecretService, transit: TransitService, db_path: Path
) -> None:
    _fill(secrets_svc, transit, paths=2, versions=1)
    before = _dump(db_path)
    final = _drain(rootkey.rewrap_stored(ADMIN))[-1]
    assert (final.scanned, final.rewrapped, final.current) == (5, 0, 5)
    assert _dump(db_path) == before


def test_rewrap_of_an_empty_store_is_done_at_once(rootkey: RootKeyService) -> None:
    assert _drain(rootkey.rewrap_stored(ADMIN)) == [RewrapProgress(0, 0, 0, 0, done=True)]


@pytest.mark.parametrize("batch_size", [-1, limits.MAX_REWRAP_BATCH + 1])
def test_batch_size_limits(rootkey: RootKeyService, batch_size: int) -> None:
    with pytest.raises(LimitExceeded, match="MAX_REWRAP_BATCH"):
        next(iter(rootkey.rewrap_stored(ADMIN, batch_size=batch_size)))


@pytest.mark.parametrize("batch_size", [0, 1, limits.MAX_REWRAP_BATCH])
def test_batch_sizes_at_the_bounds_work(
    rootkey: RootKeyService, secrets_svc: SecretService, batch_size: int
) -> None:
    rng = random.Random(3)
    for i in range(3):
        secrets_svc.put(ADMIN, NS, f"k{i}", value(rng))
    rootkey.rotate(ADMIN)
    steps = _drain(rootkey.rewrap_stored(ADMIN, batch_size=batch_size))
    assert steps[-1].rewrapped == 3
    assert len(steps) == (4 if batch_size == 1 else 1)


def _dump(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        rows = list(conn.execute("SELECT namespace, path, version, envelope FROM secret_versions ORDER BY 1, 2, 3"))
        rows += list(conn.execute("SELECT name, version, wrapped_material FROM transit_key_versions ORDER BY 1, 2"))
    return rows


def test_a_damaged_envelope_stops_the_rewrap_as_corrupt(
    rootkey: RootKeyService, secrets_svc: SecretService, db_path: Path
) -> None:
    rng = random.Random(4)
    secrets_svc.put(ADMIN, NS, "good", value(rng))
    secrets_svc.put(ADMIN, NS, "zz-bad", value(rng))
    with sqlite3.connect(db_path) as conn:
        (envelope,) = conn.execute("SELECT envelope FROM secret_versions WHERE path = 'zz-bad'").fetchone()
        damaged = bytearray(envelope)
        damaged[30] ^= 0x01  # inside the wrapped data key
        conn.execute("UPDATE secret_versions SET envelope = ? WHERE path = 'zz-bad'", (bytes(damaged),))
    rootkey.rotate(ADMIN)
    with pytest.raises(CorruptRecord, match="zz-bad") as info:
        _drain(rootkey.rewrap_stored(ADMIN))
    assert info.value.__cause__ is None
    # Work done before the damaged record stays done and readable.
    assert secrets_svc.get(ADMIN, NS, "good").version == 1


# --- rewrap racing writers -------------------------------------------------------------------------------------


class _InterleavingStore(SqliteStore):
    """The real store, with one hook run just before each envelope swap: a deterministic stand-in for a
    writer that slips in between the rewrap's read and its compare-and-swap."""

    before_replace: Callable[[EnvelopeRef], None] | None = None

    def replace_envelope(self, ref: EnvelopeRef, new_envelope: bytes) -> bool:
        if self.before_replace is not None:
            self.before_replace(ref)
        return super().replace_envelope(ref, new_envelope)


def test_writes_and_destroys_between_read_and_swap_are_not_undone(
    tmp_path: Path, keyring: LocalKeyring, clock: ManualClock
) -> None:
    store = _InterleavingStore(tmp_path / "race.db")
    try:
        secrets_svc = SecretService(store, keyring, clock, AdminPolicyOnly())
        rootkey = RootKeyService(store, keyring, AdminPolicyOnly())
        rng = random.Random(5)
        originals = {f"k{i}": value(rng) for i in range(6)}
        for path, v in originals.items():
            secrets_svc.put(ADMIN, NS, path, v)
        rootkey.rotate(ADMIN)
        newer: dict[str, SecretBytes] = {}

        def interfere(ref: EnvelopeRef) -> None:
            if ref.path == "k1":
                secrets_svc.destroy_versions(ADMIN, NS, "k1", [1])
            elif ref.path == "k2":
                secrets_svc.delete_secret(ADMIN, NS, "k2")
            elif ref.path == "k3":
                newer["k3"] = value(rng)
                secrets_svc.put(ADMIN, NS, "k3", newer["k3"])  # a new version beside the one being swapped

        store.before_replace = interfere
        final = _drain(rootkey.rewrap_stored(ADMIN, batch_size=2))[-1]
        store.before_replace = None

        # k3's new version is met later in the scan, already under the new primary.
        assert final.scanned == 7
        assert final.skipped == 2  # k1's destroyed envelope and k2's deleted row
        assert final.rewrapped == 4
        assert final.current == 1
        assert final.scanned == final.rewrapped + final.current + final.skipped
        with pytest.raises(VersionUnavailable, match="destroyed"):
            secrets_svc.get(ADMIN, NS, "k1", 1)
        assert secrets_svc.list_paths(ADMIN, NS).paths == ["k0", "k1", "k3", "k4", "k5"]
        assert secrets_svc.get(ADMIN, NS, "k3", 1).value == originals["k3"]
        assert secrets_svc.get(ADMIN, NS, "k3", 2).value == newer["k3"]
        for path in ("k0", "k4", "k5"):
            assert secrets_svc.get(ADMIN, NS, path).value == originals[path]
        assert _key_versions(store, keyring.key_id) == {2: 5}
    finally:
        store.close()


def test_concurrent_puts_during_rewrap_are_not_lost(
    store: SqliteStore, secrets_svc: SecretService, rootkey: RootKeyService, keyring: LocalKeyring
) -> None:
    rng = random.Random(6)
    expected: dict[tuple[str, int], SecretBytes] = {}
    for i in range(40):
        v = value(rng, 8)
        expected[(f"p/{i:02d}", secrets_svc.put(ADMIN, NS, f"p/{i:02d}", v, max_versions=1000).version)] = v
    rootkey.rotate(ADMIN)
    stop = threading.Event()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        wrng = random.Random(seed)
        while not stop.is_set():
            path = f"p/{wrng.randrange(40):02d}"
            v = value(wrng, 8)
            try:
                version = secrets_svc.put(ADMIN, NS, path, v, max_versions=1000).version
            except BaseException as exc:
                failures.append(exc)
                return
            with lock:
                expected[(path, version)] = v

    threads = [threading.Thread(target=writer, args=(100 + i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        steps = _drain(rootkey.rewrap_stored(ADMIN, batch_size=3))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    final = steps[-1]
    assert final.done
    assert final.scanned == final.rewrapped + final.current + final.skipped
    assert len(expected) > 40
    for (path, version), v in expected.items():
        assert secrets_svc.get(ADMIN, NS, path, version).value == v
    # Writers sealed under the new primary, so nothing is left behind at the old version.
    assert set(_key_versions(store, keyring.key_id)) == {2}
