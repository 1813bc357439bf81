"""Watching secrets: the first batch holds every watched secret, later batches only what changed, writes wake
only their watchers, nothing between two waits is lost, access is re-checked, and a watch ends by itself."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument, LimitExceeded, PermissionDenied
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import limits
from secretsvc.service.changes import ChangeFeed
from secretsvc.service.secrets import SecretService
from secretsvc.service.watch import WatchBatch, WatchService
from secretsvc.store.base import VersionState
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock
from tests.unit.service.test_access import Grants


def _value(seed: int) -> SecretBytes:
    return SecretBytes(random.Random(seed).randbytes(8))


@pytest.fixture
def feed() -> ChangeFeed:
    return ChangeFeed()


@pytest.fixture
def svc(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, feed: ChangeFeed) -> SecretService:
    return SecretService(store, keyring, clock, Grants(), changes=feed)


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _watch(store: SqliteStore, feed: ChangeFeed, grants: Grants, refs: list[tuple[str, str]], *,
           ticker: Ticker | None = None, active: threading.Event | None = None) -> Iterator[WatchBatch]:
    service = WatchService(store, grants, feed, monotonic=ticker or Ticker(), resync_seconds=60,
                           max_watch_seconds=3600)
    alive = active or threading.Event()
    if active is None:
        alive.set()
    return service.watch(ADMIN, refs, is_active=alive.is_set)


def test_first_batch_then_each_change(svc: SecretService, store: SqliteStore, feed: ChangeFeed) -> None:
    svc.put(ADMIN, "app", "a", _value(1))
    batches = _watch(store, feed, Grants(), [("app", "a"), ("app", "b"), ("app", "a")])
    first = next(batches)
    assert first.synced
    assert [(c.path, c.exists, c.current_version, c.state) for c in first.changes] == [
        ("a", True, 1, VersionState.ACTIVE), ("b", False, 0, None)]
    assert feed.watcher_count() == 1
    svc.put(ADMIN, "app", "b", _value(2))
    svc.put(ADMIN, "app", "a", _value(3))  # two writes before the watcher looks: both arrive
    second = next(batches)
    got = {c.path: c.current_version for c in second.changes}
    if len(got) == 1:  # the watcher may have woken between the two writes
        got.update({c.path: c.current_version for c in next(batches).changes})
    assert got == {"a": 2, "b": 1}
    svc.delete_versions(ADMIN, "app", "a", [2])
    assert [(c.path, c.state) for c in next(batches).changes] == [("a", VersionState.DELETED)]
    svc.delete_secret(ADMIN, "app", "b")
    assert [(c.path, c.exists) for c in next(batches).changes] == [("b", False)]
    batches.close()
    assert feed.watcher_count() == 0


def test_a_write_wakes_only_the_watchers_of_that_secret(feed: ChangeFeed) -> None:
    mine, other = feed.subscribe([("app", "a")]), feed.subscribe([("app", "b")])
    feed.changed("app", "a")
    assert mine.wait(5) == {("app", "a")}
    assert other.wait(0.01) == set()
    mine.close()
    other.close()


def test_a_policy_change_that_takes_read_away_ends_the_watch(svc: SecretService, store: SqliteStore,
                                                             feed: ChangeFeed) -> None:
    grants = Grants()
    from secretsvc.auth.principal import Principal, PrincipalId
    from secretsvc.service.access import Capability, Resource

    bob = Principal(PrincipalId("token:bob"), "bob", "token")
    grants.grant(Resource.secret("app", "a"), Capability.READ)
    service = WatchService(store, grants, feed, monotonic=Ticker())
    batches = service.watch(bob, [("app", "a")], is_active=lambda: True)
    assert next(batches).synced
    grants.allowed.clear()
    feed.recheck_all()
    with pytest.raises(PermissionDenied, match="token:bob may not read secret app/a"):
        next(batches)
    assert feed.watcher_count() == 0


def test_nothing_is_sent_when_nothing_really_changed_and_the_watch_ends_when_its_time_is_up(
        svc: SecretService, store: SqliteStore, feed: ChangeFeed) -> None:
    ticker = Ticker()
    svc.put(ADMIN, "app", "a", _value(1))
    batches = _watch(store, feed, Grants(), [("app", "a")], ticker=ticker)
    next(batches)
    feed.changed("app", "a")  # a wake-up for a secret whose state did not change
    ticker.now = 3601
    with pytest.raises(StopIteration):
        next(batches)


def test_a_watch_whose_caller_went_away_stops(svc: SecretService, store: SqliteStore, feed: ChangeFeed) -> None:
    active = threading.Event()
    active.set()
    batches = _watch(store, feed, Grants(), [("app", "a")], active=active)
    next(batches)
    active.clear()
    feed.changed("app", "a")
    with pytest.raises(StopIteration):
        next(batches)
    assert feed.watcher_count() == 0


def test_bad_watches_are_refused_before_anything_is_sent(store: SqliteStore, feed: ChangeFeed) -> None:
    for refs, error in [([], InvalidArgument), ([("app", "../x")], InvalidArgument),
                        ([("app", f"p{i}") for i in range(limits.MAX_WATCH_REFS + 1)], LimitExceeded)]:
        with pytest.raises(error):
            next(_watch(store, feed, Grants(), refs))
    from secretsvc.auth.principal import Principal, PrincipalId

    nobody = Principal(PrincipalId("token:n"), "n", "token")
    with pytest.raises(PermissionDenied):
        next(WatchService(store, Grants(), feed).watch(nobody, [("app", "a")], is_active=lambda: True))
    assert feed.watcher_count() == 0


class CountingStore:
    """The real store, counting how often a secret's metadata is read."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.meta_reads = 0

    def read_meta(self, namespace: str, path: str):  # type: ignore[no-untyped-def]
        self.meta_reads += 1
        return self._store.read_meta(namespace, path)


def test_the_watchers_of_one_secret_share_one_read_of_its_new_state(svc: SecretService, store: SqliteStore,
                                                                     feed: ChangeFeed) -> None:
    counting = CountingStore(store)
    service = WatchService(counting, Grants(), feed, monotonic=Ticker())  # type: ignore[arg-type]
    watchers = [service.watch(ADMIN, [("app", "a")], is_active=lambda: True) for _ in range(5)]
    for watcher in watchers:
        next(watcher)
    assert counting.meta_reads == 5  # each first batch reads for itself
    svc.put(ADMIN, "app", "a", _value(1))
    assert [next(w).changes[0].current_version for w in watchers] == [1] * 5
    assert counting.meta_reads == 6
    svc.put(ADMIN, "app", "a", _value(2))  # a later change is never answered from the earlier read
    assert [next(w).changes[0].current_version for w in watchers] == [2] * 5
    for watcher in watchers:
        watcher.close()
