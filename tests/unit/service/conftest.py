"""Real parts for the service-layer tests: a store, a local keyring in tmp_path, a manual clock.

The store is SQLite and PostgreSQL in turn (a schema of its own on the session's server, tests/pgkit.py) for
every test that asks for `store`; a test that also takes `db_path` reaches into the SQLite file, so it runs on
SQLite only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretsvc.kek.local import LocalKeyring
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.transit import TransitService
from secretsvc.store.base import SecretStore
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.sqlite import SqliteStore
from tests.pgfixtures import pg_server, pg_shared_database, pg_store_schema, pg_store_url  # noqa: F401 (fixtures)
from tests.pgkit import PgServer
from tests.unit.service.support import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "secretsvc.db"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" in metafunc.fixturenames:
        backends = ["sqlite"] if "db_path" in metafunc.fixturenames else ["sqlite", "postgresql"]
        metafunc.parametrize("store_backend", backends, indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def open_replica(store_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SecretStore]:
    """Opens another handle on the test's data, as a second replica of the server would."""
    if store_backend == "sqlite":
        return lambda: SqliteStore(tmp_path / "secretsvc.db")
    pg: PgServer = request.getfixturevalue("pg_server")
    url: str = request.getfixturevalue("pg_store_url")
    return lambda: PostgresStore(url, password=pg.password, pool_size=4)


@pytest.fixture
def store(open_replica: Callable[[], SecretStore]) -> Iterator[SecretStore]:
    opened = open_replica()
    yield opened
    opened.close()


@pytest.fixture
def keyring(tmp_path: Path, clock: ManualClock) -> LocalKeyring:
    return LocalKeyring.open_or_create(tmp_path / "keyring.json", None, clock)


@pytest.fixture
def secrets_svc(store: SecretStore, keyring: LocalKeyring, clock: ManualClock) -> SecretService:
    return SecretService(store, keyring, clock, AdminPolicyOnly())


@pytest.fixture
def transit(store: SecretStore, keyring: LocalKeyring, clock: ManualClock) -> TransitService:
    return TransitService(store, keyring, clock, AdminPolicyOnly())


@pytest.fixture
def rootkey(store: SecretStore, keyring: LocalKeyring) -> RootKeyService:
    return RootKeyService(store, keyring, AdminPolicyOnly())
