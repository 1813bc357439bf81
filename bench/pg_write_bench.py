"""Puts of different new secrets on PostgreSQL beside SQLite, through the store API, in one run.

    .venv/bin/python bench/pg_write_bench.py                       # c1 and c16, 5 s each, 2 rounds
    .venv/bin/python bench/pg_write_bench.py --concurrency 16 --duration 10 --rounds 3

Starts a throwaway PostgreSQL (tests/pgkit.py: fsync on, synchronous commit, loopback) and opens a
`PostgresStore` on a database of its own and a `SqliteStore` on a file in a temporary directory. Each case runs
N threads for the duration, each putting version 1 of secrets no other thread writes (a new secret per put,
200-byte envelopes, `expected_version=0`, as the service's first put of a path does), backends alternating
within each round so load on the shared machine falls on both. Reported per case: puts/s, the writes
PostgreSQL made the store run again (serialization failures and deadlocks) and the PostgreSQL/SQLite ratio.
Every put must succeed; the run fails otherwise, and it checks afterwards that every acknowledged put is there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from secretsvc.store.base import SecretStore
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.sqlite import SqliteStore
from tests.pgkit import PostgresNotInstalled, running_postgres

ENVELOPE_BYTES = 200
MAX_VERSIONS = 10
MAX_CONCURRENCY = 64
MAX_LEVELS = 8
MAX_DURATION_S = 120.0
NAMESPACE = "bench"
BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    concurrency: int
    puts: int
    seconds: float
    reruns: int

    @property
    def rate(self) -> float:
        return self.puts / self.seconds


def run_case(store: SecretStore, tag: str, concurrency: int, duration_s: float) -> tuple[int, float, list[str]]:
    """Puts from `concurrency` threads for `duration_s`; returns (puts, elapsed seconds, paths written)."""
    envelope = os.urandom(ENVELOPE_BYTES)
    written: list[list[str]] = [[] for _ in range(concurrency)]
    failures: list[BaseException] = []
    start = threading.Barrier(concurrency + 1)
    stop = threading.Event()

    def worker(index: int) -> None:
        start.wait()
        n = 0
        try:
            while not stop.is_set():
                path = f"{tag}/t{index}/s{n}"
                store.insert_version(
                    NAMESPACE, path, 1, envelope, expected_version=0, now=time.time(), max_versions=MAX_VERSIONS
                )
                written[index].append(path)
                n += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(duration_s)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} writers failed; the first: {failures[0]!r}")
    paths = [p for per_thread in written for p in per_thread]
    return len(paths), elapsed, paths


def check_written(store: SecretStore, paths: list[str]) -> None:
    """Every acknowledged put must be readable, at version 1."""
    for path in paths:
        head = store.current_version(NAMESPACE, path)
        if head is None or head.current_version != 1:
            raise RuntimeError(f"acknowledged put of {NAMESPACE}/{path} is missing or wrong: {head}")


def reruns_of(store: SecretStore) -> int:
    return store.write_reruns if isinstance(store, PostgresStore) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--concurrency", default="1,16", help="comma-separated thread counts (default 1,16)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per case (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every case (default 2)")
    args = parser.parse_args(argv)
    try:
        levels = [int(c) for c in args.concurrency.split(",", MAX_LEVELS)]
    except ValueError:
        parser.error("--concurrency takes comma-separated numbers")
    if len(levels) > MAX_LEVELS or not all(1 <= c <= MAX_CONCURRENCY for c in levels):
        parser.error(f"at most {MAX_LEVELS} concurrency levels, each 1..{MAX_CONCURRENCY}")
    if not 0 < args.duration <= MAX_DURATION_S or not 1 <= args.rounds <= 10:
        parser.error(f"duration must be in (0, {MAX_DURATION_S}] and rounds 1..10")

    try:
        results = run(levels, args.duration, args.rounds)
    except PostgresNotInstalled as exc:
        print(f"pg_write_bench: {exc}", file=sys.stderr)
        return 2
    summarize(results, levels)
    return 0


def run(levels: list[int], duration_s: float, rounds: int) -> list[Result]:
    results: list[Result] = []
    with running_postgres() as pg, tempfile.TemporaryDirectory(prefix="secretsvc-pgbench-") as tmp:
        database = pg.new_database("bench")
        stores: dict[str, Callable[[], SecretStore]] = {
            "sqlite": lambda: SqliteStore(Path(tmp) / "secretsvc.db"),
            "postgresql": lambda: PostgresStore(pg.url(database), password=pg.password, pool_size=MAX_CONCURRENCY),
        }
        opened = {name: factory() for name, factory in stores.items()}
        try:
            for round_no in range(rounds):
                for concurrency in levels:
                    for name, store in opened.items():
                        before = reruns_of(store)
                        tag = f"r{round_no}c{concurrency}"
                        puts, seconds, paths = run_case(store, tag, concurrency, duration_s)
                        check_written(store, paths)
                        result = Result(name, concurrency, puts, seconds, reruns_of(store) - before)
                        results.append(result)
                        print(
                            f"round {round_no + 1} c{concurrency:<3} {name:<10} {result.rate:8.0f} puts/s"
                            f"  ({puts} puts, {result.reruns} reruns)",
                            flush=True,
                        )
        finally:
            for store in opened.values():
                store.close()
    return results


def summarize(results: list[Result], levels: list[int]) -> None:
    print("\nmedian over rounds:")
    for concurrency in levels:
        rates = {
            name: statistics.median(r.rate for r in results if r.backend == name and r.concurrency == concurrency)
            for name in BACKENDS
        }
        reruns = sum(r.reruns for r in results if r.backend == "postgresql" and r.concurrency == concurrency)
        puts = sum(r.puts for r in results if r.backend == "postgresql" and r.concurrency == concurrency)
        print(
            f"c{concurrency:<3} sqlite {rates['sqlite']:7.0f}/s  postgresql {rates['postgresql']:7.0f}/s"
            f"  ratio {rates['postgresql'] / rates['sqlite']:.2f}  (postgresql reran {reruns} of {puts} puts)"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
