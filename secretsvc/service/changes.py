"""Who is waiting for which secret, and waking exactly them when it changes.

The secret use cases call `ChangeFeed.changed(namespace, path)` after every write. A watcher holds a
`Subscription` to the secrets it watches; `changed` adds the secret to the pending set of each subscription
that watches it and sets its event, so a write wakes only the watchers of that secret (a fan-out to 500
watchers of one secret wakes those 500, and nobody else). A subscription remembers every change until its
watcher takes them, so nothing that happens between two waits is lost.

Writes made by other processes on the same database (replicas on one PostgreSQL) come in through a
`ChangeSource` (on PostgreSQL, a LISTEN connection: `store/_pg_notify.py`), which tells the process's
`ChangeRelay`; the relay hands each change to the feed, the token-verification cache, or the policy reload.
A source that may have missed changes (it reconnected) says everything may have changed: every watched secret
is read again, every cached token check dropped, the policies reloaded. SQLite has no source: one process
writes, and its writes reach the feed directly. A source for several processes on one SQLite file would poll a
change counter and call the same relay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger("secretsvc.changes")

_Key = tuple[str, str]  # (namespace, path)


class Subscription:
    def __init__(self, feed: ChangeFeed, keys: frozenset[_Key]) -> None:
        self._feed = feed
        self.keys = keys
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[_Key] = set()

    def _notify(self, key: _Key) -> None:
        with self._lock:
            self._pending.add(key)
        self._event.set()

    def wake(self) -> None:
        """Wake the watcher with nothing pending (its call ended, or the server is stopping)."""
        self._event.set()

    def wait(self, timeout: float) -> set[_Key]:
        """Block until something changed or `timeout` passed (or `wake`); returns what changed since last."""
        self._event.wait(timeout)
        with self._lock:
            self._event.clear()
            changed, self._pending = self._pending, set()
        return changed

    def close(self) -> None:
        self._feed._unsubscribe(self)


class ChangeFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[_Key, set[Subscription]] = {}
        # How many changes each watched secret has seen: lets the watchers of one secret share one read of
        # its new state instead of each reading the store (`WatchService`).
        self._counts: dict[_Key, int] = {}

    def count(self, key: _Key) -> int:
        return self._counts.get(key, 0)

    def subscribe(self, keys: Iterable[_Key]) -> Subscription:
        subscription = Subscription(self, frozenset(keys))
        with self._lock:
            for key in subscription.keys:
                self._watchers.setdefault(key, set()).add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            for key in subscription.keys:
                watchers = self._watchers.get(key)
                if watchers is not None:
                    watchers.discard(subscription)
                    if not watchers:
                        del self._watchers[key]
                        self._counts.pop(key, None)

    def changed(self, namespace: str, path: str) -> None:
        key = (namespace, path)
        with self._lock:
            watchers = tuple(self._watchers.get(key, ()))
            if watchers:
                self._counts[key] = self._counts.get(key, 0) + 1
        for subscription in watchers:
            subscription._notify(key)

    def all_changed(self) -> None:
        """Every watched secret may have changed elsewhere (changes were missed): each watcher reads again."""
        with self._lock:
            pairs = [(key, s) for key, subs in self._watchers.items() for s in subs]
            for key in self._watchers:
                self._counts[key] = self._counts.get(key, 0) + 1
        for key, subscription in pairs:
            subscription._notify(key)

    def recheck_all(self) -> None:
        """Mark everything every watcher watches as changed: after a policy reload, each watcher checks again
        that its caller may still read what it watches."""
        with self._lock:
            pairs = [(key, s) for key, subs in self._watchers.items() for s in subs]
        for key, subscription in pairs:
            subscription._notify(key)

    def watcher_count(self) -> int:
        with self._lock:
            return len({s for subs in self._watchers.values() for s in subs})


class ChangeRelay:
    """Where changes made by other processes arrive (a `store/_pg_notify.ChangeSink`): secrets to the feed,
    tokens and policies to whoever registered for them."""

    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed
        self._token_listeners: list[Callable[[], None]] = []
        self._policy_listeners: list[Callable[[], None]] = []

    def on_tokens(self, listener: Callable[[], None]) -> None:
        """`listener` runs when tokens changed elsewhere (drop cached verifications)."""
        self._token_listeners.append(listener)

    def on_policies(self, listener: Callable[[], None]) -> None:
        """`listener` runs when stored policy documents changed elsewhere (reload)."""
        self._policy_listeners.append(listener)

    def secret_changed(self, namespace: str, path: str) -> None:
        self.feed.changed(namespace, path)

    def tokens_changed(self) -> None:
        _run_all(self._token_listeners)

    def policies_changed(self) -> None:
        _run_all(self._policy_listeners)

    def everything_may_have_changed(self) -> None:
        _run_all(self._token_listeners)
        self.feed.all_changed()
        _run_all(self._policy_listeners)


def _run_all(listeners: list[Callable[[], None]]) -> None:
    for listener in tuple(listeners):
        try:
            listener()
        except Exception:  # one failing listener must not keep the change from the others
            log.exception("a change listener failed")


class ChangeSource(Protocol):
    """Tells a `ChangeRelay` what other processes changed in the store, until closed."""

    def start(self, relay: ChangeRelay) -> None: ...

    def close(self) -> None: ...
