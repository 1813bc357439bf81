"""A real `secretsvc serve` on PostgreSQL: a secret put through the server is stored in the database as
ciphertext and served again after a restart; the password reaches the server through a file or the
environment, and a wrong one stops the start with the reason."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from tests.integration.serverproc import ServerProcess
from tests.pgkit import PgServer


def test_serve_on_postgresql_puts_and_gets_a_secret(
    pg_server: PgServer, pg_database: str, make_server: Callable[..., ServerProcess]
) -> None:
    value = random.Random(41).randbytes(64)
    url = pg_server.url(pg_database)
    server = make_server(extra_args=("--store", url, "--store-password-file", str(pg_server.password_file())))
    server.start()
    put = server.cli("put", "app/db/password", stdin=value)
    assert put.returncode == 0, put.stderr
    got = server.cli("get", "app/db/password")
    assert got.returncode == 0, got.stderr
    assert got.stdout == value
    server.stop()
    # The rows are in PostgreSQL, as ciphertext: the value itself is nowhere in the table.
    with pg_server.admin_connect(pg_database) as conn:
        rows = conn.execute("SELECT namespace, path, version, envelope FROM secret_versions").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("app", "db/password", 1)]
    assert value not in bytes(rows[0][3])
    # A restart on the same database (password from the environment this time) serves the same secret.
    again = make_server(extra_args=("--store", url), env={"SECRETSVC_STORE_PASSWORD": pg_server.password})
    again.start()
    got = again.cli("get", "app/db/password")
    assert got.returncode == 0, got.stderr
    assert got.stdout == value


def test_serve_says_why_it_cannot_reach_postgresql(pg_server: PgServer, pg_database: str, tmp_path: Path,
                                                   make_server: Callable[..., ServerProcess]) -> None:
    wrong = tmp_path / "wrong-pw"
    wrong.write_text(random.Random(42).randbytes(9).hex() + "\n")
    server = make_server(extra_args=("--store", pg_server.url(pg_database), "--store-password-file", str(wrong)))
    server.start(wait=False)
    assert server.proc is not None
    assert server.proc.wait(timeout=60) == 1
    log = server.log()
    assert "storage error: cannot connect to postgresql://" in log and "password authentication failed" in log
    assert wrong.read_text().strip() not in log
