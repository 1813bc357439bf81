"""Check-and-set increment loops run by the concurrency tests, in threads or in spawned processes."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from secretsvc.errors import VersionConflict
from secretsvc.store.base import SecretStore

NS = "contention"
PATH = "counter"
MAX_VERSIONS = 10_000


def envelope_for(worker: int, version: int) -> bytes:
    """Who wrote which version, so the test can check that each stored version is its winner's."""
    return struct.pack(">II", worker, version)


def cas_increments(store: SecretStore, worker: int, attempts: int) -> tuple[list[int], int]:
    """Try `attempts` read-then-insert increments; returns (versions won, conflicts seen)."""
    won: list[int] = []
    conflicts = 0
    for _ in range(attempts):
        meta = store.read_meta(NS, PATH)
        current = 0 if meta is None else meta.current_version
        try:
            store.insert_version(NS, PATH, current + 1, envelope_for(worker, current + 1),
                                 expected_version=current, now=float(current + 1), max_versions=MAX_VERSIONS)
        except VersionConflict:
            conflicts += 1
        else:
            won.append(current + 1)
    return won, conflicts


def process_main(factory: Callable[[], SecretStore], worker: int, attempts: int, barrier: Any,
                 results: Any) -> None:
    store = factory()
    try:
        barrier.wait(timeout=60)
        results.put((worker, *cas_increments(store, worker, attempts)))
    finally:
        store.close()


def open_and_report(factory: Callable[[], SecretStore], barrier: Any, results: Any) -> None:
    """Open a store (which migrates an empty database) at the same moment as the other workers."""
    barrier.wait(timeout=60)
    try:
        store = factory()
    except Exception as exc:  # reported to the test, which shows what went wrong
        results.put(f"{type(exc).__name__}: {exc}")
        return
    try:
        store.put_token  # noqa: B018 - the handle is usable
        results.put("ok")
    finally:
        store.close()
