"""Connections to one SQLite database file: opening with the durability settings, pooling, error mapping.

Each connection is set up once with WAL, synchronous=FULL, foreign keys, secure_delete and a busy timeout.
A small pool hands a connection to one thread at a time: under WAL, readers on separate connections never
block each other or the writer. Writes go through `_sqlite_writer.GroupCommitter`.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from secretsvc.errors import CorruptRecord, StorageError

DEFAULT_BUSY_TIMEOUT_S = 10.0
# Connections beyond this many idle ones are closed on return; the gRPC pool rarely needs more.
MAX_IDLE_CONNECTIONS = 16
# After a checkpoint the WAL file is cut back to this size, so old page images do not linger in it.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
WAL_RETRY_FIRST_S = 0.005
WAL_RETRY_MAX_S = 0.2

_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """The settings a connection actually runs with, as SQLite reports them."""

    journal_mode: str
    synchronous: int  # 2 = FULL
    foreign_keys: bool
    secure_delete: bool
    busy_timeout_ms: int


def storage_error(op: str, location: str, exc: sqlite3.Error) -> StorageError:
    """A StorageError for a failed sqlite3 call. SQLite's own message can quote SQL or data, so only the
    error code name goes into ours."""
    code = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    if code in _CORRUPT_CODES or "file is not a database" in str(exc):
        return CorruptRecord(f"{op}: database {location} is corrupt or not a database ({code})",
                             public_reason="storage is damaged")
    if code.startswith("SQLITE_BUSY") or code.startswith("SQLITE_LOCKED"):
        return StorageError(f"{op}: database {location} stayed locked by other writers ({code})",
                            public_reason="storage is busy; retry")
    if code.startswith("SQLITE_FULL"):
        return StorageError(f"{op}: disk full writing {location} ({code})", public_reason="storage is full")
    return StorageError(f"{op}: database {location} failed ({code})")


class ConnectionPool:
    """Connections to one database file, each used by one thread at a time."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    @property
    def location(self) -> str:
        return str(self._path)

    def open_connection(self) -> sqlite3.Connection:
        """A new, configured connection (not pooled). Raises sqlite3.Error."""
        # isolation_level=None: the module's implicit transactions are off; every transaction here is an
        # explicit BEGIN. check_same_thread=False: a pooled connection moves between threads, never shared.
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._enable_wal(conn)
            if mode is None or str(mode[0]).lower() != "wal":
                raise StorageError(f"database {self._path}: cannot enable WAL journal mode")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> tuple[object, ...] | None:
        """`PRAGMA journal_mode = WAL`, retried while the file is busy: switching a new file to WAL needs an
        exclusive lock, and SQLite answers SQLITE_BUSY at once, without its busy handler, when several
        processes (replicas, worker processes) open the same new file together."""
        deadline = time.monotonic() + self._busy_timeout_s
        delay = WAL_RETRY_FIRST_S
        while True:
            try:
                row: tuple[object, ...] | None = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return row
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorname", "") or ""
                if not code.startswith("SQLITE_BUSY") or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not a secret
            delay = min(delay * 2, WAL_RETRY_MAX_S)

    @contextmanager
    def connection(self, op: str) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for one operation. A connection that saw an sqlite3 error is discarded,
        so a damaged handle never returns to the pool."""
        conn = self._acquire(op)
        healthy = True
        try:
            yield conn
        except sqlite3.Error:
            healthy = False
            raise
        finally:
            if conn.in_transaction:
                healthy = False
            self._release(conn, healthy)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def acquire(self, op: str) -> sqlite3.Connection:
        """Borrow a connection; give it back with `release`. Prefer `connection()`."""
        return self._acquire(op)

    def release(self, conn: sqlite3.Connection, healthy: bool) -> None:
        self._release(conn, healthy)

    def _acquire(self, op: str) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StorageError(f"{op}: the store is closed")
            if self._idle:
                return self._idle.pop()
        try:
            return self.open_connection()
        except sqlite3.Error as exc:
            raise storage_error(op, self.location, exc) from None

    def _release(self, conn: sqlite3.Connection, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # closing the connection rolls back anyway
                conn.execute("ROLLBACK")
        conn.close()


def read_settings(conn: sqlite3.Connection) -> ConnectionSettings:
    def pragma(name: str) -> object:
        row = conn.execute(f"PRAGMA {name}").fetchone()
        return None if row is None else row[0]

    return ConnectionSettings(
        journal_mode=str(pragma("journal_mode")),
        synchronous=int(str(pragma("synchronous"))),
        foreign_keys=pragma("foreign_keys") == 1,
        secure_delete=pragma("secure_delete") == 1,
        busy_timeout_ms=int(str(pragma("busy_timeout"))),
    )
