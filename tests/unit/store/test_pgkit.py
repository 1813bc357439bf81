"""The PostgreSQL test server itself: it runs with fsync on, on loopback, and gives each test its own database."""

from __future__ import annotations

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
