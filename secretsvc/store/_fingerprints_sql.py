"""The SQL behind the stores' value fingerprints (MatchValues): functions run inside the store's
transactions. The fingerprints themselves are computed by the service (crypto/fingerprint.py); the store
only keeps them beside the versions they belong to and finds the versions a digest names.
"""

from __future__ import annotations

from collections.abc import Sequence

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.store import _columns as col
from secretsvc.store._dbapi import Conn
from secretsvc.store.base import (
    EnvelopeRef,
    Fingerprint,
    FingerprintHit,
    FingerprintKeyRecord,
    VersionState,
)

DIGEST_BYTES = 32
# Digests one lookup may name: the service asks one per candidate and fingerprint key version.
MAX_FINGERPRINT_LOOKUP = 10_000
# Digests bound into one statement: far below SQLite's variable limit on any build.
_CHUNK = 500
MAX_KEY_VERSION = 2**31 - 1
# Versions one lookup may answer with: a value shared by a great many versions (a default password written
# everywhere) must not make one answer unbounded.
MAX_FINGERPRINT_HITS = 10_000


def check_fingerprint(fingerprint: Fingerprint) -> None:
    if not isinstance(fingerprint, Fingerprint):
        raise InvalidArgument("a fingerprint must be a Fingerprint")
    check_key_version(fingerprint.key_version)
    if not isinstance(fingerprint.digest, bytes) or len(fingerprint.digest) != DIGEST_BYTES:
        raise InvalidArgument(f"a fingerprint digest must be {DIGEST_BYTES} bytes")


def check_key_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_KEY_VERSION:
        raise InvalidArgument(f"fingerprint key version must be 1..{MAX_KEY_VERSION}, got {version!r}")


def insert(conn: Conn, namespace: str, path: str, version: int, fingerprint: Fingerprint) -> None:
    conn.execute(
        "INSERT INTO secret_fingerprints (namespace, path, version, key_version, fingerprint) VALUES (?, ?, ?, ?, ?)",
        (namespace, path, version, fingerprint.key_version, fingerprint.digest),
    )


def insert_if_kept(conn: Conn, namespace: str, path: str, version: int, fingerprint: Fingerprint) -> bool:
    cursor = conn.execute(
        "INSERT INTO secret_fingerprints (namespace, path, version, key_version, fingerprint)"
        " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM secret_versions"
        " WHERE namespace = ? AND path = ? AND version = ? AND envelope IS NOT NULL)"
        " ON CONFLICT (namespace, path, version) DO NOTHING",
        (namespace, path, version, fingerprint.key_version, fingerprint.digest, namespace, path, version),
    )
    return cursor.rowcount == 1


def forget(conn: Conn, namespace: str, path: str, versions: Sequence[int]) -> None:
    conn.executemany(
        "DELETE FROM secret_fingerprints WHERE namespace = ? AND path = ? AND version = ?",
        [(namespace, path, v) for v in versions],
    )


def keys(conn: Conn) -> list[FingerprintKeyRecord]:
    return [
        FingerprintKeyRecord(
            col.integer(row[0], "fingerprint key version"),
            col.blob(row[1], "fingerprint key"),
            col.real(row[2], "creation time"),
        )
        for row in conn.execute("SELECT version, sealed_key, created_at FROM fingerprint_keys ORDER BY version")
    ]


def add_key(conn: Conn, version: int, sealed_key: bytes, now: float) -> FingerprintKeyRecord:
    conn.execute(
        "INSERT INTO fingerprint_keys (version, sealed_key, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (version) DO NOTHING",
        (version, sealed_key, now),
    )
    stored = next(k for k in keys(conn) if k.version == version)
    return stored


def find(conn: Conn, digests: Sequence[bytes]) -> list[FingerprintHit]:
    if len(digests) > MAX_FINGERPRINT_LOOKUP:
        raise LimitExceeded(f"more than MAX_FINGERPRINT_LOOKUP={MAX_FINGERPRINT_LOOKUP} fingerprints in one lookup")
    wanted = sorted({bytes(d) for d in digests if isinstance(d, bytes) and len(d) == DIGEST_BYTES})
    hits: list[FingerprintHit] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = (
            "SELECT f.fingerprint, f.namespace, f.path, f.version, v.state, s.current_version"  # noqa: S608 - only placeholders are formatted in
            " FROM secret_fingerprints f"
            " JOIN secret_versions v ON v.namespace = f.namespace AND v.path = f.path AND v.version = f.version"
            " JOIN secrets s ON s.namespace = f.namespace AND s.path = f.path"
            f" WHERE f.fingerprint IN ({marks}) AND v.state <> ?"
            " ORDER BY f.namespace, f.path, f.version LIMIT ?"
        )
        room = MAX_FINGERPRINT_HITS - len(hits)
        for row in conn.execute(sql, (*chunk, VersionState.DESTROYED.value, room + 1)):
            hits.append(
                FingerprintHit(
                    digest=col.blob(row[0], "fingerprint"),
                    namespace=col.text(row[1], "namespace"),
                    path=col.text(row[2], "path"),
                    version=col.integer(row[3], "version number"),
                    state=_state(row[4]),
                    current_version=col.integer(row[5], "current version"),
                )
            )
        if len(hits) > MAX_FINGERPRINT_HITS:
            raise LimitExceeded(f"the lookup names more than MAX_FINGERPRINT_HITS={MAX_FINGERPRINT_HITS} versions")
    return hits


def without_fingerprint(conn: Conn, after: tuple[str, str, int] | None, limit: int) -> list[EnvelopeRef]:
    sql = (
        "SELECT v.namespace, v.path, v.version, v.envelope FROM secret_versions v"
        " WHERE v.envelope IS NOT NULL AND NOT EXISTS (SELECT 1 FROM secret_fingerprints f"
        " WHERE f.namespace = v.namespace AND f.path = v.path AND f.version = v.version)"
    )
    params: tuple[object, ...] = ()
    if after is not None:
        sql += " AND (v.namespace, v.path, v.version) > (?, ?, ?)"
        params = after
    sql += " ORDER BY v.namespace, v.path, v.version LIMIT ?"
    return [
        EnvelopeRef(
            "secret",
            col.text(row[0], "namespace"),
            col.text(row[1], "path"),
            col.integer(row[2], "version number"),
            col.blob(row[3], "envelope"),
        )
        for row in conn.execute(sql, (*params, limit))
    ]


def _state(value: object) -> VersionState:
    try:
        return VersionState(value)
    except ValueError:
        raise col.damaged("version state") from None
