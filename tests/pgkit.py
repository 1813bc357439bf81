"""A real, throwaway PostgreSQL server on loopback, for the tests (tests/pgfixtures.py) and the benchmarks.

`running_postgres()` runs initdb into a temporary directory and `pg_ctl start` on a free loopback port, with
fsync on and synchronous commit, as in production, and removes it all afterwards. PostgreSQL refuses to run as
root, so as root the server runs as the `postgres` system user (Debian's package creates it).

Authentication is one of:
- `password` (the tests): SCRAM for TCP with a superuser password generated at run time, which a test hands to
  the store only through the password sources the product supports (`password_file()`, the environment);
- `trust` (the benchmarks): no password over loopback or the local socket, so none needs handing to the
  servers under test. The server lives for one run, in a directory only the run can reach.

This module needs no pytest: the benchmarks use it without the test dependencies.
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
from typing import Any, Literal

import psycopg

SUPERUSER = "secretsvc_test"
START_TIMEOUT_S = 60
MAX_PID_FILE_BYTES = 4096
Auth = Literal["password", "trust"]


class PostgresNotInstalled(RuntimeError):
    """No initdb and pg_ctl were found."""


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, then Debian's versioned directories (newest first),
    then PATH."""
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _check_identifier(name: str) -> str:
    # Names are quoted into DDL: only the plain identifiers this kit makes, or a caller's own of that shape.
    if not name.isidentifier() or len(name) > 63:
        raise ValueError(f"{name!r} is not a plain identifier")
    return name


@dataclass
class PgServer:
    bindir: Path
    workdir: Path
    auth: Auth = "password"
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
        """A store URL without the password (with `password` auth it goes in a file or the environment)."""
        url = f"postgresql://{user}@{self.host}:{self.port}/{database}"
        if schema is not None:
            url += f"?options=-csearch_path%3D{schema}"
        return url

    def password_file(self) -> Path:
        if self.auth != "password":
            raise RuntimeError("a server with trust authentication has no password")
        path = self.workdir / "password"
        if not path.exists():
            path.write_text(self.password + "\n")
            path.chmod(0o600)
        return path

    def start(self) -> None:
        """initdb, then start on a free port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socketdir.mkdir(parents=True, exist_ok=True)
        argv = [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER, "-E", "UTF8", "--no-locale"]
        pwfile = self.workdir / "initdb-pw"
        if self.auth == "password":
            self.password = secrets.token_urlsafe(24)
            pwfile.write_text(self.password + "\n")
            argv += ["--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256"]
        else:
            argv += ["--auth-local=trust", "--auth-host=trust"]
        self._hand_over(self.workdir, self.socketdir, *([pwfile] if pwfile.exists() else []))
        try:
            self._run(argv)
        finally:
            pwfile.unlink(missing_ok=True)
        self.port = free_port()
        self.start_again()

    def start_again(self) -> None:
        """Start the server on its data directory and port (after `stop`)."""
        options = f"-p {self.port} -k {self.socketdir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
        self._pg_ctl("-o", options, "-w", "-t", str(START_TIMEOUT_S), "start")

    def restart_fast(self) -> None:
        """`pg_ctl restart -m fast`: sessions are ended, the server shuts down cleanly and starts again."""
        self._pg_ctl("-m", "fast", "-w", "-t", str(START_TIMEOUT_S), "restart")

    def stop(self, mode: Literal["immediate", "fast"] = "immediate") -> None:
        """Stop the server if it runs: `immediate` (a crash, as the tests want: nothing to flush) or `fast`."""
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def admin_connect(self, database: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        kwargs: dict[str, Any] = {"password": self.password} if self.auth == "password" else {}
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname=database, autocommit=True, **kwargs
        )

    def create_database(self, name: str) -> str:
        """An empty database named `name` (a plain identifier)."""
        with self.admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{_check_identifier(name)}" TEMPLATE template0')
        return name

    def new_database(self, tag: str = "t") -> str:
        """A fresh, empty database with a name of its own."""
        return self.create_database(f"{tag}_{os.getpid()}_{next(self._counter)}")

    def new_schema(self, database: str, tag: str = "s") -> str:
        """A fresh, empty schema in `database`."""
        name = _check_identifier(f"{tag}_{os.getpid()}_{next(self._counter)}")
        with self.admin_connect(database) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return name

    def drop_schema(self, database: str, name: str) -> None:
        with self.admin_connect(database) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{_check_identifier(name)}" CASCADE')

    def drop_database(self, name: str) -> None:
        with self.admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_check_identifier(name)}" WITH (FORCE)')

    def pids(self) -> list[int]:
        """The postmaster and its children (a backend per connection, the writer, the WAL writer...), now."""
        try:
            main = int((self.datadir / "postmaster.pid").read_text()[:MAX_PID_FILE_BYTES].split("\n", 1)[0])
        except (OSError, ValueError):
            return []
        found = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                raw = stat.read_text()
            except OSError:
                continue  # gone meanwhile
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == main:
                found.append(int(stat.parent.name))
        return found

    def _pg_ctl(self, *args: str) -> None:
        # The log file keeps the postmaster from holding this process's output pipes open.
        log = self.workdir / "server.log"
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(log), *args])

    def _hand_over(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        # The run-as user must reach the work directory, also when it lies in a directory tempfile made (0700,
        # root's): search permission on both, nothing more.
        for directory in (self.workdir.parent, self.workdir):
            mode = directory.stat().st_mode
            if mode & 0o011 != 0o011:
                directory.chmod(mode | 0o011)
        for path in paths:
            shutil.chown(path, user="postgres", group="postgres")

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, check=False)
        if result.returncode != 0:
            log = self.workdir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(argv[-1]).name} failed ({result.returncode}): {result.stderr[-2000:]}\n{tail}")


def start_postgres(*, auth: Auth = "password", workdir: Path | None = None, bindir: Path | None = None) -> PgServer:
    """A started server in `workdir` (a new temporary directory when None). Raises PostgresNotInstalled."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise PostgresNotInstalled("PostgreSQL not installed (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise PostgresNotInstalled("running as root needs runuser to start PostgreSQL as the postgres user")
    server = PgServer(bindir=bindir, workdir=workdir or Path(tempfile.mkdtemp(prefix="secretsvc-pg-")), auth=auth)
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
        raise
    return server


@contextlib.contextmanager
def running_postgres(*, auth: Auth = "password", bindir: Path | None = None) -> Iterator[PgServer]:
    """A server for the duration of the block, stopped and its files removed afterwards."""
    server = start_postgres(auth=auth, bindir=bindir)
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.workdir, ignore_errors=True)
