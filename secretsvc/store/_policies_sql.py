"""The SQL behind the stores' policy documents: functions run inside the store's transactions.

Every change to `policy_documents` also bumps the one row of `policy_generation` in the same transaction,
so a server that sees the generation unchanged knows no document changed, in this process or any other.
"""

from __future__ import annotations

from typing import Any

from secretsvc.errors import InvalidArgument, VersionConflict
from secretsvc.store import _columns as col
from secretsvc.store._dbapi import Conn
from secretsvc.store.base import PolicyDocumentRecord

FORMATS = ("yaml", "json")
# A backstop above the policy package's own MAX_POLICY_FILE_BYTES, which the service checks first.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024

_COLUMNS = "name, format, content, revision, updated_at"


def check_document(fmt: str, content: bytes) -> None:
    if fmt not in FORMATS:
        raise InvalidArgument(f"policy document format must be one of {', '.join(FORMATS)}")
    if not isinstance(content, bytes) or len(content) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument(f"policy document content must be bytes, at most {MAX_DOCUMENT_BYTES}")


def check_expected_revision(expected: int | None) -> None:
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int) or expected < 0):
        raise InvalidArgument(f"expected revision must be None or 0 or more, got {expected!r}")


def record(row: tuple[Any, ...]) -> PolicyDocumentRecord:
    fmt = col.text(row[1], "policy document format")
    if fmt not in FORMATS:
        raise col.damaged("policy document format")
    return PolicyDocumentRecord(
        name=col.text(row[0], "policy document name"),
        format=fmt,
        content=col.blob(row[2], "policy document content"),
        revision=col.integer(row[3], "policy document revision"),
        updated_at=col.real(row[4], "policy document update time"),
    )


def _current_revision(conn: Conn, name: str) -> int:
    row = conn.execute("SELECT revision FROM policy_documents WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else col.integer(row[0], "policy document revision")


def _check_revision(name: str, expected: int | None, current: int) -> None:
    if expected is not None and expected != current:
        found = f"revision {current}" if current else "no such document"
        wanted = f"revision {expected}" if expected else "no such document"
        raise VersionConflict(f"policy document {name!r}: expected {wanted}, found {found}")


def _bump_generation(conn: Conn) -> None:
    conn.execute("UPDATE policy_generation SET generation = generation + 1")


def put(conn: Conn, name: str, fmt: str, content: bytes, expected: int | None,
        now: float) -> PolicyDocumentRecord:
    current = _current_revision(conn, name)
    _check_revision(name, expected, current)
    conn.execute(
        "INSERT INTO policy_documents (name, format, content, revision, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET format = excluded.format, content = excluded.content,"
        " revision = excluded.revision, updated_at = excluded.updated_at",
        (name, fmt, content, current + 1, now),
    )
    _bump_generation(conn)
    return PolicyDocumentRecord(name=name, format=fmt, content=content, revision=current + 1, updated_at=now)


def read(conn: Conn, name: str) -> PolicyDocumentRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM policy_documents WHERE name = ?", (name,)).fetchone()  # noqa: S608
    return None if row is None else record(row)


def list_all(conn: Conn) -> list[PolicyDocumentRecord]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM policy_documents ORDER BY name").fetchall()  # noqa: S608
    return [record(row) for row in rows]


def delete(conn: Conn, name: str, expected: int | None) -> bool:
    current = _current_revision(conn, name)
    _check_revision(name, expected, current)
    if not current:
        return False
    conn.execute("DELETE FROM policy_documents WHERE name = ?", (name,))
    _bump_generation(conn)
    return True


def generation(conn: Conn) -> int:
    rows = conn.execute("SELECT generation FROM policy_generation").fetchall()
    if len(rows) != 1:
        raise col.damaged("policy generation")
    return col.integer(rows[0][0], "policy generation")
