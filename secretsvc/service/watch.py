"""Watching secrets for changes: what the injector's sidecar uses to rewrite files without polling. No gRPC.

A watch first reports the current state of every secret it names (so a client that reconnects catches up),
then a batch each time some of them change. It learns of changes from the `ChangeFeed` at once (this
process's writes, and on PostgreSQL the other replicas' through `ChangeRelay`), and re-reads every
watched secret every `RESYNC_SECONDS` as a last resort and to re-check the caller's `read` on each: a
policy change that takes it away ends the watch with `PermissionDenied`. A watch ends by itself after
`MAX_WATCH_SECONDS`, so long-lived clients reconnect now and then and load spreads again across servers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Capability, Resource, require
from secretsvc.service.changes import ChangeFeed
from secretsvc.service.naming import check_namespace, check_path
from secretsvc.store.base import SecretStore, VersionState

RESYNC_SECONDS = 60.0
MAX_WATCH_SECONDS = 3600.0
# How long a watcher sleeps between checks that its call is still open, when nothing wakes it sooner.
IDLE_CHECK_SECONDS = 15.0
MAX_SHARED_STATES = 100_000


@dataclass(frozen=True, slots=True)
class SecretState:
    namespace: str
    path: str
    exists: bool
    current_version: int  # 0 when it does not exist
    state: VersionState | None  # of the current version; None when it does not exist


@dataclass(frozen=True, slots=True)
class WatchBatch:
    synced: bool  # the first batch: every watched secret
    changes: tuple[SecretState, ...]


class WatchService:
    def __init__(self, store: SecretStore, authorizer: Authorizer, feed: ChangeFeed, *,
                 monotonic: Callable[[], float] = time.monotonic, resync_seconds: float = RESYNC_SECONDS,
                 max_watch_seconds: float = MAX_WATCH_SECONDS) -> None:
        self._store = store
        self._authz = authorizer
        self._feed = feed
        self._monotonic = monotonic
        self._resync_seconds = resync_seconds
        self._max_watch_seconds = max_watch_seconds
        # The last state read of each watched secret, with the feed's change count it was read at: a write
        # wakes every watcher of the secret, and they share one store read. A count from before the read
        # started is stored, so a change during the read is never hidden.
        self._shared: dict[tuple[str, str], tuple[int, SecretState]] = {}

    def watch(self, caller: Principal, refs: Sequence[tuple[str, str]], *, is_active: Callable[[], bool],
              on_subscribed: Callable[[Callable[[], None]], object] = lambda wake: None) -> Iterator[WatchBatch]:
        """Batches of changes until the caller goes away (`is_active` false), the maximum lifetime passes, or
        read is taken away. `on_subscribed` receives a function that wakes this watch at once (call it when
        the caller cancels). Everything is checked before the first batch."""
        keys = self._checked(caller, refs)
        subscription = self._feed.subscribe(keys)  # before the first read: a write in between is not lost
        on_subscribed(subscription.wake)
        try:
            started = self._monotonic()
            ends, resync_at = started + self._max_watch_seconds, started + self._resync_seconds
            sent = {key: self._state(key) for key in keys}
            yield WatchBatch(synced=True, changes=tuple(sent.values()))
            while is_active():
                now = self._monotonic()
                if now >= ends:
                    return
                changed = subscription.wait(max(0.0, min(IDLE_CHECK_SECONDS, resync_at - now, ends - now)))
                resync = self._monotonic() >= resync_at
                if resync:
                    changed = set(keys)
                    resync_at = self._monotonic() + self._resync_seconds
                if not changed or not is_active():
                    continue
                for namespace, path in sorted(changed):
                    require(self._authz, caller, Resource.secret(namespace, path), Capability.READ)
                # A resync reads the store itself: it is there for writes this process's feed never saw.
                fresh = [self._shared_state(key, fresh_read=resync) for key in sorted(changed)]
                news = tuple(s for s in fresh if sent[(s.namespace, s.path)] != s)
                for state in news:
                    sent[(state.namespace, state.path)] = state
                if news:
                    yield WatchBatch(synced=False, changes=news)
        finally:
            subscription.close()

    def _checked(self, caller: Principal, refs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        if not refs:
            raise InvalidArgument("a watch names at least one secret")
        if len(refs) > limits.MAX_WATCH_REFS:
            raise LimitExceeded(f"a watch names at most MAX_WATCH_REFS={limits.MAX_WATCH_REFS} secrets")
        keys = list(dict.fromkeys((check_namespace(ns), check_path(path)) for ns, path in refs))
        for namespace, path in keys:
            require(self._authz, caller, Resource.secret(namespace, path), Capability.READ)
        return keys

    def _shared_state(self, key: tuple[str, str], *, fresh_read: bool = False) -> SecretState:
        count = self._feed.count(key)
        cached = self._shared.get(key)
        if cached is not None and cached[0] == count and not fresh_read:
            return cached[1]
        state = self._state(key)
        if len(self._shared) >= MAX_SHARED_STATES:
            self._shared.clear()
        self._shared[key] = (count, state)
        return state

    def _state(self, key: tuple[str, str]) -> SecretState:
        namespace, path = key
        meta = self._store.read_meta(namespace, path)
        if meta is None:
            return SecretState(namespace, path, False, 0, None)
        state = next((v.state for v in meta.versions if v.version == meta.current_version), None)
        return SecretState(namespace, path, True, meta.current_version, state)
