"""A real `secretsvc serve` on PostgreSQL: a secret put through the server is stored in the database as
ciphertext and served again after a restart; the password reaches the server through a file or the
environment, and a wrong one stops the start with the reason."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.integration.serverproc import ServerProcess, cli_command
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


def test_serve_says_why_it_cannot_reach_postgresql(
    pg_server: PgServer, pg_database: str, tmp_path: Path, make_server: Callable[..., ServerProcess]
) -> None:
    wrong = tmp_path / "wrong-pw"
    wrong.write_text(random.Random(42).randbytes(9).hex() + "\n")
    server = make_server(extra_args=("--store", pg_server.url(pg_database), "--store-password-file", str(wrong)))
    server.start(wait=False)
    assert server.proc is not None
    assert server.proc.wait(timeout=60) == 1
    log = server.log()
    assert "storage error: cannot connect to postgresql://" in log and "password authentication failed" in log
    assert wrong.read_text().strip() not in log


def test_a_server_grown_from_sqlite_onto_postgresql_serves_the_same_secrets(
    pg_server: PgServer, pg_database: str, tmp_path: Path, make_server: Callable[..., ServerProcess]
) -> None:
    value = random.Random(43).randbytes(48)
    embedded = make_server().start()
    assert embedded.cli("put", "app/api/key", stdin=value).returncode == 0
    assert embedded.cli("put", "app/api/key", stdin=value[::-1]).returncode == 0
    embedded.stop()
    url = pg_server.url(pg_database)
    copied = subprocess.run(
        cli_command(
            "store",
            "copy",
            "--from",
            f"sqlite:{embedded.data_dir / 'secretsvc.db'}",
            "--to",
            url,
            "--to-password-file",
            str(pg_server.password_file()),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    grown = make_server(extra_args=("--store", url, "--store-password-file", str(pg_server.password_file())))
    grown.start()  # the same data directory: its keyring unwraps what was copied, the admin token still works
    current = grown.cli("get", "app/api/key")
    assert current.returncode == 0, current.stderr
    assert current.stdout == value[::-1]
    first = grown.cli("get", "app/api/key", "--version", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout == value
