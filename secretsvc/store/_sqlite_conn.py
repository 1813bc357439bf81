"""Connections to one SQLite database file: opening with the durability settings, pooling, error mapping,
and group commit of writes.

Each connection is set up once with WAL, synchronous=FULL, foreign keys, secure_delete and a busy timeout.
A small pool hands a connection to one thread at a time: under WAL, readers on separate connections never
block each other or the writer. Writers of one process queue in a `GroupCommitter`, which runs whatever
is pending in one BEGIN IMMEDIATE transaction (one fsync for the lot); writers in other processes queue on
BEGIN IMMEDIATE and the busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from secretsvc.errors import InvalidArgument, StorageError

DEFAULT_BUSY_TIMEOUT_S = 10.0
# Connections beyond this many idle ones are closed on return; the gRPC pool rarely needs more.
MAX_IDLE_CONNECTIONS = 16
# After a checkpoint the WAL file is cut back to this size, so old page images do not linger in it.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024

# Writes committed together at most; more waiting writers go in the next transaction. Bounds how long the
# first writer of a batch waits for the others, and how much one failed commit takes down with it.
MAX_GROUP_COMMIT_OPS = 128

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
        return StorageError(f"{op}: database {location} is corrupt or not a database ({code})")
    if code.startswith("SQLITE_BUSY") or code.startswith("SQLITE_LOCKED"):
        return StorageError(f"{op}: database {location} stayed locked by other writers ({code})")
    if code.startswith("SQLITE_FULL"):
        return StorageError(f"{op}: disk full writing {location} ({code})")
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
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
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


T = TypeVar("T")


class _PendingWrite(Generic[T]):
    """One queued write: the work, then either its result or its error. `wake` is set when the write is
    finished, or when its thread must lead the next batch."""

    __slots__ = ("error", "finished", "fn", "op", "value", "wake")

    def __init__(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.op = op
        self.fn = fn
        self.wake = threading.Event()
        self.finished = False
        self.value: T | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs the write transactions of one process, several to a commit.

    A writer queues its operation (a function of a connection, run inside the transaction). If no batch
    is running it leads: it takes everything queued (up to MAX_GROUP_COMMIT_OPS), runs the operations in
    order in one BEGIN IMMEDIATE ... COMMIT, then hands the lead to the next waiting writer. Each operation
    runs inside its own SAVEPOINT, so one that raises (a check-and-set conflict, a missing secret, a
    constraint) is rolled back alone and gets its own exception, while the others still commit; each sees
    the effects of the ones before it, exactly as if they had committed one after another. Results and
    errors are handed back only after COMMIT returns, so with synchronous=FULL every acknowledged write
    is on disk. If the transaction itself fails (BEGIN, COMMIT, or an error SQLite answers by rolling the
    whole transaction back, such as a full disk), every operation in the batch gets a StorageError and none
    of them took effect.

    Only one thread of the process writes at a time, so writers never sleep in SQLite's busy handler
    against each other; they are woken when their batch commits.
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._mutex = threading.Lock()
        self._queue: deque[_PendingWrite[Any]] = deque()
        self._leading = False  # invariant: the queue is empty whenever no thread leads

    @property
    def pending(self) -> int:
        """Writes queued and not yet taken into a batch."""
        with self._mutex:
            return len(self._queue)

    def run(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in a write transaction (shared with other writers) and return its result once committed.
        Raises what `fn` raised (sqlite3 errors as StorageError), or StorageError if the commit failed."""
        item: _PendingWrite[T] = _PendingWrite(op, fn)
        with self._mutex:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.wake.wait()
        if not item.finished:  # leading: first in line when the lead came to us, so in the batch we take
            self._lead()
        if item.error is not None:
            raise item.error
        return item.value  # type: ignore[return-value]  # set whenever error is None

    def _lead(self) -> None:
        with self._mutex:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_GROUP_COMMIT_OPS))]
        try:
            self._execute(batch)
        finally:
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leading = False
            for item in batch:
                item.finished = True
                item.wake.set()
            if successor is not None:
                successor.wake.set()

    def _execute(self, batch: list[_PendingWrite[Any]]) -> None:
        location = self._pool.location
        try:
            conn = self._pool.acquire(batch[0].op)
        except StorageError as exc:  # closed, or no connection could be opened
            reason = str(exc).partition(": ")[2]
            _fail_all(batch, [StorageError(f"{item.op}: {reason}") for item in batch])
            return
        healthy = True
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                healthy = _apply(conn, item, location) and healthy
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            healthy = False
            _fail_all(batch, [storage_error(item.op, location, exc) for item in batch])
        except BaseException:
            healthy = False
            _fail_all(batch, [StorageError(f"{item.op}: the write was interrupted and not saved") for item in batch])
            raise
        finally:
            self._pool.release(conn, healthy)


def _apply(conn: sqlite3.Connection, item: _PendingWrite[Any], location: str) -> bool:
    """Run one operation inside its own savepoint. Returns False if it met an SQLite error (the connection
    is then retired after the batch). Re-raises an sqlite3 error that ended the whole transaction."""
    conn.execute("SAVEPOINT write_op")
    try:
        item.value = item.fn(conn)
    except sqlite3.Error as exc:
        if not conn.in_transaction:
            raise  # SQLite rolled everything back: nothing in this batch was saved
        _undo(conn)
        item.error = storage_error(item.op, location, exc)
        return False
    except UnicodeEncodeError:
        _undo(conn)
        # A lone surrogate in a name cannot be bound as UTF-8 text.
        item.error = InvalidArgument(f"{item.op}: names and metadata must be valid UTF-8 text")
    except Exception as exc:  # the operation's own refusal (conflict, not found, ...): its alone
        _undo(conn)
        item.error = exc
    else:
        conn.execute("RELEASE write_op")
    return True


def _undo(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK TO write_op")
    conn.execute("RELEASE write_op")


def _fail_all(batch: list[_PendingWrite[Any]], errors: list[StorageError]) -> None:
    for item, error in zip(batch, errors, strict=True):
        item.value = None
        item.error = error
