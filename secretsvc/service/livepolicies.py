"""The policy set in force, reloaded without a restart: the built-in document, the configured files, and the
documents stored over the API (`service/policies.py`).

`LivePolicies` is the server's `Authorizer`. It holds one immutable `PolicySet` and swaps the reference when a
reload succeeds, so a call is decided wholly by the old set or wholly by the new one. A reload happens when a
file changes (a cheap fingerprint of sizes, times and inodes is compared), when the store's policy change
counter moves (another replica, or this one, changed a stored document), on SIGHUP, or on request. The
counter is polled every `policy_reload_seconds`; on PostgreSQL another replica's change is also announced at
once (`service/changes.py`, `ChangeRelay`), which calls `reload()`.

A set is only ever replaced by a complete one. If the documents no longer load together (a file edited into
a bad state, or a file that now clashes with a stored document), the set in force stays and every problem is
logged with its file and line: dropping one document could drop an explicit deny and so widen access. At
start the same problems stop the server instead (`ConfigError`), since there is no set to keep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from secretsvc.auth.principal import Principal
from secretsvc.errors import ConfigError, InvalidArgument, LimitExceeded, StorageError
from secretsvc.policy import PolicySet
from secretsvc.policy.loader import Source, check_sources, fingerprint, read_paths, summary
from secretsvc.policy.model import Problem, Resource
from secretsvc.store.base import PolicyDocumentRecord, SecretStore

log = logging.getLogger("secretsvc.policy")

STORED_PREFIX = "stored:"  # how a stored document is named in problems and in `explain`


def stored_source(record: PolicyDocumentRecord) -> Source:
    return Source(STORED_PREFIX + record.name, record.content, "json" if record.format == "json" else "yaml")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    reloaded: bool  # a new set is in force
    problems: tuple[Problem, ...]  # why the set in force was kept (empty when nothing was wrong)
    files: int  # documents from files in the set in force
    stored: int  # documents from the store in the set in force


@dataclass(frozen=True, slots=True)
class _Loaded:
    policy_set: PolicySet
    files: int
    stored: int


class LivePolicies:
    """An `Authorizer` over the policy set in force; `reload()` replaces it when its documents change."""

    def __init__(self, paths: Sequence[Path], store: SecretStore) -> None:
        self._paths = tuple(paths)
        self._store = store
        self._reload_lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        marks, generation = fingerprint(self._paths), store.policy_generation()
        loaded = self._load(store.list_policy_documents())
        if isinstance(loaded, tuple):
            raise ConfigError(summary(loaded) + "\n(the policy files and the documents stored over the API must "
                                                "load together; fix the files or remove the clashing ones)")
        self._loaded = loaded
        self._marks, self._generation = marks, generation
        _log_warnings(loaded.policy_set)

    # -- the Authorizer ---------------------------------------------------------------------------------

    def allows(self, caller: Principal, resource: Resource, capability: str) -> bool:
        return self._loaded.policy_set.allows(caller, resource, capability)

    @property
    def current(self) -> PolicySet:
        return self._loaded.policy_set

    # -- changes ------------------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each reload that put a new set in force (watchers re-check their access)."""
        self._listeners.append(listener)

    def check_stored(self, stored: Sequence[PolicyDocumentRecord]) -> PolicySet:
        """The set the files (as they are now) and `stored` would make together; `InvalidArgument` (or
        `LimitExceeded`) naming every problem when they would not load."""
        loaded = self._load(stored)
        if isinstance(loaded, tuple):
            error = LimitExceeded if loaded[0].limit else InvalidArgument
            raise error(summary(loaded))
        return loaded.policy_set

    def reload(self, *, force: bool = False) -> ReloadResult:
        """Load the documents again if any changed (always, with `force`). Never raises for bad documents or
        an unreadable store: the set in force stays, and the result and the log say why."""
        with self._reload_lock:
            marks = fingerprint(self._paths)
            try:
                generation = self._store.policy_generation()
                if not force and marks == self._marks and generation == self._generation:
                    return self._result(reloaded=False)
                stored = self._store.list_policy_documents()
            except StorageError as exc:
                log.warning("policy reload skipped, the policies in force stay: cannot read stored documents: %s",
                            exc)
                return self._result(reloaded=False)
            loaded = self._load(stored)
            # Remember what was looked at either way, so a bad state is reported once, not every interval.
            self._marks, self._generation = marks, generation
            if isinstance(loaded, tuple):
                for problem in loaded:
                    log.error("policy reload refused, the policies in force stay: %s", problem)
                return self._result(reloaded=False, problems=loaded)
            self._loaded = loaded
        set_ = loaded.policy_set
        log.info("policies reloaded", extra={
            "files": loaded.files, "stored": loaded.stored, "policies": len(set_.policies) - 1,
            "bindings": len(set_.bindings)})
        _log_warnings(set_)
        for listener in self._listeners:
            listener()
        return self._result(reloaded=True)

    def _result(self, *, reloaded: bool, problems: tuple[Problem, ...] = ()) -> ReloadResult:
        loaded = self._loaded
        return ReloadResult(reloaded=reloaded, problems=problems, files=loaded.files, stored=loaded.stored)

    def _load(self, stored: Sequence[PolicyDocumentRecord]) -> _Loaded | tuple[Problem, ...]:
        files, read_problems = read_paths(self._paths) if self._paths else ([], [])
        result = check_sources([*files, *(stored_source(r) for r in stored)], read_problems)
        if result.policy_set is None:
            return result.problems
        return _Loaded(result.policy_set, files=len(files), stored=len(stored))


def _log_warnings(policy_set: PolicySet) -> None:
    for warning in policy_set.warnings:
        log.warning("policy: %s", warning)


class ReloadLoop:
    """Calls `LivePolicies.reload` every `interval` seconds (never, for 0) and whenever `wake()` is called
    (SIGHUP), on a daemon thread of its own."""

    def __init__(self, policies: LivePolicies, interval: float) -> None:
        self._policies = policies
        self._interval = interval
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="policy-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Reload now. Safe to call from a signal handler: it only sets an event."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            woken = self._wake.wait(self._interval or None)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self._policies.reload(force=woken)
            except Exception:  # a bug must not end reloading for the life of the server
                log.exception("policy reload failed")
