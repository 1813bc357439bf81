"""Schema versions and migrations on both backends: replicas starting at once, a database newer than the code,
a database that is not ours, and an old database brought forward without losing rows."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from secretsvc.errors import StorageError
from secretsvc.store import _pg_schema, _sqlite_schema
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.sqlite import SqliteStore
from tests.pgkit import PgServer
from tests.unit.store import workers
from tests.unit.store.backends import PostgresFactory, SqliteFactory

STARTERS = 4


def test_both_backends_share_the_schema_version_numbers() -> None:
    assert _pg_schema.LATEST_VERSION == _sqlite_schema.LATEST_VERSION
    assert [len(step) for step in _pg_schema.MIGRATIONS] == [len(step) for step in _sqlite_schema.MIGRATIONS]


def _start_at_once(factory: PostgresFactory | SqliteFactory) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(STARTERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=workers.open_and_report, args=(factory, barrier, results)) for _ in range(STARTERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return outcomes


@pytest.mark.timeout(180)
def test_replicas_starting_at_once_on_an_empty_postgresql_database(pg_server: PgServer, pg_database: str) -> None:
    outcomes = _start_at_once(PostgresFactory(pg_server.url(pg_database), pg_server.password))
    assert outcomes == ["ok"] * STARTERS
    with pg_server.admin_connect(pg_database) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(_pg_schema.LATEST_VERSION,)]
        assert conn.execute("SELECT generation FROM policy_generation").fetchall() == [(0,)]


@pytest.mark.timeout(180)
def test_replicas_starting_at_once_on_a_new_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "secretsvc.db"
    assert _start_at_once(SqliteFactory(path)) == ["ok"] * STARTERS
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(_sqlite_schema.LATEST_VERSION,)]
        assert conn.execute("SELECT generation FROM policy_generation").fetchall() == [(0,)]
    finally:
        conn.close()


def test_a_newer_postgresql_database_is_refused(pg_server: PgServer, pg_database: str) -> None:
    url = pg_server.url(pg_database)
    PostgresStore(url, password=pg_server.password).close()
    with pg_server.admin_connect(pg_database) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (_pg_schema.LATEST_VERSION + 1,))
    with pytest.raises(StorageError, match=r"schema version 6, newer than this secretsvc supports \(5\); upgrade"):
        PostgresStore(url, password=pg_server.password)
    with pg_server.admin_connect(pg_database) as conn:  # refused, not touched
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (_pg_schema.LATEST_VERSION + 1,)


def test_a_newer_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secretsvc.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (_sqlite_schema.LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match=r"schema version 6, newer than this secretsvc supports \(5\); upgrade"):
        SqliteStore(path)


def test_a_postgresql_database_holding_other_tables_is_refused(pg_server: PgServer, pg_database: str) -> None:
    with pg_server.admin_connect(pg_database) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")
    with pytest.raises(StorageError, match="is not a secretsvc database"):
        PostgresStore(pg_server.url(pg_database), password=pg_server.password)
    with pg_server.admin_connect(pg_database) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert [r[0] for r in tables] == ["invoices"]


def test_an_old_postgresql_database_is_migrated_forward_keeping_its_rows(pg_server: PgServer, pg_database: str) -> None:
    # A database as a secretsvc of schema version 2 left it, with a token stored.
    with pg_server.admin_connect(pg_database) as conn:
        conn.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (2)")
        for step in _pg_schema.MIGRATIONS[:2]:
            for statement in step:
                conn.execute(statement.encode())
        conn.execute(
            "INSERT INTO tokens (token_id, name, token_hash, created_at, policies) VALUES (%s, %s, %s, %s, %s)",
            ("tid-1", "ci", b"\x01" * 32, 5.0, '["admin"]'),
        )
    with PostgresStore(pg_server.url(pg_database), password=pg_server.password) as store:
        token = store.find_token("tid-1")
        assert token is not None and token.name == "ci" and token.expires_at is None
        assert store.policy_generation() == 0
    with pg_server.admin_connect(pg_database) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (_pg_schema.LATEST_VERSION,)


def test_a_failed_migration_leaves_the_postgresql_database_as_it_was(
    pg_server: PgServer, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = (*_pg_schema.MIGRATIONS[:-1], (*_pg_schema.MIGRATIONS[-1], "CREATE TABLE secrets (x integer)"))
    monkeypatch.setattr(_pg_schema, "MIGRATIONS", broken)
    with pytest.raises(StorageError):
        PostgresStore(pg_server.url(pg_database), password=pg_server.password)
    with pg_server.admin_connect(pg_database) as conn:
        tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables.fetchone() == (0,)
