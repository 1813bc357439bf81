"""pytest fixtures on tests/pgkit.py's PostgreSQL: one server per test session (per xdist worker).

Tests share one schema in one database (`pg_store_url`: the URL sets search_path), migrated once and emptied
before each test, which costs milliseconds where a database per test costs a quarter second; tests never see
each other's rows. Tests about whole databases (migrations, copies) take a database of their own
(`pg_database`); tests that stop or restart a server take one of their own (`running_postgres`).
The superuser's password is generated at run time and handed to the store only through the password sources
the product supports.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgkit
from tests.pgkit import PgServer

# scripts/test.sh sets it: there PostgreSQL is installed, and a test that cannot find it fails, never skips.
REQUIRE_ENV = "SECRETSVC_REQUIRE_POSTGRES"
SHARED_DATABASE = "secretsvc_tests"
# Every table the store creates, emptied between tests (faster than a schema per test: no DDL, one commit).
STORE_TABLES = (
    "secret_fingerprints",
    "fingerprint_keys",
    "secret_versions",
    "secrets",
    "transit_key_versions",
    "transit_keys",
    "tokens",
    "kek_versions",
    "policy_documents",
    "policy_generation",
)


def require_bindir() -> Path:
    """Where initdb and pg_ctl are; the test skips without them (fails under scripts/test.sh)."""
    bindir = pgkit.find_bindir()
    if bindir is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"PostgreSQL binaries not found, but {REQUIRE_ENV} says scripts/test.sh installed them")
        pytest.skip("PostgreSQL not installed (apt-get install postgresql)")
    return bindir


@contextlib.contextmanager
def running_postgres(auth: pgkit.Auth = "password") -> Iterator[PgServer]:
    """A server of the test's own, stopped and removed afterwards."""
    bindir = require_bindir()
    try:
        with pgkit.running_postgres(auth=auth, bindir=bindir) as server:
            yield server
    except pgkit.PostgresNotInstalled as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def pg_shared_database(pg_server: PgServer) -> str:
    return pg_server.create_database(SHARED_DATABASE)


@pytest.fixture(scope="session")
def pg_store_schema(pg_server: PgServer, pg_shared_database: str) -> str:
    """One schema per session, migrated once by opening a store on it."""
    from secretsvc.store.postgres import PostgresStore

    schema = pg_server.new_schema(pg_shared_database)
    PostgresStore(pg_server.url(pg_shared_database, schema=schema), password=pg_server.password).close()
    return schema


@pytest.fixture
def pg_store_url(pg_server: PgServer, pg_shared_database: str, pg_store_schema: str) -> str:
    """A store URL (without password: it is `pg_server.password`) naming the session's schema, emptied for
    this test."""
    with pg_server.admin_connect(pg_shared_database) as conn, conn.transaction():
        conn.execute(f'SET LOCAL search_path = "{pg_store_schema}"')
        conn.execute(f"TRUNCATE {', '.join(STORE_TABLES)}")
        conn.execute("INSERT INTO policy_generation (generation) VALUES (0)")
    return pg_server.url(pg_shared_database, schema=pg_store_schema)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The name of a fresh database on the session's server, dropped after the test."""
    name = pg_server.new_database()
    yield name
    pg_server.drop_database(name)
