"""SQLite-specific guarantees: durability settings, shredding on disk, corruption and foreign files,
schema versioning, and writers that hold the lock."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import pytest

from secretsvc.errors import StorageError
from secretsvc.store._sqlite_schema import LATEST_VERSION
from secretsvc.store.sqlite import SqliteStore

NS = "ns"
T0 = 1_700_000_000.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "secretsvc.db"


def on_disk(db_path: Path) -> bytes:
    """Everything SQLite keeps for this database: the main file, the WAL and the shared-memory index."""
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = db_path.with_name(db_path.name + suffix)
        if f.exists():
            data += f.read_bytes()
    return data


def pieces_on_disk(data: bytes, image: bytes, piece: int = 32) -> int:
    """How many `piece`-byte slices of `data` appear in `image`: a large blob is split across overflow
    pages, so it is never stored in one run."""
    return sum(data[i:i + piece] in image for i in range(0, len(data) - piece + 1, piece))


def test_connections_run_with_the_durability_settings(db_path: Path) -> None:
    with SqliteStore(db_path, busy_timeout_s=3.5) as store:
        settings = store.connection_settings()
    assert settings.journal_mode == "wal"
    assert settings.synchronous == 2  # FULL
    assert settings.foreign_keys is True
    assert settings.secure_delete is True
    assert settings.busy_timeout_ms == 3500


@pytest.mark.parametrize("size", [100, 20_000])  # in-page cell and overflow pages
def test_destroy_leaves_no_trace_of_the_envelope_on_disk(db_path: Path, size: int) -> None:
    rng = random.Random(size)
    doomed, kept = rng.randbytes(size), rng.randbytes(size)
    with SqliteStore(db_path) as store:
        store.insert_version(NS, "p", 1, doomed, expected_version=0, now=T0, max_versions=5)
        store.insert_version(NS, "p", 2, kept, expected_version=1, now=T0, max_versions=5)
        assert store.checkpoint()
        pieces = len(doomed) // 32
        assert pieces_on_disk(doomed, on_disk(db_path)) >= pieces * 9 // 10  # the check below can fail
        assert store.destroy_versions(NS, "p", [1], now=T0 + 1) == [1]
        # destroy_versions checkpoints by itself; no extra call here.
        image = on_disk(db_path)
        assert pieces_on_disk(doomed, image) == 0
        assert pieces_on_disk(kept, image) >= pieces * 9 // 10


def test_pruned_deleted_and_rewrapped_envelopes_are_overwritten(db_path: Path) -> None:
    rng = random.Random(31)
    first, second, other, rewrapped_from = (rng.randbytes(300) for _ in range(4))
    with SqliteStore(db_path) as store:
        store.insert_version(NS, "p", 1, first, expected_version=0, now=T0, max_versions=1)
        store.insert_version(NS, "q", 1, other, expected_version=0, now=T0, max_versions=1)
        store.insert_version(NS, "r", 1, rewrapped_from, expected_version=0, now=T0, max_versions=1)
        assert store.checkpoint()
        image = on_disk(db_path)
        assert all(pieces_on_disk(e, image) == 300 // 32 for e in (first, other, rewrapped_from))
        assert store.insert_version(NS, "p", 2, second, expected_version=1, now=T0, max_versions=1) == [1]
        assert store.delete_secret(NS, "q")
        ref = next(r for r in store.scan_envelopes(after=None, limit=10) if r.path == "r")
        assert store.replace_envelope(ref, rng.randbytes(300))
        assert store.checkpoint()
        image = on_disk(db_path)
    assert [pieces_on_disk(e, image) for e in (first, other, rewrapped_from)] == [0, 0, 0]
    assert second in image


def test_garbage_file_is_a_storage_error(db_path: Path) -> None:
    db_path.write_bytes(random.Random(32).randbytes(8192))
    with pytest.raises(StorageError, match="corrupt or not a database") as info:
        SqliteStore(db_path)
    assert not isinstance(info.value, sqlite3.Error)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_damage_after_creation_is_a_storage_error(db_path: Path) -> None:
    rng = random.Random(33)
    with SqliteStore(db_path) as store:
        for i in range(50):
            store.insert_version(NS, f"p{i}", 1, rng.randbytes(500), expected_version=0, now=T0,
                                 max_versions=1)
        assert store.checkpoint()
    raw = bytearray(db_path.read_bytes())
    page = 4096
    raw[page:] = rng.randbytes(len(raw) - page)  # keep the header, scramble every other page
    db_path.write_bytes(bytes(raw))
    with pytest.raises(StorageError, match="corrupt"):
        store = SqliteStore(db_path)
        try:
            for i in range(50):
                store.read_meta(NS, f"p{i}")
        finally:
            store.close()


def test_foreign_sqlite_database_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="not a secretsvc database"):
        SqliteStore(db_path)
    conn = sqlite3.connect(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert tables == {"photos"}  # refused without adding anything


def test_newer_schema_is_refused(db_path: Path) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer than this secretsvc supports"):
        SqliteStore(db_path)


def test_damaged_schema_version_is_refused(db_path: Path) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="damaged schema_version"):
        SqliteStore(db_path)


def test_reopening_keeps_one_schema_version_row(db_path: Path) -> None:
    for _ in range(3):
        SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    conn.close()
    assert rows == [(LATEST_VERSION,)]


def test_damaged_rows_are_storage_errors(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=2)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE secrets SET custom_metadata = '[1, 2]'")
    conn.commit()
    conn.close()
    with SqliteStore(db_path) as store, pytest.raises(StorageError, match="custom metadata"):
        store.read_meta(NS, "p")


def test_writer_holding_the_lock_blocks_writes_not_reads(db_path: Path) -> None:
    with SqliteStore(db_path, busy_timeout_s=0.3) as store:
        store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=5)
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE secrets SET updated_at = 0")
            # Readers see the last committed snapshot without waiting.
            assert store.read_version(NS, "p", None).envelope == b"\x01"
            meta = store.read_meta(NS, "p")
            assert meta is not None
            assert meta.updated_at == T0
            with pytest.raises(StorageError, match="locked") as info:
                store.insert_version(NS, "p", 2, b"\x02", expected_version=1, now=T0, max_versions=5)
            assert info.value.__cause__ is None
            other.execute("ROLLBACK")
        finally:
            other.close()
        # The failed write left nothing behind and the store carries on.
        store.insert_version(NS, "p", 2, b"\x02", expected_version=1, now=T0, max_versions=5)
        meta = store.read_meta(NS, "p")
        assert meta is not None
        assert meta.current_version == 2


def test_a_waiting_writer_proceeds_once_the_lock_is_released(db_path: Path) -> None:
    with SqliteStore(db_path, busy_timeout_s=20) as store:
        store.insert_version(NS, "p", 1, b"\x01", expected_version=0, now=T0, max_versions=5)
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        release.start()
        try:
            store.insert_version(NS, "p", 2, b"\x02", expected_version=1, now=T0, max_versions=5)
        finally:
            release.join()
            other.close()
        assert store.read_version(NS, "p", None).envelope == b"\x02"


def test_repr_names_the_file_only(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        assert repr(store) == f"SqliteStore({str(db_path)!r})"
        assert store.path == db_path
