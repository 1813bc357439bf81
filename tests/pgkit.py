"""A real PostgreSQL server for tests: initdb into a temporary directory, started on a free loopback port.

One server per test session (per xdist worker). Tests share one schema in one database (`pg_store_url`: the
URL sets search_path), migrated once and emptied before each test, which costs milliseconds where a database
per test costs a quarter second; tests never see each other's rows. Tests about whole databases (migrations,
copies) take a database of their own (`pg_database`). fsync stays on, as in production. PostgreSQL refuses
to run as root, so when the tests run as root the server runs as the `postgres` system user (Debian's
package creates it).
The superuser's password is generated at run time and handed to the store only through the password sources
the product supports.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

# scripts/test.sh sets it: there PostgreSQL is installed, and a test that cannot find it fails, never skips.
REQUIRE_ENV = "SECRETSVC_REQUIRE_POSTGRES"
SUPERUSER = "secretsvc_test"
START_TIMEOUT_S = 60


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, then Debian's versioned directories, then PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version_key(Path(p).parent.name))
    candidates.extend(Path(p) for p in reversed(versions))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def require_bindir() -> Path:
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"PostgreSQL binaries not found, but {REQUIRE_ENV} says scripts/test.sh installed them")
        pytest.skip("PostgreSQL not installed (apt-get install postgresql)")
    return bindir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgServer:
    bindir: Path
    workdir: Path
    port: int = 0
    password: str = field(default="", repr=False)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def socketdir(self) -> Path:
        return self.workdir / "sock"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str, *, schema: str | None = None, user: str = SUPERUSER) -> str:
        """A store URL without the password (the password goes in a file or the environment)."""
        url = f"postgresql://{user}@{self.host}:{self.port}/{database}"
        if schema is not None:
            url += f"?options=-csearch_path%3D{schema}"
        return url

    def password_file(self) -> Path:
        path = self.workdir / "password"
        if not path.exists():
            path.write_text(self.password + "\n")
            path.chmod(0o600)
        return path

    def start(self) -> None:
        self.password = secrets.token_urlsafe(24)
        self.socketdir.mkdir(parents=True, exist_ok=True)
        pwfile = self.workdir / "initdb-pw"
        pwfile.write_text(self.password + "\n")
        self._hand_over(self.workdir, pwfile, self.socketdir)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )
        pwfile.unlink()
        self.port = _free_port()
        self.start_again()

    def start_again(self) -> None:
        """Start the server on its data directory and port (after `stop`)."""
        options = f"-p {self.port} -k {self.socketdir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.workdir / "server.log"),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                options,
                "start",
            ]
        )

    def restart_fast(self) -> None:
        """`pg_ctl restart -m fast`: sessions are ended, the server shuts down cleanly and starts again."""
        # The log file keeps the new postmaster from holding this process's output pipes open.
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.workdir / "server.log"),
                "-m",
                "fast",
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "restart",
            ]
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"])

    def admin_connect(self, database: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, password=self.password, dbname=database, autocommit=True
        )

    def new_database(self, tag: str = "t") -> str:
        """A fresh, empty database for one test."""
        name = f"{tag}_{os.getpid()}_{next(self._counter)}"
        with self.admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def new_schema(self, database: str, tag: str = "s") -> str:
        """A fresh, empty schema in `database`, for one test."""
        name = f"{tag}_{os.getpid()}_{next(self._counter)}"
        with self.admin_connect(database) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return name

    def drop_schema(self, database: str, name: str) -> None:
        with self.admin_connect(database) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def drop_database(self, name: str) -> None:
        with self.admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _hand_over(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        # The run-as user must reach the work directory (tempfile makes it 0700 and root's).
        self.workdir.chmod(0o755)
        for path in paths:
            shutil.chown(path, user="postgres", group="postgres")

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, check=False)
        if result.returncode != 0:
            log = self.workdir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[-1]} failed ({result.returncode}): {result.stderr[-2000:]}\n{tail}")


def start_postgres() -> PgServer:
    bindir = require_bindir()
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.fail("running as root needs runuser to start PostgreSQL as the postgres user")
    workdir = Path(tempfile.mkdtemp(prefix="secretsvc-pg-"))
    server = PgServer(bindir=bindir, workdir=workdir)
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return server


@contextlib.contextmanager
def running_postgres() -> Iterator[PgServer]:
    """A server for the duration of the block, stopped and its files removed afterwards."""
    server = start_postgres()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server


SHARED_DATABASE = "secretsvc_tests"


@pytest.fixture(scope="session")
def pg_shared_database(pg_server: PgServer) -> str:
    with pg_server.admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{SHARED_DATABASE}" TEMPLATE template0')
    return SHARED_DATABASE


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
