"""Check-and-set under contention, for any `SecretStore`: several processes (spawned, each with its own
handle) and several threads (sharing one handle) race to increment one secret. Exactly one writer may win
each version, and no acknowledged write may be lost."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from secretsvc.errors import NotFound, VersionConflict
from secretsvc.store.base import SecretStore, VersionState
from tests.unit.store import workers

PROCESSES = 4
THREADS = 8
ATTEMPTS = 40


def check_outcome(store: SecretStore, won_by: dict[int, list[int]], total_attempts: int) -> None:
    all_won = [v for versions in won_by.values() for v in versions]
    assert len(all_won) == len(set(all_won)), "two writers won the same version"
    meta = store.read_meta(workers.NS, workers.PATH)
    assert meta is not None
    assert meta.current_version == len(all_won) <= total_attempts
    assert sorted(all_won) == list(range(1, len(all_won) + 1))
    assert [v.version for v in meta.versions] == sorted(all_won)
    for worker, versions in won_by.items():
        for v in versions:
            assert store.read_version(workers.NS, workers.PATH, v).envelope == workers.envelope_for(worker, v)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_processes_racing_on_check_and_set(store_factory: Callable[[], SecretStore]) -> None:
    store = store_factory()  # creates the schema before the workers start
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=workers.process_main, args=(store_factory, n, ATTEMPTS, barrier, results))
        for n in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        collected = [results.get(timeout=90) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    won_by = {worker: won for worker, won, _ in collected}
    assert sorted(won_by) == list(range(PROCESSES))
    try:
        check_outcome(store, won_by, PROCESSES * ATTEMPTS)
        # Every process made progress and every failed attempt was a reported conflict, not a lost write.
        for _, won, conflicts in collected:
            assert len(won) + conflicts == ATTEMPTS
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_threads_racing_on_check_and_set(store: SecretStore) -> None:
    start = threading.Barrier(THREADS)
    results: queue.Queue[tuple[int, list[int], int]] = queue.Queue()
    errors: queue.Queue[BaseException] = queue.Queue()

    def run(worker: int) -> None:
        try:
            start.wait(timeout=30)
            results.put((worker, *workers.cas_increments(store, worker, ATTEMPTS)))
        except BaseException as exc:
            errors.put(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert errors.empty(), errors.get()
    collected = [results.get_nowait() for _ in threads]
    won_by = {worker: won for worker, won, _ in collected}
    check_outcome(store, won_by, THREADS * ATTEMPTS)
    assert (
        sum(conflicts for _, _, conflicts in collected) + len([v for w in won_by.values() for v in w])
        == THREADS * ATTEMPTS
    )


@pytest.mark.timeout(120)
def test_threads_creating_one_new_secret_have_one_winner(store: SecretStore) -> None:
    # Every thread puts version 1 of the same absent secret at once: one creates it, the others must see
    # its row (waiting for it on PostgreSQL) and get VersionConflict, never a key error or a second version 1.
    start = threading.Barrier(THREADS)

    def create(worker: int) -> bool:
        start.wait(timeout=30)
        try:
            store.insert_version(
                workers.NS,
                "created-once",
                1,
                workers.envelope_for(worker, 1),
                expected_version=0,
                now=1.0,
                max_versions=workers.MAX_VERSIONS,
            )
        except VersionConflict:
            return False
        return True

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(create, range(THREADS), timeout=90))
    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    stored = store.read_version(workers.NS, "created-once", None)
    assert (stored.version, stored.envelope) == (1, workers.envelope_for(winner, 1))


MIXED_ROUNDS = 25


@pytest.mark.timeout(120)
def test_every_kind_of_secret_write_at_once_leaves_the_secret_consistent(store: SecretStore) -> None:
    # Puts (which on PostgreSQL lock the secret's row), soft deletes, destroys, metadata updates that prune,
    # rewraps and removal of the whole secret, all on one secret at once: every call either takes effect or
    # reports a conflict or a missing secret, never a storage error, and the secret left behind is whole.
    path = "mixed"
    start = threading.Barrier(9)
    errors: queue.Queue[BaseException] = queue.Queue()

    def put(worker: int) -> None:
        for _ in range(MIXED_ROUNDS):
            head = store.current_version(workers.NS, path)
            current = 0 if head is None else head.current_version
            with contextlib.suppress(VersionConflict):
                store.insert_version(
                    workers.NS,
                    path,
                    current + 1,
                    workers.envelope_for(worker, current + 1),
                    expected_version=current,
                    now=1.0,
                    max_versions=3,
                )

    def soft_delete(_: int) -> None:
        for n in range(MIXED_ROUNDS):
            meta = store.read_meta(workers.NS, path)
            if meta is not None and meta.versions:
                with contextlib.suppress(NotFound):
                    store.set_versions_deleted(
                        workers.NS, path, [meta.versions[0].version], deleted=n % 2 == 0, now=2.0
                    )

    def destroy(_: int) -> None:
        for _ in range(MIXED_ROUNDS):
            meta = store.read_meta(workers.NS, path)
            if meta is not None and meta.versions:
                with contextlib.suppress(NotFound):
                    store.destroy_versions(workers.NS, path, [meta.versions[0].version], now=3.0)

    def update(_: int) -> None:
        for n in range(MIXED_ROUNDS):
            with contextlib.suppress(NotFound):
                store.update_meta(workers.NS, path, now=4.0, max_versions=2 + n % 3, custom_metadata={"n": str(n)})

    def rewrap(_: int) -> None:
        for _ in range(MIXED_ROUNDS):
            for ref in store.scan_envelopes(after=None, limit=50):
                store.replace_envelope(ref, bytes(ref.envelope) + b"r")

    def remove(_: int) -> None:
        for _ in range(MIXED_ROUNDS // 5):
            time.sleep(0.01)
            store.delete_secret(workers.NS, path)

    def run(job: Callable[[int], None], worker: int) -> None:
        try:
            start.wait(timeout=30)
            job(worker)
        except BaseException as exc:
            errors.put(exc)

    jobs = [put, put, put, put, soft_delete, destroy, update, rewrap, remove]
    threads = [threading.Thread(target=run, args=(job, n)) for n, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert errors.empty(), repr(errors.get())
    store.insert_version(workers.NS, "after", 1, b"\x01" * 16, expected_version=0, now=5.0, max_versions=3)
    meta = store.read_meta(workers.NS, path)
    if meta is None:
        return  # the last write was the removal
    numbers = [v.version for v in meta.versions]
    assert numbers == sorted(numbers) and numbers and numbers[-1] == meta.current_version
    for version in meta.versions:
        stored = store.read_version(workers.NS, path, version.version)
        assert stored.state == version.state
        assert (stored.envelope is None) == (version.state is VersionState.DESTROYED)
