"""Group commit: writers that queue while a batch runs commit together in one transaction, each operation
keeps its own outcome (a conflict or a failure in the middle of a batch touches no other operation), every
result reaches the thread that asked for it, and a failed commit fails everyone in the batch and saves
nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsvc.errors import InvalidArgument, NotFound, StorageError, VersionConflict
from secretsvc.store import _sqlite_writer
from secretsvc.store._sqlite_conn import ConnectionPool
from secretsvc.store._sqlite_writer import GroupCommitter
from secretsvc.store.sqlite import SqliteStore

NS = "ns"


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[ConnectionPool]:
    opened = ConnectionPool(tmp_path / "gc.db", 10.0)
    with opened.connection("setup") as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY,"
            " parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    yield opened
    opened.close()


def _rows(pool: ConnectionPool) -> list[tuple[int, str]]:
    with pool.connection("read") as conn:
        return [(int(k), str(v)) for k, v in conn.execute("SELECT k, v FROM t ORDER BY k")]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class HeldLead:
    """Occupies the committer with one blocking write, so the writes started meanwhile queue up and then
    run as one batch. Start them one at a time with `submit` to fix their order in the queue."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer
        self._entered = threading.Event()
        self._release = threading.Event()
        self._threads: list[threading.Thread] = []
        self.outcomes: dict[int, tuple[str, Any]] = {}

        def blocker(conn: sqlite3.Connection) -> str:
            self._entered.set()
            self._release.wait(20)
            return "held"

        self._spawn(-1, "hold", blocker)
        assert self._entered.wait(20)

    def _spawn(self, n: int, op: str, fn: Callable[[sqlite3.Connection], Any]) -> None:
        def run() -> None:
            try:
                self.outcomes[n] = ("ok", self.committer.run(op, fn))
            except BaseException as exc:
                self.outcomes[n] = ("error", exc)

        thread = threading.Thread(target=run)
        self._threads.append(thread)
        thread.start()

    def submit(self, n: int, op: str, fn: Callable[[sqlite3.Connection], Any]) -> None:
        queued = self.committer.pending
        self._spawn(n, op, fn)
        _wait_for(lambda: self.committer.pending == queued + 1, f"write {n} to queue")

    def release(self) -> dict[int, tuple[str, Any]]:
        self._release.set()
        for thread in self._threads:
            thread.join(timeout=30)
            assert not thread.is_alive()
        assert self.outcomes.pop(-1) == ("ok", "held")
        return self.outcomes


def _insert(k: int, log: list[tuple[int, int, int]]) -> Callable[[sqlite3.Connection], int]:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, f"v{k}"))
        seen = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        log.append((k, threading.get_ident(), int(seen)))
        return k * 10

    return op


def test_queued_writes_commit_together_in_order_with_their_own_results(pool: ConnectionPool) -> None:
    held = HeldLead(GroupCommitter(pool))
    log: list[tuple[int, int, int]] = []
    for k in range(12):
        held.submit(k, f"op{k}", _insert(k, log))
    outcomes = held.release()
    assert outcomes == {k: ("ok", k * 10) for k in range(12)}  # each waiter got its own result
    assert [k for k, _, _ in log] == list(range(12))  # run in queue order
    assert len({thread for _, thread, _ in log}) == 1  # by one leader: one batch, one transaction
    assert [seen for _, _, seen in log] == list(range(1, 13))  # each sees the ones before it
    assert _rows(pool) == [(k, f"v{k}") for k in range(12)]


