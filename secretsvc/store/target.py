"""Which store a command opens: the `--store` setting, its password, and opening it.

`--store` (config `store`, $SECRETSVC_STORE) is empty for the embedded default (SQLite in the data
directory), `sqlite:PATH` for a SQLite file elsewhere, or `postgresql://user@host[:port]/database[?...]`.
The PostgreSQL password never travels on the command line or in the URL: it is read from
`--store-password-file` (config `store_password_file`), else $SECRETSVC_STORE_PASSWORD, else libpq finds it
in PGPASSFILE or ~/.pgpass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from secretsvc.boundedio import read_bounded
from secretsvc.errors import ConfigError, InvalidArgument
from secretsvc.store.base import SecretStore

# The gRPC server's default worker count: a call never waits for a connection while threads are free.
DEFAULT_POOL_SIZE = 16
URL_SCHEMES = ("postgresql://", "postgres://")
# A password file holds one line; anything longer is not a password file.
MAX_PASSWORD_BYTES = 4096
PASSWORD_ENV = "SECRETSVC_STORE_PASSWORD"  # noqa: S105 (the variable's name, not a password)
SQLITE_PREFIX = "sqlite:"
MAX_STORE_SETTING_LENGTH = 4096


def is_postgres_url(value: str) -> bool:
    return value.startswith(URL_SCHEMES)


# psycopg is imported only for a PostgreSQL store (`_pg_conn`, below): the embedded default, and the supervisor of
# worker processes, never load it.


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """A checked store setting: `kind` is "sqlite" or "postgresql"."""

    kind: str
    location: str  # SQLite: the file ("" for the data directory's); PostgreSQL: the URL, without password
    password: str | None = field(default=None, repr=False)
    pool_size: int = DEFAULT_POOL_SIZE  # PostgreSQL: connections this process opens at most

    def describe(self) -> str:
        if self.kind == "sqlite":
            return self.location or "SQLite in the data directory"
        from secretsvc.store._pg_conn import parse_url

        return parse_url(self.location).display


DEFAULT = StoreConfig("sqlite", "")


def parse_store(value: str, origin: str, *, password: str | None = None, pool_size: int = DEFAULT_POOL_SIZE,
                ) -> StoreConfig:
    """Check a store setting given at `origin` (for messages). Raises ConfigError."""
    if len(value) > MAX_STORE_SETTING_LENGTH:
        raise ConfigError(f"{origin}: store setting longer than {MAX_STORE_SETTING_LENGTH} characters")
    if value in {"", "sqlite"}:
        return DEFAULT
    if value.startswith(SQLITE_PREFIX):
        path = value[len(SQLITE_PREFIX) :]
        if not path:
            raise ConfigError(f"{origin}: sqlite: needs a file path (sqlite:/var/lib/secretsvc/secretsvc.db)")
        return StoreConfig("sqlite", path)
    if is_postgres_url(value):
        from secretsvc.store._pg_conn import parse_url

        try:
            parse_url(value, password=password)
        except InvalidArgument as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        return StoreConfig("postgresql", value, password, pool_size)
    raise ConfigError(
        f"{origin}: store must be empty (SQLite in the data directory), sqlite:PATH or postgresql://user@host/database"
    )


def read_password(password_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """The store password: the file's first line, else $SECRETSVC_STORE_PASSWORD, else None (libpq's own
    PGPASSFILE / ~/.pgpass then apply)."""
    if password_file is not None:
        raw = read_bounded(
            password_file,
            MAX_PASSWORD_BYTES,
            what="store password file",
            limit_name="MAX_PASSWORD_BYTES",
            error=ConfigError,
        )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"store password file {password_file} is not UTF-8 text") from None
        password = text.split("\n", 1)[0].rstrip("\r")
        if not password:
            raise ConfigError(f"store password file {password_file} is empty")
        return password
    return environ.get(PASSWORD_ENV) or None


def load(value: str, origin: str, password_file: Path | None, environ: Mapping[str, str], *,
         pool_size: int = DEFAULT_POOL_SIZE) -> StoreConfig:
    """The store setting with its password resolved; a password source for a SQLite store is an error."""
    password = read_password(password_file, environ) if is_postgres_url(value) else None
    config = parse_store(value, origin, password=password, pool_size=pool_size)
    if config.kind == "sqlite" and password_file is not None:
        raise ConfigError(f"store_password_file is set but the store is SQLite ({config.describe()})")
    return config


def open_store(config: StoreConfig, default_sqlite: Path) -> SecretStore:
    """Open the configured store (migrating its schema); `default_sqlite` is the data directory's database."""
    if config.kind == "postgresql":
        from secretsvc.store.postgres import PostgresStore

        return PostgresStore(config.location, password=config.password, pool_size=config.pool_size)
    from secretsvc.store.sqlite import SqliteStore

    return SqliteStore(Path(config.location) if config.location else default_sqlite)
