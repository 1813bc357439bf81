"""Check-and-set under contention, for any `SecretStore`: several processes (spawned, each with its own
handle) and several threads (sharing one handle) race to increment one secret. Exactly one writer may win
each version, and no acknowledged write may be lost."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from secretsvc.errors import VersionConflict
from secretsvc.store.base import SecretStore
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
