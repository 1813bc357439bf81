"""After a PostgreSQL restart every idle pooled connection is dead. The first call that meets one fails with
"storage is unavailable; retry" (UNAVAILABLE), and that failure makes the pool check its idle connections, so
the calls after it succeed instead of each meeting another dead one."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from secretsvc.errors import StorageError
from secretsvc.store.postgres import PostgresStore
from tests.pgfixtures import running_postgres
from tests.pgkit import PgServer

POOL = 6


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server


def test_one_call_fails_after_a_restart_and_the_rest_find_live_connections(own_server: PgServer) -> None:
    database = own_server.new_database()
    store = PostgresStore(own_server.url(database), password=own_server.password, pool_size=POOL)
    try:
        store.insert_version("ns", "p", 1, b"\x01" * 40, expected_version=0, now=1.0, max_versions=5)
        # Fill the pool: POOL calls at once, each holding a connection until all have one.
        barrier = threading.Barrier(POOL)

        def hold() -> None:
            with store._transaction("hold"):
                barrier.wait(timeout=30)

        threads = [threading.Thread(target=hold) for _ in range(POOL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        own_server.restart_fast()
        outcomes = []
        for _ in range(POOL):
            try:
                store.read_meta("ns", "p")
                outcomes.append("ok")
            except StorageError as exc:
                assert exc.public_reason == "storage is unavailable; retry"
                outcomes.append("unavailable")
        assert outcomes.count("unavailable") <= 1, outcomes
        assert outcomes[-1] == "ok"
    finally:
        store.close()
