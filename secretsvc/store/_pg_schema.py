"""The PostgreSQL schema and its forward-only migrations, step for step the same as SQLite's.

`MIGRATIONS[n]` takes a database from schema version n to n + 1, as `_sqlite_schema.MIGRATIONS[n]` does, so
one schema version means the same tables on both backends (a test keeps the two lists the same length).
Types: names and JSON are `TEXT COLLATE "C"` (byte order, as SQLite compares them), versions `BIGINT`,
ciphertext `BYTEA`, times `DOUBLE PRECISION` seconds since the epoch (the float the service passed, stored
exactly).

Several replicas may start at once against one database: `migrate` takes a transaction-level advisory lock
before it reads the schema version, so one replica migrates and the others wait, then find the work done.
PostgreSQL DDL is transactional, so a migration that fails leaves the database as it was.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import psycopg

from secretsvc.store._schema import damaged_version, newer_than_code, not_ours

# pg_advisory_xact_lock key for schema changes ("secretsv" in ASCII); advisory locks are per database.
MIGRATION_LOCK_KEY = 0x7365637265747376

_V1: tuple[str, ...] = (
    """CREATE TABLE secrets (
        namespace        TEXT COLLATE "C"  NOT NULL,
        path             TEXT COLLATE "C"  NOT NULL,
        current_version  BIGINT            NOT NULL CHECK (current_version >= 1),
        max_versions     BIGINT            NOT NULL CHECK (max_versions >= 0),
        custom_metadata  TEXT COLLATE "C"  NOT NULL,
        created_at       DOUBLE PRECISION  NOT NULL,
        updated_at       DOUBLE PRECISION  NOT NULL,
        PRIMARY KEY (namespace, path)
    )""",
    """CREATE TABLE secret_versions (
        namespace     TEXT COLLATE "C"  NOT NULL,
        path          TEXT COLLATE "C"  NOT NULL,
        version       BIGINT            NOT NULL CHECK (version >= 1),
        state         TEXT COLLATE "C"  NOT NULL CHECK (state IN ('active', 'deleted', 'destroyed')),
        envelope      BYTEA,
        created_at    DOUBLE PRECISION  NOT NULL,
        deleted_at    DOUBLE PRECISION,
        destroyed_at  DOUBLE PRECISION,
        PRIMARY KEY (namespace, path, version),
        FOREIGN KEY (namespace, path) REFERENCES secrets (namespace, path) ON DELETE CASCADE,
        CHECK ((state = 'destroyed') = (envelope IS NULL))
    )""",
    """CREATE TABLE transit_keys (
        name                    TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
        created_at              DOUBLE PRECISION  NOT NULL,
        min_decryption_version  BIGINT            NOT NULL CHECK (min_decryption_version >= 1)
    )""",
    """CREATE TABLE transit_key_versions (
        name              TEXT COLLATE "C"  NOT NULL,
        version           BIGINT            NOT NULL CHECK (version >= 1),
        wrapped_material  BYTEA             NOT NULL,
        created_at        DOUBLE PRECISION  NOT NULL,
        PRIMARY KEY (name, version),
        FOREIGN KEY (name) REFERENCES transit_keys (name) ON DELETE CASCADE
    )""",
    """CREATE TABLE tokens (
        token_id    TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
        name        TEXT COLLATE "C"  NOT NULL,
        token_hash  BYTEA             NOT NULL,
        created_at  DOUBLE PRECISION  NOT NULL,
        policies    TEXT COLLATE "C"  NOT NULL
    )""",
)

_V2: tuple[str, ...] = (
    """CREATE TABLE kek_versions (
        key_id         TEXT COLLATE "C"  NOT NULL,
        version        BIGINT            NOT NULL CHECK (version >= 1),
        first_used_at  DOUBLE PRECISION  NOT NULL,
        PRIMARY KEY (key_id, version)
    )""",
)

_V3: tuple[str, ...] = (
    "ALTER TABLE tokens ADD COLUMN expires_at DOUBLE PRECISION",
    "CREATE UNIQUE INDEX tokens_by_name ON tokens (name)",
)

_V4: tuple[str, ...] = (
    """CREATE TABLE policy_documents (
        name        TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
        format      TEXT COLLATE "C"  NOT NULL CHECK (format IN ('yaml', 'json')),
        content     BYTEA             NOT NULL,
        revision    BIGINT            NOT NULL CHECK (revision >= 1),
        updated_at  DOUBLE PRECISION  NOT NULL
    )""",
    "CREATE TABLE policy_generation (generation BIGINT NOT NULL CHECK (generation >= 0))",
    "INSERT INTO policy_generation (generation) VALUES (0)",
)

_V5: tuple[str, ...] = (
    """CREATE TABLE fingerprint_keys (
        version     BIGINT            NOT NULL PRIMARY KEY CHECK (version >= 1),
        sealed_key  BYTEA             NOT NULL,
        created_at  DOUBLE PRECISION  NOT NULL
    )""",
    """CREATE TABLE secret_fingerprints (
        namespace    TEXT COLLATE "C"  NOT NULL,
        path         TEXT COLLATE "C"  NOT NULL,
        version      BIGINT            NOT NULL,
        key_version  BIGINT            NOT NULL,
        fingerprint  BYTEA             NOT NULL CHECK (octet_length(fingerprint) = 32),
        PRIMARY KEY (namespace, path, version),
        FOREIGN KEY (namespace, path, version) REFERENCES secret_versions (namespace, path, version)
            ON DELETE CASCADE,
        FOREIGN KEY (key_version) REFERENCES fingerprint_keys (version)
    )""",
    "CREATE INDEX secret_fingerprints_by_value ON secret_fingerprints (fingerprint)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)
LATEST_VERSION = len(MIGRATIONS)


def migrate(conn: psycopg.Connection[Any], location: str) -> int:
    """Bring the database up to `LATEST_VERSION` in one transaction under the migration lock; returns the
    version found. `conn` must be in autocommit mode; the caller maps psycopg errors."""
    conn.execute("BEGIN")
    try:
        # Taken before the version is read: a replica that waited here reads what the winner committed.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        found = _current_version(conn, location)
        if found > LATEST_VERSION:
            raise newer_than_code(location, found, LATEST_VERSION)
        if found == 0:
            conn.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for version in range(found, LATEST_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement.encode())
            conn.execute("UPDATE schema_version SET version = %s", (version + 1,))
        conn.execute("COMMIT")
    except BaseException:
        with suppress(psycopg.Error):  # a broken connection has rolled back already
            conn.execute("ROLLBACK")
        raise
    return found


def schema_version(conn: psycopg.Connection[Any], location: str) -> int:
    """The schema version of the database (0: empty), without changing anything."""
    return _current_version(conn, location)


def _current_version(conn: psycopg.Connection[Any], location: str) -> int:
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    if "schema_version" not in tables:
        if tables:
            raise not_ours(location)
        return 0
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if len(rows) != 1 or not isinstance(rows[0][0], int) or rows[0][0] < 1:
        raise damaged_version(location)
    version: int = rows[0][0]
    return version
