"""PostgreSQL connections for `PostgresStore`: the store URL, the `?`-placeholder adapter, error mapping.

The URL names server, user and database only. A password in it is refused (URLs end up in process lists,
shell history and logs); it comes from a file, the environment, or libpq's own PGPASSFILE / ~/.pgpass.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from secretsvc.errors import CorruptRecord, InvalidArgument, StorageError
from secretsvc.store._dbapi import Cursor
from secretsvc.store.target import MAX_PASSWORD_BYTES, is_postgres_url

MAX_URL_LENGTH = 2048
# SQLSTATE classes and codes that mean the data on disk is damaged, or the disk is full.
_CORRUPT_STATES = frozenset({"XX001", "XX002"})
_FULL_STATES = frozenset({"53100"})


@dataclass(frozen=True, slots=True)
class PgTarget:
    """A parsed store URL: what to connect to, and a form of it safe to print."""

    url: str
    display: str
    password: str | None = field(default=None, repr=False)

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def parse_url(url: str, *, password: str | None = None) -> PgTarget:
    """Check a `postgresql://user@host[:port]/database[?param=value...]` URL. Raises InvalidArgument."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"store URL longer than {MAX_URL_LENGTH} characters")
    if not is_postgres_url(url):
        raise InvalidArgument("a PostgreSQL store URL starts with postgresql://")
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # The parser's message quotes the URL, which may hold a password: say only what is wrong.
        raise InvalidArgument("malformed PostgreSQL store URL") from None
    if "password" in params or "sslpassword" in params:
        raise InvalidArgument(
            "the store URL must not hold a password: put it in a file named by --store-password-file "
            "(store_password_file in the config file), in $SECRETSVC_STORE_PASSWORD, or in a PGPASSFILE"
        )
    if not params.get("dbname"):
        raise InvalidArgument("the PostgreSQL store URL must name a database (postgresql://user@host/DATABASE)")
    if password is not None and ("\x00" in password or len(password.encode("utf-8", "replace")) > MAX_PASSWORD_BYTES):
        raise InvalidArgument("the store password is not usable (NUL character, or too long)")
    display = f"postgresql://{params.get('user', '')}@{params.get('host', '')}"
    if params.get("port"):
        display += f":{params['port']}"
    display += f"/{params['dbname']}"
    return PgTarget(url=url, display=display, password=password)


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    # The shared statements use `?` and contain neither `?` nor `%` of their own.
    return sql.replace("%", "%%").replace("?", "%s")


class PgConn:
    """A psycopg connection that takes the shared SQL's `?` placeholders (`_dbapi.Conn`)."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(_translate(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(_translate(sql), [tuple(p) for p in parameters])
        return cursor


def storage_error(op: str, location: str, exc: BaseException) -> StorageError:
    """A StorageError for a failed psycopg call. The server's message can quote data, so only the SQLSTATE
    (or the kind of failure) goes into ours."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StorageError(
            f"{op}: no connection to {location} came free in time", public_reason="storage is busy; retry"
        )
    if isinstance(exc, psycopg_pool.PoolClosed):
        return StorageError(f"{op}: the store is closed")
    state = getattr(exc, "sqlstate", None) or ""
    if state in _CORRUPT_STATES:
        return CorruptRecord(
            f"{op}: database {location} reports damaged data ({state})", public_reason="storage is damaged"
        )
    if state in _FULL_STATES:
        return StorageError(f"{op}: disk full at {location} ({state})", public_reason="storage is full")
    if isinstance(exc, psycopg.OperationalError | pg_errors.AdminShutdown | pg_errors.CannotConnectNow):
        return StorageError(
            f"{op}: database {location} is unavailable ({state or type(exc).__name__})",
            public_reason="storage is unavailable; retry",
        )
    return StorageError(f"{op}: database {location} failed ({state or type(exc).__name__})")


def connect_error(location: str, exc: psycopg.Error) -> StorageError:
    """Why the first connection failed, for the operator: libpq's connection messages name the host and the
    reason (refused, no such database, authentication) and never the password."""
    first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return StorageError(
        f"cannot connect to {location}: {first_line[:300]}", public_reason="storage is unavailable; retry"
    )
