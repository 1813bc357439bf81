"""Fixtures for the store contract suite: every test runs against every backend in `BACKENDS`.

PostgreSQL tests share one server per session (tests/pgkit.py) and start from an empty schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretsvc.store.base import SecretStore
from tests.pgfixtures import pg_database, pg_server, pg_shared_database, pg_store_schema, pg_store_url  # noqa: F401 (fixtures)
from tests.pgkit import PgServer
from tests.unit.store.backends import BACKENDS, PostgresFactory, SqliteFactory


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SecretStore]:
    backend: str = request.param
    if backend == "sqlite":
        return SqliteFactory(tmp_path / "secretsvc.db")
    pg: PgServer = request.getfixturevalue("pg_server")
    url: str = request.getfixturevalue("pg_store_url")
    return PostgresFactory(url, pg.password)


@pytest.fixture
def store(store_factory: Callable[[], SecretStore]) -> Iterator[SecretStore]:
    opened = store_factory()
    yield opened
    opened.close()
