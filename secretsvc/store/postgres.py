"""`PostgresStore`: the `SecretStore` on a PostgreSQL server, for deployments that outgrow one SQLite file.

The statements are the ones SQLite runs (`_sqlstore.SqlStore`); this module holds how PostgreSQL runs them.

Transactions: every write is one transaction that behaves as if no other writer ran during it, so
check-and-set means what it means on SQLite (where BEGIN IMMEDIATE serializes writers). A new version of a
secret (the put) runs at READ COMMITTED and serializes on its secret's row: it creates the row (INSERT ... ON
CONFLICT DO NOTHING waits for a concurrent creator) or locks it (SELECT ... FOR UPDATE) before it reads
anything that depends on it, so a second writer of the same secret waits, then reads the winner's version
and raises `VersionConflict`, the same error a losing SQLite writer gets; writers of different secrets share
no lock. Every other write is one SERIALIZABLE transaction; those that write a secret's rows lock its row
first, as puts do, so they never wait on a put's rows in the opposite order. When PostgreSQL aborts one of two
overlapping writers (a serialization failure, or a deadlock), the write is run again from the start.
Reads that touch several tables run in one REPEATABLE READ READ ONLY transaction (one snapshot, never
aborted).

Connections come from a bounded psycopg_pool; a call that finds no free connection within the acquire
timeout, or a server that is down, gives a `StorageError` whose public reason says to retry (UNAVAILABLE to
gRPC callers). The schema is migrated at open under an advisory lock (`_pg_schema`). A connection that
broke (the server restarted) is dropped by the pool when it is handed back, and the first such failure makes
the pool check its idle connections, so after an outage a call or two fails instead of one per pooled
connection.

Replicas: every write that other processes must learn of (a secret's versions, a token, a policy document)
sends a NOTIFY in its own transaction; `change_listener()` hears them (`_pg_notify`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from secretsvc.errors import InvalidArgument, StorageError
from secretsvc.store import _pg_notify as notify
from secretsvc.store._dbapi import Conn
from secretsvc.store._pg_conn import PgConn, PgTarget, connect_error, parse_url, storage_error
from secretsvc.store._pg_schema import migrate
from secretsvc.store._sqlstore import SqlStore
from secretsvc.store.base import Fingerprint, SecretMeta
from secretsvc.store.target import DEFAULT_POOL_SIZE

MAX_POOL_SIZE = 256
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_ACQUIRE_TIMEOUT_S = 10.0
# Runs of one write aborted by serialization failures before giving up with "busy; retry".
MAX_WRITE_ATTEMPTS = 30
_RETRY_STATES = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_SERIALIZABLE = "BEGIN ISOLATION LEVEL SERIALIZABLE"
_READ_COMMITTED = "BEGIN ISOLATION LEVEL READ COMMITTED"
# Writes other replicas learn of by kind alone; the secret writes name their secret (`_announcing`).
_KIND_BY_OP = {
    "put_token": notify.TOKEN,
    "delete_token": notify.TOKEN,
    "put_policy_document": notify.POLICY,
    "delete_policy_document": notify.POLICY,
}
_SECRET_OPS = frozenset({"insert_version", "set_versions_deleted", "destroy_versions", "delete_secret", "update_meta"})

_T = TypeVar("_T")


class PostgresStore(SqlStore):
    """A `SecretStore` in one PostgreSQL database. Safe to share between threads, and between processes and
    hosts (each with its own pool); `close()` when done."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        acquire_timeout_s: float = DEFAULT_ACQUIRE_TIMEOUT_S,
    ) -> None:
        if not 1 <= pool_size <= MAX_POOL_SIZE:
            raise InvalidArgument(f"pool size must be 1..{MAX_POOL_SIZE}, got {pool_size}")
        self._target: PgTarget = parse_url(url, password=password)
        self._acquire_timeout_s = acquire_timeout_s
        self._origin = notify.new_origin()
        self._announced = threading.local()  # the secret the running write names in its NOTIFY
        self._checking = threading.Lock()
        self._reruns = 0
        self._reruns_lock = threading.Lock()
        kwargs = self._target.connect_kwargs()
        kwargs["connect_timeout"] = max(1, round(connect_timeout_s))
        kwargs["application_name"] = "secretsvc"
        self._probe_kwargs = {**kwargs, "connect_timeout": 2}
        self._listen_kwargs = dict(kwargs)
        # The first connection is made here, not by the pool, so its failure says why (refused, no such
        # database, authentication) instead of only "timed out".
        try:
            first = psycopg.connect(self._target.url, **kwargs)
        except psycopg.Error as exc:
            raise connect_error(self._target.display, exc) from None
        try:
            migrate(first, self._target.display)
        except psycopg.Error as exc:
            raise storage_error("open", self._target.display, exc) from None
        finally:
            first.close()
        self._pool = psycopg_pool.ConnectionPool(
            self._target.url,
            kwargs=kwargs,
            min_size=1,
            max_size=pool_size,
            timeout=acquire_timeout_s,
            name="secretsvc-store",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except psycopg_pool.PoolTimeout:
            self._pool.close()
            raise StorageError(
                f"cannot open a connection pool to {self._target.display}",
                public_reason="storage is unavailable; retry",
            ) from None

    @property
    def location(self) -> str:
        """The database, as a URL without any password."""
        return self._target.display

    @property
    def write_reruns(self) -> int:
        """Writes run again since open because PostgreSQL aborted them (serialization failure, deadlock)."""
        return self._reruns

    def change_listener(self) -> notify.PgChangeListener:
        """A listener for the changes other processes make to this database (not started)."""
        return notify.PgChangeListener(self._target.url, self._listen_kwargs, self.location, self._origin)

    # --- notifications -------------------------------------------------------------------------------------
    @contextmanager
    def _announcing(self, namespace: str, path: str) -> Iterator[None]:
        self._announced.key = (namespace, path)
        try:
            yield
        finally:
            self._announced.key = None

    def _notice(self, op: str) -> str | None:
        if op in _SECRET_OPS:
            key: tuple[str, str] | None = getattr(self._announced, "key", None)
            # Without a named secret (a write added without `_announcing`), replicas re-read all they watch.
            return notify.payload(self._origin, notify.SECRET, *(key or ("", "")))
        kind = _KIND_BY_OP.get(op)
        return None if kind is None else notify.payload(self._origin, kind)

    def insert_version(
        self,
        namespace: str,
        path: str,
        version: int,
        envelope: bytes,
        *,
        expected_version: int,
        now: float,
        max_versions: int,
        custom_metadata: Mapping[str, str] | None = None,
        remember_max_versions: bool = False,
        fingerprint: Fingerprint | None = None,
    ) -> list[int]:
        with self._announcing(namespace, path):
            return super().insert_version(
                namespace,
                path,
                version,
                envelope,
                expected_version=expected_version,
                now=now,
                max_versions=max_versions,
                custom_metadata=custom_metadata,
                remember_max_versions=remember_max_versions,
                fingerprint=fingerprint,
            )

    def set_versions_deleted(
        self, namespace: str, path: str, versions: Sequence[int], *, deleted: bool, now: float
    ) -> list[int]:
        with self._announcing(namespace, path):
            return super().set_versions_deleted(namespace, path, versions, deleted=deleted, now=now)

    def destroy_versions(self, namespace: str, path: str, versions: Sequence[int], *, now: float) -> list[int]:
        with self._announcing(namespace, path):
            return super().destroy_versions(namespace, path, versions, now=now)

    def delete_secret(self, namespace: str, path: str) -> bool:
        with self._announcing(namespace, path):
            return super().delete_secret(namespace, path)

    def update_meta(
        self,
        namespace: str,
        path: str,
        *,
        now: float,
        max_versions: int | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> SecretMeta:
        with self._announcing(namespace, path):
            return super().update_meta(
                namespace, path, now=now, max_versions=max_versions, custom_metadata=custom_metadata
            )

    # --- transactions --------------------------------------------------------------------------------------
    _FOR_UPDATE = " FOR UPDATE"

    def _write(self, op: str, fn: Callable[[Conn], _T]) -> _T:
        return self._run_write(op, fn, _SERIALIZABLE)

    def _write_row_locked(self, op: str, fn: Callable[[Conn], _T]) -> _T:
        # `fn` serializes itself on its secret's row (`SqlStore._write_row_locked`); under SERIALIZABLE its
        # reads of absent keys and index ranges would also take page-grained predicate locks, which writers
        # of different new secrets collide on and abort each other over.
        return self._run_write(op, fn, _READ_COMMITTED)

    def _run_write(self, op: str, fn: Callable[[Conn], _T], begin: str) -> _T:
        notice = self._notice(op)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                with self._connection(op, begin) as conn:
                    result = fn(conn)
                    if notice is not None:
                        # Delivered at COMMIT, and only if the write commits.
                        conn.execute("SELECT pg_notify(?, ?)", (notify.CHANNEL, notice))
                    return result
            except _RETRY_STATES:
                with self._reruns_lock:
                    self._reruns += 1
                # Short, growing, jittered pauses so writers that collided do not collide again in step.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # noqa: S311 - jitter, not secrets
        raise StorageError(
            f"{op}: {MAX_WRITE_ATTEMPTS} attempts at {self.location} lost to concurrent writers",
            public_reason="storage is busy; retry",
        )

    @contextmanager
    def _transaction(self, op: str) -> Iterator[Conn]:
        with self._connection(op, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") as conn:
            yield conn

    def _query_one(self, op: str, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._connection(op, None) as conn:
            row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
            return row

    @contextmanager
    def _connection(self, op: str, begin: str | None) -> Iterator[Conn]:
        """A pooled connection, inside a transaction opened with `begin` (None: autocommit statements).
        Serialization failures pass through for `_write` to retry; other psycopg errors become StorageError."""
        try:
            with self._pool.connection(timeout=self._acquire_timeout_s) as raw:
                if begin is None:
                    yield PgConn(raw)
                    return
                raw.execute(begin.encode())
                try:
                    yield PgConn(raw)
                    raw.execute(b"COMMIT")
                except BaseException:
                    with suppress(psycopg.Error):  # a broken connection has rolled back already
                        raw.execute(b"ROLLBACK")
                    raise
        except _RETRY_STATES:
            raise
        except psycopg.DataError:
            # Values the caller chose that PostgreSQL cannot hold (a NUL in a name looked up, say); written
            # values are checked before this, the same way for every backend.
            raise InvalidArgument(f"{op}: a name or value cannot be stored as PostgreSQL text") from None
        except psycopg_pool.PoolTimeout:
            raise self._pool_timeout(op) from None
        except (psycopg.Error, psycopg_pool.PoolClosed) as exc:
            if isinstance(exc, psycopg.OperationalError):
                self._check_idle()
            raise storage_error(op, self.location, exc) from None
        except UnicodeEncodeError:
            raise InvalidArgument(f"{op}: names and metadata must be valid UTF-8 text") from None

    def _check_idle(self) -> None:
        """A connection broke: the server may have restarted, and then every idle pooled connection is dead
        too. Checking them now (one at a time across threads) spares the next callers a failure each."""
        if not self._checking.acquire(blocking=False):
            return
        try:
            self._pool.check()
        except (psycopg.Error, psycopg_pool.PoolClosed):
            pass
        finally:
            self._checking.release()

    def _pool_timeout(self, op: str) -> StorageError:
        """No pooled connection came free in time: the pool is busy, or the server stopped answering and the
        pool is still trying to reconnect. One direct connection attempt tells which, for the caller's sake."""
        try:
            probe = psycopg.connect(self._target.url, **self._probe_kwargs)
        except psycopg.Error as exc:
            return StorageError(
                f"{op}: database {self.location} is unavailable "
                f"({getattr(exc, 'sqlstate', None) or type(exc).__name__})",
                public_reason="storage is unavailable; retry",
            )
        probe.close()
        return StorageError(
            f"{op}: no connection to {self.location} came free in time", public_reason="storage is busy; retry"
        )

    # --- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"
