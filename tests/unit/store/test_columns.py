"""Values of the wrong type in the database are damage (CorruptRecord), whatever the column."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from secretsvc.errors import CorruptRecord, StorageError
from secretsvc.store import _columns as col
from secretsvc.store._sqlite_conn import storage_error


@pytest.mark.parametrize(
    ("reader", "value"),
    [
        (col.integer, "1"), (col.integer, 1.5), (col.integer, True), (col.integer, b"\x01"), (col.integer, None),
        (col.real, "1.0"), (col.real, None), (col.real, False),
        (col.text, 1), (col.text, b"x"),
        (col.blob, "text"), (col.blob, 5), (col.blob, None),
        (col.json_value, "{"), (col.json_value, "[" * 100_000), (col.json_value, b"{}"),
        (col.json_value, " " * (col.MAX_JSON_COLUMN_BYTES + 1)),
    ],
)
def test_wrong_types_are_corrupt_records(reader: object, value: object) -> None:
    with pytest.raises(CorruptRecord, match="stored thing is damaged"):
        reader(value, "thing")  # type: ignore[operator]


def test_right_types_pass() -> None:
    assert col.integer(3, "x") == 3
    assert col.real(3, "x") == 3.0
    assert col.optional_real(None, "x") is None
    assert col.blob(memoryview(b"ab"), "x") == b"ab"
    assert col.optional_blob(None, "x") is None
    assert col.json_value('{"a": ["b"]}', "x") == {"a": ["b"]}


def test_a_full_database_says_so_without_its_path(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (b BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.Error) as info:
        for _ in range(10):
            conn.execute("INSERT INTO t VALUES (?)", (b"x" * 4096,))
    conn.close()
    error = storage_error("insert_version", str(db), info.value)
    assert type(error) is StorageError
    assert str(db) in str(error)  # for the operator's log
    assert error.public_reason == "storage is full"


def test_a_corrupt_database_is_data_loss(tmp_path: Path) -> None:
    db = tmp_path / "noise.db"
    db.write_bytes(b"\x00not a database" * 512)
    with pytest.raises(sqlite3.DatabaseError) as info:
        sqlite3.connect(db).execute("SELECT * FROM sqlite_master").fetchall()
    error = storage_error("open", str(db), info.value)
    assert isinstance(error, CorruptRecord)
    assert error.public_reason == "storage is damaged"
    assert str(db) not in error.public_reason
