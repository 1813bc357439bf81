"""PostgreSQL failures reach callers as StorageError saying to retry (UNAVAILABLE over gRPC), with a reason for
the operator and never the password: no server, a wrong password, a server that goes away and comes back,
a pool with no free connection."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from secretsvc.errors import StorageError
from secretsvc.store.postgres import PostgresStore
from tests.pgfixtures import running_postgres
from tests.pgkit import PgServer


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own, which it may stop (the session's is shared)."""
    with running_postgres() as server:
        yield server


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_no_server_listening() -> None:
    with pytest.raises(StorageError, match=r"cannot connect to postgresql://svc@127\.0\.0\.1:\d+/secrets") as caught:
        PostgresStore(f"postgresql://svc@127.0.0.1:{_closed_port()}/secrets", connect_timeout_s=2)
    assert caught.value.public_reason == "storage is unavailable; retry"


def test_a_wrong_password_says_so_without_the_password(pg_server: PgServer, pg_database: str) -> None:
    wrong = random.Random(11).randbytes(10).hex()
    with pytest.raises(StorageError, match="password authentication failed") as caught:
        PostgresStore(pg_server.url(pg_database), password=wrong)
    assert wrong not in str(caught.value) and wrong not in caught.value.public_reason


def test_a_server_that_goes_away_is_unavailable_then_comes_back(own_server: PgServer) -> None:
    database = own_server.new_database()
    store = PostgresStore(own_server.url(database), password=own_server.password, acquire_timeout_s=2)
    try:
        store.insert_version("ns", "p", 1, b"\x01" * 40, expected_version=0, now=1.0, max_versions=5)
        own_server.stop()
        for call in (
            lambda: store.read_meta("ns", "p"),
            lambda: store.read_version("ns", "p", None),
            lambda: store.insert_version("ns", "p", 2, b"\x02" * 40, expected_version=1, now=2.0, max_versions=5),
        ):
            with pytest.raises(StorageError) as caught:
                call()
            assert caught.value.public_reason == "storage is unavailable; retry"
        own_server.start_again()
        # Broken pooled connections are dropped as they fail; the pool reconnects.
        deadline = time.monotonic() + 30
        while True:
            try:
                meta = store.read_meta("ns", "p")
                break
            except StorageError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert meta is not None and meta.current_version == 1
    finally:
        store.close()


def test_no_free_connection_is_busy_not_a_hang(pg_server: PgServer, pg_store_url: str) -> None:
    store = PostgresStore(pg_store_url, password=pg_server.password, pool_size=1, acquire_timeout_s=0.5)
    try:
        with store._pool.connection():  # the only connection, held
            started = time.monotonic()
            with pytest.raises(StorageError) as caught:
                store.read_meta("ns", "p")
            assert time.monotonic() - started < 5
        assert caught.value.public_reason == "storage is busy; retry"
        assert store.read_meta("ns", "p") is None  # free again
    finally:
        store.close()