def test_a_failing_operation_mid_batch_is_undone_alone(pool: ConnectionPool) -> None:
    held = HeldLead(GroupCommitter(pool))
    log: list[tuple[int, int, int]] = []

    def refuses(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES (100, 'written then undone')")
        raise VersionConflict("expected version 1, current version is 2")

    def duplicate(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES (101, 'undone too')")
        conn.execute("INSERT INTO t (k, v) VALUES (0, 'duplicate key')")

    def bad_text(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES (102, ?)", ("\udcff",))

    held.submit(0, "first", _insert(0, log))
    held.submit(1, "refuses", refuses)
    held.submit(2, "duplicate", duplicate)
    held.submit(3, "bad_text", bad_text)
    held.submit(4, "last", _insert(4, log))
    outcomes = held.release()
    assert outcomes[0] == ("ok", 0)
    assert outcomes[4] == ("ok", 40)
    kind, conflict = outcomes[1]
    assert kind == "error" and isinstance(conflict, VersionConflict)
    assert str(conflict) == "expected version 1, current version is 2"
    kind, storage = outcomes[2]
    assert kind == "error" and isinstance(storage, StorageError)
    assert str(storage).startswith("duplicate: database ") and "SQLITE_CONSTRAINT" in str(storage)
    assert "duplicate key" not in str(storage)  # SQLite's message is never passed on
    kind, invalid = outcomes[3]
    assert kind == "error" and isinstance(invalid, InvalidArgument)
    assert str(invalid) == "bad_text: names and metadata must be valid UTF-8 text"
    assert _rows(pool) == [(0, "v0"), (4, "v4")]


def test_a_failed_commit_fails_every_write_in_the_batch_and_saves_none(pool: ConnectionPool) -> None:
    committer = GroupCommitter(pool)
    held = HeldLead(committer)
    log: list[tuple[int, int, int]] = []

    def dangling(conn: sqlite3.Connection) -> None:
        # A deferred foreign key is checked at COMMIT, so the statement succeeds and the commit fails.
        conn.execute("INSERT INTO child (id, parent) VALUES (1, 999)")

    held.submit(0, "first", _insert(0, log))
    held.submit(1, "dangling", dangling)
    held.submit(2, "last", _insert(2, log))
    outcomes = held.release()
    for n, op in ((0, "first"), (1, "dangling"), (2, "last")):
        kind, error = outcomes[n]
        assert kind == "error" and isinstance(error, StorageError), outcomes[n]
        assert str(error).startswith(f"{op}: database ") and "SQLITE_CONSTRAINT" in str(error)
    assert _rows(pool) == []
    # The committer and the pool carry on with the next write.
    assert committer.run("after", _insert(7, log)) == 70
    assert _rows(pool) == [(7, "v7")]


def test_the_batch_size_is_bounded(pool: ConnectionPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sqlite_writer, "MAX_GROUP_COMMIT_OPS", 4)
    held = HeldLead(GroupCommitter(pool))
    log: list[tuple[int, int, int]] = []
    for k in range(10):
        held.submit(k, f"op{k}", _insert(k, log))
    outcomes = held.release()
    assert outcomes == {k: ("ok", k * 10) for k in range(10)}
    leaders = [thread for _, thread, _ in log]
    batches = [leaders[i:i + 4] for i in range(0, 10, 4)]
    assert all(len(set(b)) == 1 for b in batches)  # 4 + 4 + 2, each run by one leader
    assert [k for k, _, _ in log] == list(range(10))
    assert len(_rows(pool)) == 10


def test_a_closed_pool_fails_each_write_by_name(pool: ConnectionPool) -> None:
    committer = GroupCommitter(pool)
    pool.close()
    with pytest.raises(StorageError, match=r"^insert_thing: the store is closed$"):
        committer.run("insert_thing", _insert(1, []))


def test_an_exception_in_the_leader_still_hands_on_the_lead(pool: ConnectionPool) -> None:
    committer = GroupCommitter(pool)

    def interrupted(conn: sqlite3.Connection) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        committer.run("interrupted", interrupted)
    assert committer.run("next", _insert(3, [])) == 30
    assert committer.pending == 0


# --- through the store ---------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "secretsvc.db")
    yield opened
    opened.close()


def _store_held(store: SqliteStore) -> HeldLead:
    return HeldLead(store._writes)  # the store's own committer, so its real operations share the batch


def test_check_and_set_conflicts_inside_one_batch(store: SqliteStore) -> None:
    held = _store_held(store)
    lock = threading.Lock()
    outcomes: dict[int, object] = {}
    threads = []

    def writer(n: int) -> None:
        try:
            result: object = store.insert_version(NS, "shared", 1, b"writer-%d" % n, expected_version=0, now=1.0,
                                                  max_versions=5)
        except VersionConflict as exc:
            result = exc
        with lock:
            outcomes[n] = result

    for n in range(8):
        queued = held.committer.pending
        threads.append(threading.Thread(target=writer, args=(n,)))
        threads[-1].start()
        _wait_for(lambda q=queued: held.committer.pending == q + 1, "writer to queue")  # type: ignore[misc]
    held.release()
    for t in threads:
        t.join(timeout=30)
    assert outcomes[0] == []  # first in the batch wins
    for n in range(1, 8):
        assert isinstance(outcomes[n], VersionConflict)
        assert str(outcomes[n]) == f"check-and-set failed for {NS}/shared: expected version 0, current version is 1"
    assert store.read_version(NS, "shared", None).envelope == b"writer-0"


def test_mixed_operations_in_one_batch_each_get_their_outcome(store: SqliteStore) -> None:
    store.insert_version(NS, "a", 1, b"a1", expected_version=0, now=1.0, max_versions=5)
    held = _store_held(store)
    results: dict[str, object] = {}
    calls: dict[str, Callable[[], object]] = {
        "put_b": lambda: store.insert_version(NS, "b", 1, b"b1", expected_version=0, now=2.0, max_versions=5),
        "stale_a": lambda: store.insert_version(NS, "a", 1, b"x", expected_version=0, now=2.0, max_versions=5),
        "delete_missing": lambda: store.set_versions_deleted(NS, "missing", [1], deleted=True, now=2.0),
        "put_a2": lambda: store.insert_version(NS, "a", 2, b"a2", expected_version=1, now=3.0, max_versions=1),
    }
    threads = []
    for name, call in calls.items():
        def run(name: str = name, call: Callable[[], object] = call) -> None:
            try:
                results[name] = call()
            except Exception as exc:
                results[name] = exc

        queued = held.committer.pending
        threads.append(threading.Thread(target=run))
        threads[-1].start()
        _wait_for(lambda q=queued: held.committer.pending == q + 1, name)  # type: ignore[misc]
    held.release()
    for t in threads:
        t.join(timeout=30)
    assert results["put_b"] == []
    assert isinstance(results["stale_a"], VersionConflict)
    assert isinstance(results["delete_missing"], NotFound)
    assert results["put_a2"] == [1]  # max_versions=1 pruned version 1
    assert store.read_version(NS, "a", None).envelope == b"a2"
    assert store.read_version(NS, "b", 1).envelope == b"b1"


def test_many_threads_each_read_back_their_own_writes(store: SqliteStore) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(24)

    def run(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(15):
                path = f"t{n}/s{i}"
                assert store.insert_version(NS, path, 1, b"%d:%d" % (n, i), expected_version=0, now=1.0,
                                            max_versions=3) == []
                assert store.current_version(NS, path) is not None
                assert store.read_version(NS, path, None).envelope == b"%d:%d" % (n, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert len(store.list_paths(NS, "t1/", page_size=100, page_token="").paths) == 15
