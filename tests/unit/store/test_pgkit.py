"""The PostgreSQL kit itself: it runs with fsync on, on loopback, and gives each test its own database; with
password authentication (the tests) it refuses a connection without the password, with trust (the benchmarks)
it takes one, and it leaves no files behind."""

from __future__ import annotations

import psycopg
import pytest

from tests.pgfixtures import running_postgres
from tests.pgkit import PgServer


def test_server_runs_durably_on_loopback(pg_server: PgServer, pg_database: str) -> None:
    with pg_server.admin_connect(pg_database) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings"
                " WHERE name IN ('fsync', 'listen_addresses', 'synchronous_commit')"
            ).fetchall()
        )
        current = conn.execute("SELECT current_database()").fetchone()
    assert settings == {"fsync": "on", "listen_addresses": "127.0.0.1", "synchronous_commit": "on"}
    assert current == (pg_database,)


def test_each_database_starts_empty(pg_server: PgServer) -> None:
    first, second = pg_server.new_database(), pg_server.new_database()
    try:
        assert first != second
        with pg_server.admin_connect(first) as conn:
            conn.execute("CREATE TABLE marker (x integer)")
        with pg_server.admin_connect(second) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
    finally:
        pg_server.drop_database(first)
        pg_server.drop_database(second)


def test_a_password_server_refuses_a_connection_without_its_password(pg_server: PgServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg_server.url("postgres"), password="", connect_timeout=5).close()
    with psycopg.connect(pg_server.url("postgres"), password=pg_server.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_trust_server_serves_the_benchmarks_without_a_password() -> None:
    with running_postgres(auth="trust") as server:
        database = server.create_database("bench_db")
        with psycopg.connect(server.url(database), connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (database,)
        assert len(server.pids()) > 1  # the postmaster and its children, for the benchmarks' CPU accounting
        with pytest.raises(RuntimeError, match="no password"):
            server.password_file()
        with pytest.raises(ValueError, match="plain identifier"):
            server.create_database('x"; DROP DATABASE postgres; --')
        workdir = server.workdir
    assert not workdir.exists()
