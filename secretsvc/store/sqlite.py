"""`SqliteStore`: the embedded `SecretStore`, one SQLite database file in the data directory.

Durability and shredding: WAL journal with synchronous=FULL, so an acknowledged write survives kill -9 and
power loss; secure_delete=ON, so a destroyed envelope (and the wrapped data key inside it) is overwritten in
the database pages rather than left in free space; `destroy_versions` and `delete_secret` then checkpoint
and truncate the WAL so the old page images go too.

Concurrency: a small pool of connections, each lent to one thread at a time (the gRPC server calls from a
thread pool). Under WAL, reads on separate connections run in parallel and never wait for a writer. Every
mutating method is one transaction opened with BEGIN IMMEDIATE, which takes the database's single write lock
up front: check-and-set cannot interleave with another writer in this or any other process, and no
transaction ever has to upgrade from read to write (the case where WAL reports SQLITE_BUSY_SNAPSHOT).
Reads that touch several tables run in one deferred transaction so they see one snapshot.

The statements themselves are shared with PostgreSQL (`_sqlstore.SqlStore`); this module holds only how
SQLite runs them: the connection pool, the group committer, the WAL checkpoint after an erase.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from secretsvc.errors import InvalidArgument, StorageError
from secretsvc.store._dbapi import Conn
from secretsvc.store._records import (
    FINGERPRINT_KEY_KIND,
    MAX_ENVELOPE_BYTES,
    MAX_SCAN_BATCH,
    MAX_VERSION,
    MAX_VERSIONS_PER_CALL,
    SECRET_KIND,
    TRANSIT_KIND,
)
from secretsvc.store._sqlite_conn import (
    DEFAULT_BUSY_TIMEOUT_S,
    ConnectionPool,
    ConnectionSettings,
    read_settings,
    storage_error,
)
from secretsvc.store._sqlite_schema import migrate
from secretsvc.store._sqlite_writer import GroupCommitter
from secretsvc.store._sqlstore import SqlStore

__all__ = [
    "FINGERPRINT_KEY_KIND",
    "MAX_ENVELOPE_BYTES",
    "MAX_SCAN_BATCH",
    "MAX_VERSION",
    "MAX_VERSIONS_PER_CALL",
    "SECRET_KIND",
    "TRANSIT_KIND",
    "SqliteStore",
]

_T = TypeVar("_T")


class SqliteStore(SqlStore):
    """A `SecretStore` in one SQLite file. Safe to share between threads and to open from several
    processes at once; `close()` when done."""

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self._pool = ConnectionPool(Path(path), busy_timeout_s)
        self._writes = GroupCommitter(self._pool)
        try:
            with self._pool.connection("open") as conn:
                migrate(conn, self._pool.location)
        except sqlite3.Error as exc:
            self._pool.close()
            raise storage_error("open", self._pool.location, exc) from None
        except BaseException:
            self._pool.close()
            raise

    @property
    def path(self) -> Path:
        return Path(self._pool.location)

    # --- transactions --------------------------------------------------------------------------------------
    def _write(self, op: str, fn: Callable[[Conn], _T]) -> _T:
        """Run `fn` as one atomic write, committed together with whatever other writes are pending."""
        return self._writes.run(op, fn)

    @contextmanager
    def _transaction(self, op: str) -> Iterator[sqlite3.Connection]:
        """A read transaction: one snapshot across several queries."""
        try:
            with self._pool.connection(op) as conn:
                conn.execute("BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise storage_error(op, self._pool.location, exc) from None
        except UnicodeEncodeError:
            # A lone surrogate in a name cannot be bound as UTF-8 text.
            raise InvalidArgument(f"{op}: names and metadata must be valid UTF-8 text") from None

    def _query_one(self, op: str, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        """The first row of a single read statement (atomic on its own: no transaction needed)."""
        try:
            with self._pool.connection(op) as conn:
                row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
                return row
        except sqlite3.Error as exc:
            raise storage_error(op, self._pool.location, exc) from None
        except UnicodeEncodeError:
            raise InvalidArgument(f"{op}: names and metadata must be valid UTF-8 text") from None

    # --- SQLite specifics ----------------------------------------------------------------------------------
    def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it, so erased pages leave no older image in the
        WAL. Returns False if readers kept it from completing (it is then retried by later checkpoints)."""
        try:
            with self._pool.connection("checkpoint") as conn:
                row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise storage_error("checkpoint", self._pool.location, exc) from None
        return row is not None and int(row[0]) == 0

    def _erased(self) -> None:
        # The erase is already committed; a checkpoint that cannot run now is redone by later ones, so its
        # failure must not turn a successful destroy into an error.
        with suppress(StorageError):
            self.checkpoint()

    def connection_settings(self) -> ConnectionSettings:
        """The durability settings a pooled connection runs with, for start-up logs and checks."""
        try:
            with self._pool.connection("connection_settings") as conn:
                return read_settings(conn)
        except sqlite3.Error as exc:
            raise storage_error("connection_settings", self._pool.location, exc) from None

    # --- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        self._pool.close()
        self._writes.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self._pool.location!r})"
