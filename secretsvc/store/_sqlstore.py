"""`SqlStore`: every `SecretStore` method written once, in the SQL that SQLite and PostgreSQL share.

The statements stay inside the common subset: no LIKE (prefixes are ranges), no LIMIT -1, no INSERT OR
REPLACE (upserts are ON CONFLICT ... DO UPDATE), row-value comparisons for resumable scans, `?` placeholders
(a PostgreSQL connection rewrites them). A backend supplies only how a transaction runs:

- `_write(op, fn)`: run `fn(conn)` as one serializable write transaction and return its result; an exception
  from `fn` rolls back everything it did. Check-and-set relies on this: the read of the current version and
  the write that depends on it must not interleave with another writer in any process.
- `_write_row_locked(op, fn)`: the same, for a write that serializes itself on the row it reads: `fn` first
  creates its secret's row or reads it with `_FOR_UPDATE`, and only then reads or writes what depends on it.
  A backend whose writers are already serial (SQLite) runs it as `_write`; one with row locks (PostgreSQL) may
  run it at a weaker isolation, where it neither takes nor collides on predicate locks.
- `_transaction(op)`: a read-only transaction, one snapshot across several statements.
- `_query_one(op, sql, params)`: the first row of one statement.
- `_erased()`: called after a commit that erased envelopes (SQLite checkpoints its WAL).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from secretsvc.errors import (
    AlreadyExists,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    StorageError,
    VersionConflict,
)
from secretsvc.store import _columns as col
from secretsvc.store import _fingerprints_sql as fp_sql
from secretsvc.store import _keyset
from secretsvc.store import _policies_sql as policy_sql
from secretsvc.store._dbapi import Conn
from secretsvc.store._records import (
    FINGERPRINT_KEY_KIND,
    KINDS,
    MAX_SCAN_BATCH,
    MAX_VERSION,
    SECRET_KIND,
    TOKEN_COLUMNS,
    TRANSIT_KIND,
    check_envelope,
    check_name,
    check_scan_limit,
    check_version_arg,
    check_versions,
    metadata_from_json,
    metadata_to_json,
    state,
    token_record,
)
from secretsvc.store.base import (
    EnvelopeRef,
    Fingerprint,
    FingerprintHit,
    FingerprintKeyRecord,
    ListPage,
    PolicyDocumentRecord,
    SecretHead,
    SecretMeta,
    StoredVersion,
    TokenRecord,
    TransitKeyRecord,
    TransitKeyVersion,
    VersionMeta,
    VersionState,
)

_T = TypeVar("_T")

# Creating a secret's row and finding it gone again right after (a writer at READ COMMITTED whose INSERT met
# a row that a concurrent delete then removed) can repeat only while other writers keep racing on that name.
MAX_CREATE_ATTEMPTS = 8


class SqlStore:
    """The shared body of the SQL backends; not used on its own."""

    # Appended to the read of a row that a `_write_row_locked` write depends on ("" where writers are serial).
    _FOR_UPDATE = ""

    def _write(self, op: str, fn: Callable[[Conn], _T]) -> _T:
        raise NotImplementedError

    def _write_row_locked(self, op: str, fn: Callable[[Conn], _T]) -> _T:
        return self._write(op, fn)

    def _transaction(self, op: str) -> AbstractContextManager[Conn]:
        raise NotImplementedError

    def _query_one(self, op: str, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def _erased(self) -> None:
        """Envelopes were erased by a committed write."""

    def close(self) -> None:
        raise NotImplementedError

    # --- secrets -------------------------------------------------------------------------------------------
    def read_meta(self, namespace: str, path: str) -> SecretMeta | None:
        with self._transaction("read_meta") as conn:
            return _load_meta(conn, namespace, path)

    def current_version(self, namespace: str, path: str) -> SecretHead | None:
        with self._transaction("current_version") as conn:
            row = conn.execute(
                "SELECT current_version, max_versions FROM secrets WHERE namespace = ? AND path = ?",
                (namespace, path),
            ).fetchone()
        if row is None:
            return None
        return SecretHead(
            current_version=col.integer(row[0], "current version"), max_versions=col.integer(row[1], "max_versions")
        )

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
        if expected_version < 0:
            raise InvalidArgument(f"expected version must be 0 or more, got {expected_version}")
        if version > MAX_VERSION:
            raise LimitExceeded(f"version {version} would exceed the maximum of {MAX_VERSION}")
        if version != expected_version + 1:
            raise InvalidArgument(f"version {version} does not follow the expected version {expected_version}")
        if max_versions <= 0:
            raise InvalidArgument(f"max_versions must be positive, got {max_versions}")
        check_envelope(envelope)
        check_name(namespace, path)
        if fingerprint is not None:
            fp_sql.check_fingerprint(fingerprint)
        metadata_json = None if custom_metadata is None else metadata_to_json(custom_metadata)
        envelope = bytes(envelope)

        def write(conn: Conn) -> list[int]:
            # The secret's row is claimed first (created, or read locked), so on PostgreSQL a concurrent
            # writer of the same secret waits here and then reads what this one committed.
            if expected_version == 0:
                created, actual = self._create_or_lock(conn, namespace, path, version, metadata_json, now)
            else:
                created, actual = False, self._lock_current(conn, namespace, path)
            if actual != expected_version:
                raise VersionConflict(
                    f"check-and-set failed for {namespace}/{path}: expected version {expected_version}, "
                    f"current version is {actual}"
                )
            if not created:
                # No metadata given keeps what is stored.
                conn.execute(
                    "UPDATE secrets SET current_version = ?, updated_at = ?,"
                    " custom_metadata = COALESCE(?, custom_metadata) WHERE namespace = ? AND path = ?",
                    (version, now, metadata_json, namespace, path),
                )
            if remember_max_versions:
                conn.execute(
                    "UPDATE secrets SET max_versions = ? WHERE namespace = ? AND path = ?",
                    (max_versions, namespace, path),
                )
            conn.execute(
                "INSERT INTO secret_versions (namespace, path, version, state, envelope, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (namespace, path, version, VersionState.ACTIVE.value, envelope, now),
            )
            if fingerprint is not None:
                fp_sql.insert(conn, namespace, path, version, fingerprint)
            # A secret this write created holds one version, and max_versions is at least 1: nothing to prune.
            return [] if created else _prune(conn, namespace, path, max_versions)

        return self._write_row_locked("insert_version", write)

    def _lock_current(self, conn: Conn, namespace: str, path: str) -> int:
        """The secret's current version (0: no such secret), its row locked until the transaction ends."""
        row = conn.execute(
            f"SELECT current_version FROM secrets WHERE namespace = ? AND path = ?{self._FOR_UPDATE}",  # noqa: S608
            (namespace, path),
        ).fetchone()
        return 0 if row is None else col.integer(row[0], "current version")

    def _lock_existing(self, conn: Conn, namespace: str, path: str) -> None:
        """Lock the secret's row, or raise NotFound. Every write to a secret's rows takes this lock first, as
        puts do, so two writers of one secret never hold each other's rows in opposite order (a deadlock)."""
        if self._lock_current(conn, namespace, path) == 0:
            raise NotFound(f"secret {namespace}/{path} does not exist")

    def _create_or_lock(
        self, conn: Conn, namespace: str, path: str, version: int, metadata_json: str | None, now: float
    ) -> tuple[bool, int]:
        """Create the secret's row at `version`: (True, 0); or, when it exists, (False, its current version)
        with the row locked. The INSERT comes first, so a new secret costs one statement, and it waits for a
        concurrent creator of the same name to finish instead of failing on its key."""
        for _ in range(MAX_CREATE_ATTEMPTS):
            inserted = conn.execute(
                "INSERT INTO secrets (namespace, path, current_version, max_versions, custom_metadata,"
                " created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (namespace, path) DO NOTHING",
                (namespace, path, version, metadata_json or "{}", now, now),
            ).rowcount
            if inserted == 1:
                return True, 0
            actual = self._lock_current(conn, namespace, path)
            if actual != 0:
                return False, actual
            # The row the INSERT met was deleted before the locked read (only at READ COMMITTED): again.
        raise StorageError(
            f"insert_version: {namespace}/{path} was created and deleted by others {MAX_CREATE_ATTEMPTS} times"
            " while this write ran",
            public_reason="storage is busy; retry",
        )

    def read_version(self, namespace: str, path: str, version: int | None) -> StoredVersion:
        check_version_arg(version)
        # The hot path of every get: one statement, which SQLite runs on one snapshot without BEGIN/COMMIT.
        found = self._query_one(
            "read_version",
            "SELECT v.version, v.state, v.envelope, v.created_at FROM secrets s JOIN secret_versions v"
            " ON v.namespace = s.namespace AND v.path = s.path"
            " AND v.version = COALESCE(?, s.current_version)"
            " WHERE s.namespace = ? AND s.path = ?",
            (version, namespace, path),
        )
        if found is None:
            exists = self._query_one(
                "read_version", "SELECT 1 FROM secrets WHERE namespace = ? AND path = ?", (namespace, path)
            )
            if exists is None:
                raise NotFound(f"secret {namespace}/{path} does not exist")
            if version is None:
                # The secret row names a current version whose row is gone: damage, not a caller error.
                raise col.damaged(f"current version of {namespace}/{path}")
            raise NotFound(f"secret {namespace}/{path} has no version {version}")
        return StoredVersion(
            namespace=namespace,
            path=path,
            version=col.integer(found[0], "version number"),
            state=state(found[1]),
            envelope=col.optional_blob(found[2], "envelope"),
            created_at=col.real(found[3], "creation time"),
        )

    def list_paths(self, namespace: str, prefix: str, *, page_size: int, page_token: str) -> ListPage:
        _keyset.check_page_size(page_size)
        _keyset.check_text(prefix, "prefix")
        after = _keyset.decode_page_token(page_token, prefix)
        upper = _keyset.prefix_upper_bound(prefix)
        clauses = ["namespace = ?", "path >= ?"]
        params: list[object] = [namespace, prefix]
        if upper is not None:
            clauses.append("path < ?")
            params.append(upper)
        if after is not None:
            clauses.append("path > ?")
            params.append(after)
        params.append(page_size + 1)
        sql = f"SELECT path FROM secrets WHERE {' AND '.join(clauses)} ORDER BY path LIMIT ?"  # noqa: S608
        with self._transaction("list_paths") as conn:
            paths = [col.text(row[0], "path") for row in conn.execute(sql, params)]
        if len(paths) <= page_size:
            return ListPage(paths=paths, next_page_token="")
        del paths[page_size:]
        return ListPage(paths=paths, next_page_token=_keyset.encode_page_token(paths[-1]))

    def set_versions_deleted(
        self, namespace: str, path: str, versions: Sequence[int], *, deleted: bool, now: float
    ) -> list[int]:
        wanted = check_versions(versions)
        if deleted:
            from_state, to_state, deleted_at = VersionState.ACTIVE, VersionState.DELETED, now
        else:
            from_state, to_state, deleted_at = VersionState.DELETED, VersionState.ACTIVE, None

        def write(conn: Conn) -> list[int]:
            self._lock_existing(conn, namespace, path)
            changed = [
                v
                for v in wanted
                if conn.execute(
                    "UPDATE secret_versions SET state = ?, deleted_at = ?"
                    " WHERE namespace = ? AND path = ? AND version = ? AND state = ?",
                    (to_state.value, deleted_at, namespace, path, v, from_state.value),
                ).rowcount
                == 1
            ]
            if changed:
                _touch(conn, namespace, path, now)
            return changed

        return self._write("set_versions_deleted", write)

    def destroy_versions(self, namespace: str, path: str, versions: Sequence[int], *, now: float) -> list[int]:
        wanted = check_versions(versions)

        def write(conn: Conn) -> list[int]:
            self._lock_existing(conn, namespace, path)
            destroyed = [
                v
                for v in wanted
                if conn.execute(
                    "UPDATE secret_versions SET state = ?, envelope = NULL, destroyed_at = ?"
                    " WHERE namespace = ? AND path = ? AND version = ? AND state <> ?",
                    (VersionState.DESTROYED.value, now, namespace, path, v, VersionState.DESTROYED.value),
                ).rowcount
                == 1
            ]
            if destroyed:
                fp_sql.forget(conn, namespace, path, destroyed)
                _touch(conn, namespace, path, now)
            return destroyed

        destroyed = self._write("destroy_versions", write)
        if destroyed:
            self._erased()
        return destroyed

    def delete_secret(self, namespace: str, path: str) -> bool:
        def write(conn: Conn) -> int:
            self._lock_current(conn, namespace, path)
            conn.execute("DELETE FROM secret_versions WHERE namespace = ? AND path = ?", (namespace, path))
            return int(conn.execute("DELETE FROM secrets WHERE namespace = ? AND path = ?", (namespace, path)).rowcount)

        removed = self._write("delete_secret", write)
        if removed:
            self._erased()
        return removed > 0

    def update_meta(
        self,
        namespace: str,
        path: str,
        *,
        now: float,
        max_versions: int | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> SecretMeta:
        if max_versions is not None and max_versions < 0:
            raise InvalidArgument(f"max_versions must be 0 (the default) or more, got {max_versions}")
        metadata_json = None if custom_metadata is None else metadata_to_json(custom_metadata)

        def write(conn: Conn) -> SecretMeta | None:
            self._lock_existing(conn, namespace, path)
            if max_versions is not None:
                conn.execute(
                    "UPDATE secrets SET max_versions = ? WHERE namespace = ? AND path = ?",
                    (max_versions, namespace, path),
                )
                if max_versions > 0:  # 0 defers to the service default, which only the service knows
                    _prune(conn, namespace, path, max_versions)
            if metadata_json is not None:
                conn.execute(
                    "UPDATE secrets SET custom_metadata = ? WHERE namespace = ? AND path = ?",
                    (metadata_json, namespace, path),
                )
            _touch(conn, namespace, path, now)
            return _load_meta(conn, namespace, path)

        meta = self._write("update_meta", write)
        assert meta is not None  # the row was checked inside the same transaction
        return meta

    # --- rewrap --------------------------------------------------------------------------------------------
    def scan_envelopes(self, *, after: tuple[str, str, str, int] | None, limit: int) -> list[EnvelopeRef]:
        check_scan_limit(limit)
        if after is not None and after[0] not in KINDS:
            raise InvalidArgument(f"unknown envelope kind {after[0]!r}")
        refs: list[EnvelopeRef] = []
        with self._transaction("scan_envelopes") as conn:
            if after is None or after[0] == SECRET_KIND:
                sql = "SELECT namespace, path, version, envelope FROM secret_versions WHERE envelope IS NOT NULL"
                params: tuple[object, ...] = ()
                if after is not None:
                    sql += " AND (namespace, path, version) > (?, ?, ?)"
                    params = (after[1], after[2], after[3])
                sql += " ORDER BY namespace, path, version LIMIT ?"
                for row in conn.execute(sql, (*params, limit)):
                    refs.append(
                        EnvelopeRef(
                            SECRET_KIND,
                            str(row[0]),
                            str(row[1]),
                            col.integer(row[2], "version number"),
                            col.blob(row[3], "envelope"),
                        )
                    )
            if len(refs) < limit and (after is None or after[0] != FINGERPRINT_KEY_KIND):
                sql = "SELECT name, version, wrapped_material FROM transit_key_versions"
                params = ()
                if after is not None and after[0] == TRANSIT_KIND:
                    sql += " WHERE (name, version) > (?, ?)"
                    params = (after[2], after[3])
                sql += " ORDER BY name, version LIMIT ?"
                for row in conn.execute(sql, (*params, limit - len(refs))):
                    refs.append(
                        EnvelopeRef(
                            TRANSIT_KIND,
                            "",
                            str(row[0]),
                            col.integer(row[1], "version number"),
                            col.blob(row[2], "transit key material"),
                        )
                    )
            if len(refs) < limit:
                # The fingerprint key is sealed under the root KEK too, so a rewrap moves it like the others.
                start = after[3] if after is not None and after[0] == FINGERPRINT_KEY_KIND else 0
                for key in fp_sql.keys(conn):
                    if key.version > start and len(refs) < limit:
                        refs.append(EnvelopeRef(FINGERPRINT_KEY_KIND, "", "", key.version, key.sealed_key))
        return refs

    def replace_envelope(self, ref: EnvelopeRef, new_envelope: bytes) -> bool:
        check_envelope(new_envelope)
        if ref.kind == SECRET_KIND:
            sql = (
                "UPDATE secret_versions SET envelope = ? WHERE namespace = ? AND path = ? AND version = ?"
                " AND envelope = ?"
            )
            params: tuple[object, ...] = (
                bytes(new_envelope),
                ref.namespace,
                ref.path,
                ref.version,
                bytes(ref.envelope),
            )
        elif ref.kind == TRANSIT_KIND:
            sql = (
                "UPDATE transit_key_versions SET wrapped_material = ? WHERE name = ? AND version = ?"
                " AND wrapped_material = ?"
            )
            params = (bytes(new_envelope), ref.path, ref.version, bytes(ref.envelope))
        elif ref.kind == FINGERPRINT_KEY_KIND:
            sql = "UPDATE fingerprint_keys SET sealed_key = ? WHERE version = ? AND sealed_key = ?"
            params = (bytes(new_envelope), ref.version, bytes(ref.envelope))
        else:
            raise InvalidArgument(f"unknown envelope kind {ref.kind!r}")
        return self._write("replace_envelope", lambda conn: conn.execute(sql, params).rowcount == 1)

    # --- value fingerprints (MatchValues) ------------------------------------------------------------------
    def fingerprint_keys(self) -> list[FingerprintKeyRecord]:
        with self._transaction("fingerprint_keys") as conn:
            return fp_sql.keys(conn)

    def add_fingerprint_key(self, version: int, sealed_key: bytes, *, now: float) -> FingerprintKeyRecord:
        fp_sql.check_key_version(version)
        check_envelope(sealed_key)
        sealed = bytes(sealed_key)
        return self._write("add_fingerprint_key", lambda conn: fp_sql.add_key(conn, version, sealed, now))

    def find_fingerprints(self, digests: Sequence[bytes]) -> list[FingerprintHit]:
        with self._transaction("find_fingerprints") as conn:
            return fp_sql.find(conn, digests)

    def versions_without_fingerprint(self, *, after: tuple[str, str, int] | None, limit: int) -> list[EnvelopeRef]:
        if not 1 <= limit <= MAX_SCAN_BATCH:
            raise InvalidArgument(f"scan limit must be 1..{MAX_SCAN_BATCH}, got {limit}")
        with self._transaction("versions_without_fingerprint") as conn:
            return fp_sql.without_fingerprint(conn, after, limit)

    def add_fingerprint(self, namespace: str, path: str, version: int, fingerprint: Fingerprint) -> bool:
        check_name(namespace, path)
        check_versions([version])
        fp_sql.check_fingerprint(fingerprint)
        return self._write(
            "add_fingerprint", lambda conn: fp_sql.insert_if_kept(conn, namespace, path, version, fingerprint)
        )

    # --- transit keys --------------------------------------------------------------------------------------
    def create_transit_key(self, name: str, wrapped_material: bytes, *, now: float) -> TransitKeyRecord:
        check_envelope(wrapped_material)
        check_name(name)

        def write(conn: Conn) -> TransitKeyRecord | None:
            if conn.execute("SELECT 1 FROM transit_keys WHERE name = ?", (name,)).fetchone() is not None:
                raise AlreadyExists(f"transit key {name!r} already exists")
            conn.execute(
                "INSERT INTO transit_keys (name, created_at, min_decryption_version) VALUES (?, ?, 1)",
                (name, now),
            )
            conn.execute(
                "INSERT INTO transit_key_versions (name, version, wrapped_material, created_at) VALUES (?, 1, ?, ?)",
                (name, bytes(wrapped_material), now),
            )
            return _load_transit_key(conn, name)

        record = self._write("create_transit_key", write)
        assert record is not None
        return record

    def read_transit_key(self, name: str) -> TransitKeyRecord | None:
        with self._transaction("read_transit_key") as conn:
            return _load_transit_key(conn, name)

    def add_transit_key_version(
        self, name: str, version: int, wrapped_material: bytes, *, now: float
    ) -> TransitKeyRecord:
        if version < 1:
            raise InvalidArgument(f"version must be 1 or more, got {version}")
        check_envelope(wrapped_material)

        def write(conn: Conn) -> TransitKeyRecord | None:
            latest = _transit_latest(conn, name)
            if version != latest + 1:
                raise VersionConflict(
                    f"transit key {name!r}: expected to add version {latest + 1}, got version {version}"
                )
            conn.execute(
                "INSERT INTO transit_key_versions (name, version, wrapped_material, created_at) VALUES (?, ?, ?, ?)",
                (name, version, bytes(wrapped_material), now),
            )
            return _load_transit_key(conn, name)

        record = self._write("add_transit_key_version", write)
        assert record is not None
        return record

    def set_transit_min_decryption_version(self, name: str, version: int) -> TransitKeyRecord:
        def write(conn: Conn) -> TransitKeyRecord | None:
            latest = _transit_latest(conn, name)
            if not 1 <= version <= latest:
                raise InvalidArgument(
                    f"transit key {name!r}: min decryption version must be between 1 and {latest}, got {version}"
                )
            conn.execute("UPDATE transit_keys SET min_decryption_version = ? WHERE name = ?", (version, name))
            return _load_transit_key(conn, name)

        record = self._write("set_transit_min_decryption_version", write)
        assert record is not None
        return record

    def list_transit_keys(self) -> list[str]:
        with self._transaction("list_transit_keys") as conn:
            return [
                col.text(row[0], "transit key name")
                for row in conn.execute("SELECT name FROM transit_keys ORDER BY name")
            ]

    # --- tokens --------------------------------------------------------------------------------------------
    def put_token(self, record: TokenRecord) -> None:
        check_name(record.token_id, record.name)
        policies = list(record.policies)
        if not all(isinstance(p, str) for p in policies):
            raise InvalidArgument("token policies must be strings")

        def write(conn: Conn) -> None:
            holder = conn.execute("SELECT token_id FROM tokens WHERE name = ?", (record.name,)).fetchone()
            if holder is not None and holder[0] != record.token_id:
                raise AlreadyExists(f"a token named {record.name!r} already exists")
            conn.execute(
                "INSERT INTO tokens (token_id, name, token_hash, created_at, policies, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (token_id) DO UPDATE SET name = excluded.name,"
                " token_hash = excluded.token_hash, created_at = excluded.created_at,"
                " policies = excluded.policies, expires_at = excluded.expires_at",
                (
                    record.token_id,
                    record.name,
                    bytes(record.token_hash),
                    record.created_at,
                    json.dumps(policies),
                    record.expires_at,
                ),
            )

        self._write("put_token", write)

    def find_token(self, token_id: str) -> TokenRecord | None:
        with self._transaction("find_token") as conn:
            row = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_id = ?", (token_id,)).fetchone()  # noqa: S608
        return None if row is None else token_record(row)

    def list_tokens(self) -> list[TokenRecord]:
        with self._transaction("list_tokens") as conn:
            rows = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name").fetchall()  # noqa: S608
        return [token_record(row) for row in rows]

    def delete_token(self, name: str) -> TokenRecord | None:
        check_name(name)

        def write(conn: Conn) -> TokenRecord | None:
            row = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE name = ?", (name,)).fetchone()  # noqa: S608
            if row is None:
                return None
            conn.execute("DELETE FROM tokens WHERE name = ?", (name,))
            return token_record(row)

        return self._write("delete_token", write)

    def count_tokens(self) -> int:
        with self._transaction("count_tokens") as conn:
            row = conn.execute("SELECT COUNT(*) FROM tokens").fetchone()
        return int(row[0])

    # --- policy documents ----------------------------------------------------------------------------------
    def put_policy_document(
        self, name: str, fmt: str, content: bytes, *, expected_revision: int | None, now: float
    ) -> PolicyDocumentRecord:
        check_name(name)
        policy_sql.check_document(fmt, content)
        policy_sql.check_expected_revision(expected_revision)
        return self._write(
            "put_policy_document", lambda conn: policy_sql.put(conn, name, fmt, content, expected_revision, now)
        )

    def read_policy_document(self, name: str) -> PolicyDocumentRecord | None:
        check_name(name)
        with self._transaction("read_policy_document") as conn:
            return policy_sql.read(conn, name)

    def list_policy_documents(self) -> list[PolicyDocumentRecord]:
        with self._transaction("list_policy_documents") as conn:
            return policy_sql.list_all(conn)

    def delete_policy_document(self, name: str, *, expected_revision: int | None) -> bool:
        check_name(name)
        policy_sql.check_expected_revision(expected_revision)
        return self._write("delete_policy_document", lambda conn: policy_sql.delete(conn, name, expected_revision))

    def policy_generation(self) -> int:
        with self._transaction("policy_generation") as conn:
            return policy_sql.generation(conn)

    # --- key-encryption keys -------------------------------------------------------------------------------
    def record_kek_version(self, key_id: str, version: int, *, now: float) -> None:
        check_name(key_id)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
            raise InvalidArgument(f"key version must be 1..{MAX_VERSION}, got {version!r}")

        def write(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO kek_versions (key_id, version, first_used_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key_id, version) DO NOTHING",
                (key_id, version, now),
            )

        self._write("record_kek_version", write)

    def kek_versions(self) -> list[tuple[str, int]]:
        with self._transaction("kek_versions") as conn:
            rows = conn.execute("SELECT key_id, version FROM kek_versions ORDER BY key_id, version").fetchall()
        return [
            (col.text(r[0], "key-encryption key id"), col.integer(r[1], "key-encryption key version")) for r in rows
        ]

    def holds_envelopes(self) -> bool:
        with self._transaction("holds_envelopes") as conn:
            return any(
                conn.execute(sql).fetchone() is not None
                for sql in (
                    "SELECT 1 FROM secret_versions WHERE envelope IS NOT NULL LIMIT 1",
                    "SELECT 1 FROM transit_key_versions LIMIT 1",
                    "SELECT 1 FROM fingerprint_keys LIMIT 1",
                )
            )


# --- helpers (run inside a transaction) -------------------------------------------------------------------
def _load_meta(conn: Conn, namespace: str, path: str) -> SecretMeta | None:
    row = conn.execute(
        "SELECT current_version, max_versions, custom_metadata, created_at, updated_at FROM secrets"
        " WHERE namespace = ? AND path = ?",
        (namespace, path),
    ).fetchone()
    if row is None:
        return None
    versions = [
        VersionMeta(
            version=col.integer(v[0], "version number"),
            state=state(v[1]),
            created_at=col.real(v[2], "creation time"),
            deleted_at=col.optional_real(v[3], "deletion time"),
            destroyed_at=col.optional_real(v[4], "destruction time"),
        )
        for v in conn.execute(
            "SELECT version, state, created_at, deleted_at, destroyed_at FROM secret_versions"
            " WHERE namespace = ? AND path = ? ORDER BY version",
            (namespace, path),
        )
    ]
    return SecretMeta(
        namespace=namespace,
        path=path,
        current_version=col.integer(row[0], "current version"),
        max_versions=col.integer(row[1], "max_versions"),
        created_at=col.real(row[3], "creation time"),
        updated_at=col.real(row[4], "update time"),
        custom_metadata=metadata_from_json(row[2]),
        versions=tuple(versions),
    )


def _prune(conn: Conn, namespace: str, path: str, max_versions: int) -> list[int]:
    kept = [
        col.integer(row[0], "version number")
        for row in conn.execute(
            "SELECT version FROM secret_versions WHERE namespace = ? AND path = ? ORDER BY version",
            (namespace, path),
        )
    ]
    removed = kept[: max(0, len(kept) - max_versions)]
    for version in removed:
        conn.execute(
            "DELETE FROM secret_versions WHERE namespace = ? AND path = ? AND version = ?",
            (namespace, path, version),
        )
    return removed


def _touch(conn: Conn, namespace: str, path: str, now: float) -> None:
    conn.execute("UPDATE secrets SET updated_at = ? WHERE namespace = ? AND path = ?", (now, namespace, path))


def _transit_latest(conn: Conn, name: str) -> int:
    if conn.execute("SELECT 1 FROM transit_keys WHERE name = ?", (name,)).fetchone() is None:
        raise NotFound(f"transit key {name!r} does not exist")
    row = conn.execute("SELECT MAX(version) FROM transit_key_versions WHERE name = ?", (name,)).fetchone()
    return 0 if row is None or row[0] is None else col.integer(row[0], "version number")


def _load_transit_key(conn: Conn, name: str) -> TransitKeyRecord | None:
    row = conn.execute("SELECT created_at, min_decryption_version FROM transit_keys WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    versions = tuple(
        TransitKeyVersion(
            version=col.integer(v[0], "version number"),
            wrapped_material=col.blob(v[1], "transit key material"),
            created_at=col.real(v[2], "creation time"),
        )
        for v in conn.execute(
            "SELECT version, wrapped_material, created_at FROM transit_key_versions WHERE name = ? ORDER BY version",
            (name,),
        )
    )
    return TransitKeyRecord(
        name=name,
        created_at=col.real(row[0], "creation time"),
        min_decryption_version=col.integer(row[1], "min_decryption_version"),
        versions=versions,
    )
