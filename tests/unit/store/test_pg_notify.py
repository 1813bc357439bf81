"""Changes between processes on one PostgreSQL database: a committed write on one store is heard by another
store's listener (secret by name, tokens and policies by kind); a write that does not commit sends nothing;
a listener skips its own store's writes; a listener whose connection is killed reconnects and says that
everything may have changed; payloads it cannot read are ignored."""

from __future__ import annotations

import queue
import random
import time
from collections.abc import Iterator

import pytest

from secretsvc.errors import VersionConflict
from secretsvc.store import _pg_notify as notify
from secretsvc.store.base import TokenRecord
from secretsvc.store.postgres import PostgresStore
from tests.pgkit import PgServer

WAIT_S = 5.0
ENVELOPE_BYTES = 64


class Recorder:
    """A `ChangeSink` that queues what it hears."""

    def __init__(self) -> None:
        self.heard: queue.Queue[tuple[str, ...]] = queue.Queue()

    def secret_changed(self, namespace: str, path: str) -> None:
        self.heard.put(("secret", namespace, path))

    def tokens_changed(self) -> None:
        self.heard.put(("tokens",))

    def policies_changed(self) -> None:
        self.heard.put(("policies",))

    def everything_may_have_changed(self) -> None:
        self.heard.put(("everything",))

    def next(self, timeout: float = WAIT_S) -> tuple[str, ...]:
        return self.heard.get(timeout=timeout)

    def quiet_for(self, seconds: float) -> bool:
        try:
            self.heard.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def stores(pg_server: PgServer, pg_database: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    url = pg_server.url(pg_database)
    a = PostgresStore(url, password=pg_server.password, pool_size=2)
    b = PostgresStore(url, password=pg_server.password, pool_size=2)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def heard_on_b(stores: tuple[PostgresStore, PostgresStore]) -> Iterator[Recorder]:
    recorder = Recorder()
    listener = stores[1].change_listener()
    listener.start(recorder)
    assert recorder.next() == ("everything",)  # the catch-up after the first LISTEN
    yield recorder
    listener.close()


def _envelope(rng: random.Random) -> bytes:
    return rng.randbytes(ENVELOPE_BYTES)  # the store keeps envelopes as opaque bytes


def test_a_committed_secret_write_is_heard_by_name(
    stores: tuple[PostgresStore, PostgresStore], heard_on_b: Recorder
) -> None:
    a, _ = stores
    rng = random.Random(7)
    started = time.monotonic()
    a.insert_version("app", "db/pass", 1, _envelope(rng), expected_version=0, now=1.0, max_versions=5)
    assert heard_on_b.next() == ("secret", "app", "db/pass")
    assert time.monotonic() - started < 1.0
    a.set_versions_deleted("app", "db/pass", [1], deleted=True, now=2.0)
    assert heard_on_b.next() == ("secret", "app", "db/pass")
    a.delete_secret("app", "db/pass")
    assert heard_on_b.next() == ("secret", "app", "db/pass")


def test_a_write_that_does_not_commit_sends_nothing(
    stores: tuple[PostgresStore, PostgresStore], heard_on_b: Recorder
) -> None:
    a, _ = stores
    rng = random.Random(8)
    a.insert_version("app", "k", 1, _envelope(rng), expected_version=0, now=1.0, max_versions=5)
    assert heard_on_b.next() == ("secret", "app", "k")
    with pytest.raises(VersionConflict):
        a.insert_version("app", "k", 1, _envelope(rng), expected_version=0, now=2.0, max_versions=5)
    assert heard_on_b.quiet_for(0.5)


def test_tokens_and_policies_are_heard_by_kind(
    stores: tuple[PostgresStore, PostgresStore], heard_on_b: Recorder
) -> None:
    a, _ = stores
    rng = random.Random(9)
    record = TokenRecord(token_id=rng.randbytes(8).hex(), name="ci", token_hash=rng.randbytes(32), created_at=1.0)
    a.put_token(record)
    assert heard_on_b.next() == ("tokens",)
    a.delete_token("ci")
    assert heard_on_b.next() == ("tokens",)
    a.put_policy_document("ops", "yaml", b"policies: []\n", expected_revision=None, now=1.0)
    assert heard_on_b.next() == ("policies",)


def test_a_listener_skips_its_own_stores_writes(stores: tuple[PostgresStore, PostgresStore]) -> None:
    a, _ = stores
    recorder = Recorder()
    listener = a.change_listener()
    listener.start(recorder)
    try:
        assert recorder.next() == ("everything",)
        a.insert_version("app", "own", 1, _envelope(random.Random(10)), expected_version=0, now=1.0, max_versions=5)
        assert recorder.quiet_for(0.5)
    finally:
        listener.close()


def test_a_killed_listener_connection_reconnects_and_catches_up(
    pg_server: PgServer, pg_database: str, stores: tuple[PostgresStore, PostgresStore], heard_on_b: Recorder
) -> None:
    a, _ = stores
    with pg_server.admin_connect(pg_database) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'secretsvc-listen'"
        ).fetchall()
    assert killed == [(True,)]
    assert heard_on_b.next() == ("everything",)
    a.insert_version("app", "after", 1, _envelope(random.Random(12)), expected_version=0, now=1.0, max_versions=5)
    assert heard_on_b.next() == ("secret", "app", "after")


def test_payloads_round_trip_and_foreign_ones_are_refused() -> None:
    text = notify.payload("o1", notify.SECRET, "ns", "a/b")
    assert notify.parse(text) == ("o1", notify.SECRET, "ns", "a/b")
    assert notify.parse(notify.payload("o1", notify.TOKEN)) == ("o1", notify.TOKEN, "", "")
    for foreign in ("", "not json", "[]", '["o", "other", "", ""]', '["o", "secret", 1, ""]', "[" * 9000):
        assert notify.parse(foreign) is None
    # A name too long for a payload becomes a kind-only notice (replicas then re-read what they watch).
    assert notify.parse(notify.payload("o1", notify.SECRET, "ns", "p" * 9000)) == ("o1", notify.SECRET, "", "")
