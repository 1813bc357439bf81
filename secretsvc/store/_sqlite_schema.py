"""The SQLite schema and its forward-only migrations.

`MIGRATIONS[n]` takes a database from schema version n to n + 1; the version lives in `schema_version`.
Migrations only ever move forward: a database newer than this code is refused rather than guessed at. The
DDL sticks to types and constraints PostgreSQL shares (TEXT, INTEGER, REAL/double, BLOB/bytea), so the
PostgreSQL backend can mirror it table for table.
"""

from __future__ import annotations

import sqlite3

from secretsvc.store._schema import damaged_version, newer_than_code, not_ours

_V1: tuple[str, ...] = (
    """CREATE TABLE secrets (
        namespace        TEXT    NOT NULL,
        path             TEXT    NOT NULL,
        current_version  INTEGER NOT NULL CHECK (current_version >= 1),
        max_versions     INTEGER NOT NULL CHECK (max_versions >= 0),
        custom_metadata  TEXT    NOT NULL,
        created_at       REAL    NOT NULL,
        updated_at       REAL    NOT NULL,
        PRIMARY KEY (namespace, path)
    )""",
    """CREATE TABLE secret_versions (
        namespace     TEXT    NOT NULL,
        path          TEXT    NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        state         TEXT    NOT NULL CHECK (state IN ('active', 'deleted', 'destroyed')),
        envelope      BLOB,
        created_at    REAL    NOT NULL,
        deleted_at    REAL,
        destroyed_at  REAL,
        PRIMARY KEY (namespace, path, version),
        FOREIGN KEY (namespace, path) REFERENCES secrets (namespace, path) ON DELETE CASCADE,
        CHECK ((state = 'destroyed') = (envelope IS NULL))
    )""",
    """CREATE TABLE transit_keys (
        name                    TEXT    NOT NULL PRIMARY KEY,
        created_at              REAL    NOT NULL,
        min_decryption_version  INTEGER NOT NULL CHECK (min_decryption_version >= 1)
    )""",
    """CREATE TABLE transit_key_versions (
        name              TEXT    NOT NULL,
        version           INTEGER NOT NULL CHECK (version >= 1),
        wrapped_material  BLOB    NOT NULL,
        created_at        REAL    NOT NULL,
        PRIMARY KEY (name, version),
        FOREIGN KEY (name) REFERENCES transit_keys (name) ON DELETE CASCADE
    )""",
    """CREATE TABLE tokens (
        token_id    TEXT NOT NULL PRIMARY KEY,
        name        TEXT NOT NULL,
        token_hash  BLOB NOT NULL,
        created_at  REAL NOT NULL,
        policies    TEXT NOT NULL
    )""",
)

# Which key-encryption keys wrap stored data, so a start with a missing or different keyring is refused.
_V2: tuple[str, ...] = (
    """CREATE TABLE kek_versions (
        key_id         TEXT    NOT NULL,
        version        INTEGER NOT NULL CHECK (version >= 1),
        first_used_at  REAL    NOT NULL,
        PRIMARY KEY (key_id, version)
    )""",
)

# Tokens expire, and are revoked by name, so names are unique.
_V3: tuple[str, ...] = (
    "ALTER TABLE tokens ADD COLUMN expires_at REAL",
    "CREATE UNIQUE INDEX tokens_by_name ON tokens (name)",
)

# Policy documents managed over the API. `policy_generation` counts every change, so each replica sharing the
# database notices one by reading a single row.
_V4: tuple[str, ...] = (
    """CREATE TABLE policy_documents (
        name        TEXT    NOT NULL PRIMARY KEY,
        format      TEXT    NOT NULL CHECK (format IN ('yaml', 'json')),
        content     BLOB    NOT NULL,
        revision    INTEGER NOT NULL CHECK (revision >= 1),
        updated_at  REAL    NOT NULL
    )""",
    "CREATE TABLE policy_generation (generation INTEGER NOT NULL CHECK (generation >= 0))",
    "INSERT INTO policy_generation (generation) VALUES (0)",
)

# Keyed fingerprints of stored values (MatchValues): the fingerprint key, sealed under the root KEK, and one
# fingerprint per active or deleted version. A version's fingerprint goes with its row (pruning, removal of the
# secret) through the foreign key; destroying a version deletes it explicitly. Versions written before this
# migration have none until the service's backfill computes them.
_V5: tuple[str, ...] = (
    """CREATE TABLE fingerprint_keys (
        version     INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),
        sealed_key  BLOB    NOT NULL,
        created_at  REAL    NOT NULL
    )""",
    """CREATE TABLE secret_fingerprints (
        namespace    TEXT    NOT NULL,
        path         TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        key_version  INTEGER NOT NULL,
        fingerprint  BLOB    NOT NULL CHECK (length(fingerprint) = 32),
        PRIMARY KEY (namespace, path, version),
        FOREIGN KEY (namespace, path, version) REFERENCES secret_versions (namespace, path, version)
            ON DELETE CASCADE,
        FOREIGN KEY (key_version) REFERENCES fingerprint_keys (version)
    )""",
    "CREATE INDEX secret_fingerprints_by_value ON secret_fingerprints (fingerprint)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)
LATEST_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, location: str) -> int:
    """Bring the database up to `LATEST_VERSION` in one transaction; returns the version found.

    `conn` must be in autocommit mode (isolation_level=None); the caller maps sqlite3 errors.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _current_version(conn, location)
        if found > LATEST_VERSION:
            raise newer_than_code(location, found, LATEST_VERSION)
        if found == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for version in range(found, LATEST_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def _current_version(conn: sqlite3.Connection, location: str) -> int:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise not_ours(location)
        return 0
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if len(rows) != 1 or not isinstance(rows[0][0], int) or rows[0][0] < 1:
        raise damaged_version(location)
    version: int = rows[0][0]
    return version
