"""Typed readers for values read back from the database.

SQLite stores whatever a column is given, so a damaged or hand-edited row can hold text where a version number
belongs or an integer where an envelope belongs. Every value read back goes through one of these, and a value
of the wrong type is `CorruptRecord` (DATA_LOSS to callers), never a TypeError that surfaces as an internal
error. Under PostgreSQL's strict types the checks are cheap no-ops.
"""

from __future__ import annotations

import json

from secretsvc.errors import CorruptRecord

# Custom metadata and token policies are JSON in the database; a larger column means damage.
MAX_JSON_COLUMN_BYTES = 1024 * 1024


def damaged(what: str) -> CorruptRecord:
    return CorruptRecord(f"stored {what} is damaged")


def integer(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise damaged(what)
    return value


def real(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise damaged(what)
    return float(value)


def optional_real(value: object, what: str) -> float | None:
    return None if value is None else real(value, what)


def text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise damaged(what)
    return value


def blob(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise damaged(what)
    return bytes(value)


def optional_blob(value: object, what: str) -> bytes | None:
    return None if value is None else blob(value, what)


def json_value(value: object, what: str) -> object:
    if not isinstance(value, str) or len(value) > MAX_JSON_COLUMN_BYTES:
        raise damaged(what)
    try:
        parsed: object = json.loads(value)
    except (ValueError, RecursionError):
        raise damaged(what) from None
    return parsed
